"""`make bench-quality`: on the shared time split, the one-vs-rest TF-IDF model (`tfidf` kind) with top-500 then
top-100 tags, the ensemble (TF-IDF + SBERT) trained twice on the project's embedding cache (cold, then warm),
and the default configuration (`plt` kind).

Prints `[top-500] quality: …`, `[top-500] quality-all: …` (tfidf), `quality-ensemble: … weight=…`,
`ensemble-train: cold_s=… warm_s=…`, the one-vs-rest baseline's `[tfidf top-100 baseline] quality: …` and
`[tfidf top-100 baseline] quality-all: …`, the candidate kinds for thousands of tags measured for issue 23
(bench.candidates: the one-vs-rest top-100 `baseline:` and one `candidate:` line per kind, over the default's
vocabulary floor, each with its fit time; a kind whose library is not installed says so on its line), then the
`quality:` line of the default configuration and, last, its `quality-all:` line: every question of the evaluation
window, the 5 best suggestions against every tag its asker chose, and the share of tag occurrences the vocabulary
covers (tagger.metrics, all-tags section).
"""

from __future__ import annotations

import time

from bench.candidates import CandidateRun, candidate_lines
from bench.common import default_config, parse_args
from sotag.tagger.metrics import quality_all_line, quality_line
from sotag.training.fit import fit_and_evaluate, prepare


def main() -> None:
    args = parse_args(__doc__)
    lines = []
    runs = (("tfidf-500", {"vectorizer": "tfidf", "top_n_tags": 500}), ("tfidf-100", {"vectorizer": "tfidf"}))
    for label, overrides in (*runs, ("default", {})):
        config = default_config(args.data, **overrides)
        start = time.perf_counter()
        prepared = prepare(config)
        result = fit_and_evaluate(config, prepared)
        m = result.evaluation.metrics
        print(
            f"{label}: kind={config.vectorizer} top_n_tags={config.top_n_tags} n_train={len(prepared.split.train)} "
            f"n_eval={int(m['n_evaluated'])} "
            f"wall_s={time.perf_counter() - start:.1f} f1_micro={m['f1_micro']:.4f} f1_macro={m['f1_macro']:.4f} "
            f"jaccard={m['jaccard']:.4f} hamming={m['hamming_loss']:.5f}",
            flush=True,
        )
        lines.append((label, quality_line(m), quality_all_line(m)))

    # The project's embedding cache (.cache): empty on a first run, so the first fit is cold and the second
    # warm; later runs (and make compare, make bench-serve) reuse it, and the line says when nothing was cold.
    config = default_config(args.data, vectorizer="ensemble")
    seconds, embed = [], []
    for _ in ("first", "second"):
        start = time.perf_counter()
        ensemble = fit_and_evaluate(config, prepare(config))
        seconds.append(time.perf_counter() - start)
        embed.append(ensemble.timings["embed_s"])
        print(f"ensemble: {ensemble.timings}", flush=True)
    heads = ensemble.details["heads"]
    for head in ("tfidf", "sbert"):
        print(f"[ensemble {head} head] {quality_line(heads[head])}")
    print(f"ensemble validation (weight chosen on {ensemble.details['validation_questions']} questions):")
    print(ensemble.details["validation"].to_string(index=False))

    # The candidate kinds on the same split and features (bench.candidates), over the default's vocabulary floor.
    default = default_config(args.data)
    candidates = []
    for said in candidate_lines(default, CandidateRun(min_tag_questions=(default.min_tag_questions,))):
        if said.startswith(("baseline:", "candidate:")):
            candidates.append(said)  # printed with the summary below, before the default's two lines
        else:
            print(said, flush=True)

    print("baseline (plain TF-IDF + OvR LR, top-100): P@1=0.765 R@5=0.894; goal P@1>=0.80 R@5>=0.92")
    by_label = {label: (line, all_line) for label, line, all_line in lines}
    for line in by_label["tfidf-500"]:
        print(f"[top-500] {line}")
    weight = ensemble.details["ensemble_weight"]
    print(f"{quality_line(ensemble.evaluation.metrics, 'quality-ensemble')} weight={weight:.2f}")
    cold = "" if embed[0] > 5 * embed[1] else " (the cache was already warm: both runs warm)"
    print(
        f"ensemble-train: cold_s={seconds[0]:.1f} warm_s={seconds[1]:.1f} embed_s={embed[0]:.1f}/{embed[1]:.1f}{cold}"
    )
    for line in by_label["tfidf-100"]:
        print(f"[tfidf top-100 baseline] {line}")
    print("\n".join(candidates))
    for line in by_label["default"]:  # last: other checks read these two lines as the default's
        print(line)


if __name__ == "__main__":
    main()
