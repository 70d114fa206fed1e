"""`make bench-infer`: fused scoring vs `OneVsRestClassifier.predict_proba`, measured in the same run.

The model is the `tfidf` kind (one-vs-rest TF-IDF), pinned: it is the linear path that is measured.
Both paths start from the same question text and return the same ranked tags:
  seed path:  clean → sklearn vectorizer.transform → ovr.predict_proba → sort
  fused path: clean → compiled transform → one product with the stacked weights → partial sort
Single-question latency is the median over 300 questions; batch throughput is 5,000 questions
in one call. Scoring-only figures (same features, estimator step alone) are printed too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from bench.common import default_config, parse_args
from sotag.tagger.metrics import top_k_indices
from sotag.training.fit import fit_and_evaluate, prepare


def median_ms(fn: Callable[[int], object], n: int) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    args = parse_args(__doc__)
    config = default_config(args.data, vectorizer="tfidf")  # the linear kind: its fused path is measured
    prepared = prepare(config)
    result = fit_and_evaluate(config, prepared)
    tagger, ovr = result.tagger, result.ovr
    evaluation = prepared.split.evaluation
    titles, bodies = evaluation["title"].tolist(), evaluation["body"].tolist()
    k = config.top_k

    def seed_path(t: list[str], b: list[str]) -> np.ndarray:
        scores = ovr.predict_proba(tagger.vectorizer.transform(tagger.model.texts(t, b)))
        return np.argsort(-scores, axis=1)[:, :k]

    def fused_path(t: list[str], b: list[str]) -> object:
        return tagger.suggest(t, b, top_k=k, threshold=0.0)

    # Same answers from both paths before timing anything.
    seed_top = seed_path(titles[:200], bodies[:200])
    fused_top = [s.tags for s in fused_path(titles[:200], bodies[:200])]
    agree = np.mean([list(tagger.vocabulary[s]) == f for s, f in zip(seed_top, fused_top, strict=True)])
    print(f"top-{k} agreement between paths on 200 questions: {agree:.3f}")

    n_single = 300
    fused_single = median_ms(lambda i: fused_path([titles[i]], [bodies[i]]), n_single)
    seed_single = median_ms(lambda i: seed_path([titles[i]], [bodies[i]]), n_single)

    n_batch = min(5000, len(titles))
    bt, bb = titles[:n_batch], bodies[:n_batch]
    start = time.perf_counter()
    fused_path(bt, bb)
    fused_batch_s = time.perf_counter() - start
    start = time.perf_counter()
    seed_path(bt, bb)
    seed_batch_s = time.perf_counter() - start

    # Scoring step alone, on identical features.
    feats = [tagger.model.features.transform(tagger.model.texts([titles[i]], [bodies[i]])) for i in range(n_single)]
    fused_score = median_ms(lambda i: top_k_indices(tagger.estimator.predict_proba(feats[i]), k), n_single)
    seed_score = median_ms(lambda i: np.argsort(-ovr.predict_proba(feats[i]), axis=1)[:, :k], n_single)

    print(f"tags={len(tagger.vocabulary)} features={tagger.estimator.weights.shape[0]}")
    print(f"single question (median of {n_single}): fused {fused_single:.3f} ms, predict_proba {seed_single:.3f} ms")
    print(
        f"scoring step only: fused {fused_score:.4f} ms, predict_proba {seed_score:.3f} ms, "
        f"speedup {seed_score / fused_score:.0f}x"
    )
    print(
        f"batch of {n_batch}: fused {fused_batch_s:.2f} s ({n_batch / fused_batch_s:.0f} q/s), "
        f"predict_proba {seed_batch_s:.2f} s ({n_batch / seed_batch_s:.0f} q/s)"
    )
    print(
        f"infer: single_ms={fused_single:.3f} batch_qps={n_batch / fused_batch_s:.0f} "
        f"speedup_single={seed_single / fused_single:.1f} speedup_batch={seed_batch_s / fused_batch_s:.1f}"
    )


if __name__ == "__main__":
    main()
