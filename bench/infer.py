"""`make bench-infer`: the default model kind's scoring (`plt`), the fused path against the reference path, measured
in the same run on the same questions; then the one-vs-rest `tfidf` kind's fused scoring against sklearn's
`OneVsRestClassifier.predict_proba`.

The default kind (what `sotag train` builds), `Tagger.suggest` as the gateway calls it, calibration included:
  fused path:      clean each title once → split each text once (features and mentions share the tokens) →
                   CSR arrays → head and label trees on the arrays (tagger.label_tree.RowScorer) → mentions →
                   calibrate only the candidates of each row's top k (tagger.calibration.Calibration.top_k)
  reference path:  the steps one after the other, as `Tagger.suggest` composed them before the fused path:
                   `TreeKind.reference_scores` (texts → compiled transform → HeadAndTree.scores on a scipy matrix →
                   mentions re-cleaning the titles and re-splitting the texts) → every column calibrated →
                   `top_k_indices` over the whole matrix
Both give the same suggestions (`equal=` checks it on 300 questions, one at a time and in batches of 64; the tests
hold it on every batch size, tests/tagger/test_fused_plt.py). The two paths share the cleaning and the compiled
vectorizer, whose faster code came with the fused path: the reference is faster than the code before it was, and
the ratios understate what the fused path gained on it.

Single-question latency: the median over 300 questions (the two paths alternate question by question, so a
noisy machine slows both alike); batches of 8 and of 64: questions/s over 1,024 questions; batch throughput:
5,000 questions in one call (best of two). `--model DIR` scores a saved model directory instead of fitting the
default configuration; `--skip-tfidf` leaves out the one-vs-rest part.

The output ends with one line:
`infer: kind=plt single_ms=… batch8_qps=… batch64_qps=… batch_qps=… ref_single_ms=… ref_batch8_qps=…
ref_batch64_qps=… ref_batch_qps=… speedup_single=… speedup_batch=… equal=true|false`
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

from bench.common import default_config, parse_args
from sotag.tagger.kinds.base import ModelKind, Suggestion
from sotag.tagger.metrics import top_k_indices
from sotag.tagger.model import Tagger
from sotag.training.fit import fit_and_evaluate, prepare

SuggestPath = Callable[[list[str], list[str]], object]  # titles, bodies -> answers


def median_ms(calls: Sequence[Callable[[int], object]], n: int) -> list[float]:
    """Each call's median latency (ms) over questions 0..n-1 (`call(i)`), the calls alternating question by question
    (a noisy machine slows them alike)."""
    times: list[list[float]] = [[] for _ in calls]
    for i in range(n):
        for call, spent in zip(calls, times, strict=True):
            start = time.perf_counter()
            call(i)
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) * 1e3 for spent in times]


def batch_qps(paths: Sequence[SuggestPath], titles: list[str], bodies: list[str], size: int, n: int) -> list[float]:
    """Each path's questions/s over the first `n` questions in batches of `size`, the paths alternating by batch."""
    spent = [0.0] * len(paths)
    for lo in range(0, n, size):
        for j, path in enumerate(paths):
            start = time.perf_counter()
            path(titles[lo : lo + size], bodies[lo : lo + size])
            spent[j] += time.perf_counter() - start
    return [n / s for s in spent]


def reference_path(tagger: Tagger) -> SuggestPath:
    """`Tagger.suggest` step by step, as it composed the steps before the fused path (the same suggestions)."""
    model, config = tagger.model, tagger.config
    raw_scores = getattr(model, "reference_scores", model.scores)

    def suggest(titles: list[str], bodies: list[str]) -> list[Suggestion]:
        raw = raw_scores(titles, bodies)
        scores = raw if config.calibration is None else config.calibration.apply(raw)
        top_k = config.top_k
        return ModelKind.suggest(model, scores, tagger.vocabulary, top_k, config.threshold, min(config.min_tags, top_k))

    return suggest


