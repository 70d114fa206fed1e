"""`make bench-quality`: the default configuration on the shared time split, top-500 then top-100 tags.

Ends with the `quality:` line of the default configuration (top-100).
"""

from __future__ import annotations

import time

from bench.common import default_config, parse_args
from tagger.metrics import quality_line
from training.fit import fit_and_evaluate, prepare


def main() -> None:
    args = parse_args(__doc__)
    lines = []
    for top_n in (500, 100):
        config = default_config(args.data, top_n_tags=top_n)
        start = time.perf_counter()
        prepared = prepare(config)
        result = fit_and_evaluate(config, prepared)
        m = result.evaluation.metrics
        print(
            f"top_n_tags={top_n} n_train={len(prepared.split.train)} n_eval={int(m['n_evaluated'])} "
            f"wall_s={time.perf_counter() - start:.1f} f1_micro={m['f1_micro']:.4f} f1_macro={m['f1_macro']:.4f} "
            f"jaccard={m['jaccard']:.4f} hamming={m['hamming_loss']:.5f}",
            flush=True,
        )
        lines.append((top_n, quality_line(m)))
    print("baseline (plain TF-IDF + OvR LR, top-100): P@1=0.765 R@5=0.894; goal P@1>=0.80 R@5>=0.92")
    for top_n, line in lines:
        print(f"[top-{top_n}] {line}" if top_n != 100 else line)


if __name__ == "__main__":
    main()