def default_kind(tagger: Tagger, titles: list[str], bodies: list[str]) -> str:
    """The default kind's part: the fused and the reference paths' figures, and the `infer:` line."""
    fused: SuggestPath = tagger.suggest
    reference = reference_path(tagger)
    fused(titles[:64], bodies[:64])  # warm both paths (first-call allocations, caches)
    reference(titles[:64], bodies[:64])
    equal = all(fused([t], [b]) == reference([t], [b]) for t, b in zip(titles[:300], bodies[:300], strict=True))
    equal &= all(fused(titles[i : i + 64], bodies[i : i + 64]) == reference(titles[i : i + 64], bodies[i : i + 64])
                 for i in range(0, 300, 64))  # fmt: skip

    paths = (fused, reference)
    n_single = min(300, len(titles))
    single, ref_single = median_ms([lambda i, p=p: p([titles[i]], [bodies[i]]) for p in paths], n_single)
    n_small = min(1024, len(titles))
    batch8, ref_batch8 = batch_qps(paths, titles, bodies, 8, n_small)
    batch64, ref_batch64 = batch_qps(paths, titles, bodies, 64, n_small)
    n_batch = min(5000, len(titles))
    runs = [batch_qps(paths, titles, bodies, n_batch, n_batch) for _ in "ab"]  # the best of two
    batch, ref_batch = max(r[0] for r in runs), max(r[1] for r in runs)

    kind = tagger.config.kind
    print(f"default kind: {kind}, tags={len(tagger.vocabulary)}, calibrated={tagger.config.calibration is not None}")
    print(f"single question (median of {n_single}): fused {single:.3f} ms, reference {ref_single:.3f} ms")
    for size, got, ref in ((8, batch8, ref_batch8), (64, batch64, ref_batch64), (n_batch, batch, ref_batch)):
        print(f"batches of {size}: fused {got:.0f} q/s, reference {ref:.0f} q/s ({got / ref:.2f}x)")
    print(f"same suggestions on {n_single} questions (one at a time and in batches of 64): {equal}")
    return (
        f"infer: kind={kind} single_ms={single:.3f} batch8_qps={batch8:.0f} batch64_qps={batch64:.0f} "
        f"batch_qps={batch:.0f} ref_single_ms={ref_single:.3f} ref_batch8_qps={ref_batch8:.0f} "
        f"ref_batch64_qps={ref_batch64:.0f} ref_batch_qps={ref_batch:.0f} speedup_single={ref_single / single:.2f} "
        f"speedup_batch={batch / ref_batch:.2f} equal={'true' if equal else 'false'}"
    )


def one_vs_rest(data: tuple, titles: list[str], bodies: list[str]) -> None:
    """The `tfidf` kind (one-vs-rest; the default kind's head is such a model): its fused scoring against the seed's
    `OneVsRestClassifier.predict_proba`, on the same questions
      seed path:  clean → sklearn vectorizer.transform → ovr.predict_proba → sort
      fused path: clean → compiled transform → one product with the stacked weights → partial sort"""
    config = default_config(data, vectorizer="tfidf")
    result = fit_and_evaluate(config, prepare(config))
    tagger, ovr = result.tagger, result.ovr
    k = config.top_k

    def seed_path(t: list[str], b: list[str]) -> np.ndarray:
        scores = ovr.predict_proba(tagger.vectorizer.transform(tagger.model.texts(t, b)))
        return np.argsort(-scores, axis=1)[:, :k]

    def fused_path(t: list[str], b: list[str]) -> object:
        return tagger.suggest(t, b, top_k=k, threshold=0.0)

    seed_top = seed_path(titles[:200], bodies[:200])
    fused_top = [s.tags for s in fused_path(titles[:200], bodies[:200])]
    agree = np.mean([list(tagger.vocabulary[s]) == f for s, f in zip(seed_top, fused_top, strict=True)])
    n_single = min(300, len(titles))
    paths = (fused_path, seed_path)
    fused_single, seed_single = median_ms([lambda i, p=p: p([titles[i]], [bodies[i]]) for p in paths], n_single)
    n_batch = min(5000, len(titles))
    fused_batch, seed_batch = batch_qps(paths, titles, bodies, n_batch, n_batch)
    # The scoring step alone, on identical features.
    feats = [tagger.model.features.transform(tagger.model.texts([titles[i]], [bodies[i]])) for i in range(n_single)]
    fused_score, seed_score = median_ms(
        (
            lambda i: top_k_indices(tagger.estimator.predict_proba(feats[i]), k),
            lambda i: np.argsort(-ovr.predict_proba(feats[i]), axis=1)[:, :k],
        ),
        n_single,
    )
    print(f"tfidf kind (one-vs-rest): tags={len(tagger.vocabulary)} features={tagger.estimator.weights.shape[0]}")
    print(f"tfidf top-{k} agreement between fused and predict_proba on 200 questions: {agree:.3f}")
    print(
        f"tfidf single question (median of {n_single}): fused {fused_single:.3f} ms, predict_proba {seed_single:.3f} ms"
    )
    print(f"tfidf scoring step only: fused {fused_score:.4f} ms, predict_proba {seed_score:.3f} ms")
    print(
        f"tfidf batch of {n_batch}: fused {fused_batch:.0f} q/s, predict_proba {seed_batch:.0f} q/s "
        f"({fused_batch / seed_batch:.1f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a saved model directory (its four artifacts) instead of a fitted default")
    parser.add_argument("--skip-tfidf", action="store_true", help="leave out the one-vs-rest tfidf part")
    args = parse_args(__doc__, parser)
    config = default_config(args.data)
    prepared = prepare(config)
    tagger = Tagger.from_directory(args.model) if args.model else fit_and_evaluate(config, prepared).tagger
    evaluation = prepared.split.evaluation
    titles, bodies = evaluation["title"].tolist(), evaluation["body"].tolist()
    summary = default_kind(tagger, titles, bodies)
    if not args.skip_tfidf:
        one_vs_rest(args.data, titles, bodies)
    print(summary)


if __name__ == "__main__":
    main()
