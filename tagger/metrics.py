"""Ranking and multi-label metrics: the one metrics module used by training, promotion and monitoring.

Conventions
-----------
* `scores` is an (n_questions, n_tags) array of per-tag probabilities; `y_true` the matching
  0/1 indicator matrix restricted to the model's tag vocabulary.
* Questions with no vocabulary tag are excluded from every metric (nothing can be ranked
  for them); `n_evaluated` says how many remain.
* Precision@k = hits in the top k / k.
* Recall@k = hits in the top k / min(k, |true tags|). The denominator is capped at k so that
  a perfect ranking scores 1.0 for every k (a question with 5 tags cannot be fully recalled
  by one suggestion). This is the convention the baseline figures use.
* F1@k = per-question harmonic mean of Precision@k and Recall@k, averaged over questions.
* Threshold metrics (micro/macro F1, Jaccard, Hamming loss, coverage, per-tag table) use the
  served decision: a tag is predicted when it is among the top `top_k` and its score is at
  least `threshold`.
* Tag coverage = share of the vocabulary predicted at least once on the evaluated questions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, hamming_loss, jaccard_score, precision_recall_fscore_support

from sotag.tagger.errors import DataError

KS = (1, 3, 5)


@dataclass(frozen=True)
class Evaluation:
    """Every metric of one evaluation plus the per-tag table."""

    metrics: dict[str, float]
    per_tag: pd.DataFrame


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k best scores per row, best first (partial sort, then sort k)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def ranking_metrics(scores: np.ndarray, y_true: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """Precision@k, Recall@k and F1@k for each k (see the module docstring for definitions)."""
    n_true = y_true.sum(axis=1)
    keep = n_true > 0
    scores, y_true, n_true = scores[keep], y_true[keep], n_true[keep]
    ranked = top_k_indices(scores, max(ks))
    hits_at = np.cumsum(np.take_along_axis(y_true, ranked, axis=1), axis=1)
    return _at_k(hits_at, n_true, ks, lambda k: min(k, ranked.shape[1]) - 1, "")


def _at_k(
    hits_at: np.ndarray, n_true: np.ndarray, ks: Sequence[int], column: Callable[[int], int], suffix: str
) -> dict[str, float]:
    """Mean P@k, R@k (denominator min(k, n_true)) and F1@k from cumulative hits per rank ((n, depth) array)."""
    out: dict[str, float] = {}
    for k in ks:
        hits = hits_at[:, column(k)]
        precision = hits / k
        recall = hits / np.minimum(k, n_true)
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)
        out[f"precision_at_{k}{suffix}"] = float(precision.mean())
        out[f"recall_at_{k}{suffix}"] = float(recall.mean())
        out[f"f1_at_{k}{suffix}"] = float(f1.mean())
    return out


def decide(scores: np.ndarray, top_k: int, threshold: float, min_tags: int = 0) -> np.ndarray:
    """The served decision as a 0/1 matrix: top `top_k` tags whose score is >= `threshold`, and at least the best
    `min_tags` (a version's config.min_tags) whatever their score."""
    predicted = np.zeros(scores.shape, dtype=np.int8)
    ranked = top_k_indices(scores, top_k)
    rows = np.arange(scores.shape[0])[:, None]
    served = np.take_along_axis(scores, ranked, axis=1) >= threshold
    served[:, : min(min_tags, top_k)] = True  # ranked is best first
    predicted[rows, ranked] = served
    return predicted


def evaluate(
    scores: np.ndarray, y_true: np.ndarray, vocabulary: list[str], top_k: int, threshold: float, min_tags: int = 0
) -> Evaluation:
    """All metrics for one model on one evaluation set (the questions with at least one vocabulary tag);
    DataError when none has one (a tiny or mismatched evaluation window is bad input, not a crash)."""
    keep = y_true.sum(axis=1) > 0
    if not keep.any():
        raise DataError(
            f"evaluation: none of its {len(keep)} questions carries one of the {len(vocabulary)} vocabulary tags; "
            "move --split-date (or --eval-end) or raise --top-n-tags"
        )
    scores, y_true = scores[keep], y_true[keep]
    predicted = decide(scores, top_k, threshold, min_tags)
    metrics = ranking_metrics(scores, y_true)
    metrics.update(
        f1_micro=float(f1_score(y_true, predicted, average="micro", zero_division=0)),
        f1_macro=float(f1_score(y_true, predicted, average="macro", zero_division=0)),
        jaccard=float(jaccard_score(y_true, predicted, average="samples", zero_division=0)),
        hamming_loss=float(hamming_loss(y_true, predicted)),
        tag_coverage=float((predicted.sum(axis=0) > 0).mean()),
        no_tag_share=float((predicted.sum(axis=1) == 0).mean()),
        n_evaluated=float(len(y_true)),
    )
    precision, recall, f1, support = precision_recall_fscore_support(y_true, predicted, average=None, zero_division=0)
    per_tag = pd.DataFrame(
        {
            "tag": vocabulary,
            "support": support,
            "predicted": predicted.sum(axis=0),
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }
    ).sort_values(["support", "tag"], ascending=[False, True], ignore_index=True)
    return Evaluation(metrics=metrics, per_tag=per_tag)


def quality_line(metrics: dict[str, float], label: str = "quality") -> str:
    """The one-line summary `make bench-quality` prints."""
    m = metrics
    return (
        f"{label}: P@1={m['precision_at_1']:.4f} P@3={m['precision_at_3']:.4f} R@3={m['recall_at_3']:.4f} "
        f"P@5={m['precision_at_5']:.4f} R@5={m['recall_at_5']:.4f} F1@3={m['f1_at_3']:.4f} "
        f"F1@5={m['f1_at_5']:.4f} coverage={m['tag_coverage']:.4f}"
    )


# --- All-tags metrics: what a user gets ------------------------------------------------------------------------
#
# The in-vocabulary metrics above score a model only on its own tags and only on questions that carry one of them,
# so models with different vocabularies cannot be compared with them. These score the ranked suggestions against
# EVERY tag the asker chose, on every question that has at least one tag (a question whose tags are all outside the
# vocabulary counts, with 0 hits). Same definitions otherwise: P@k = hits in the first k / k, R@k = hits in the
# first k / min(k, |asker's tags|), F1@k their per-question harmonic mean averaged over questions. A list shorter
# than k (a threshold cut it) counts its missing places as misses. Vocabulary coverage = share of the askers' tag
# occurrences that are in the model's vocabulary (the ceiling of all-tags recall at large k).


def ranked_tags(scores: np.ndarray, vocabulary: Sequence[str], k: int) -> list[list[str]]:
    """The `k` best-scoring tags of each row of an (n, n_tags) score matrix, best first."""
    names = np.asarray(vocabulary, dtype=object)
    return names[top_k_indices(scores, k)].tolist()


def _row_keys(lists: Sequence[Sequence[str]], codes: dict[str, int], width: int | None = None) -> np.ndarray:
    """Tag lists as one int64 key per (row, tag): row * n_codes + code; -1 pads a ragged (row, width) table."""
    n_codes = len(codes) + 1
    if width is None:  # flat: every (row, tag) pair
        lengths = np.fromiter((len(r) for r in lists), dtype=np.int64, count=len(lists))
        flat = np.fromiter((codes[t] for r in lists for t in r), dtype=np.int64, count=int(lengths.sum()))
        return np.repeat(np.arange(len(lists), dtype=np.int64), lengths) * n_codes + flat
    table = np.full((len(lists), width), -1, dtype=np.int64)
    for i, row in enumerate(lists):
        first = [codes[t] for t in row[:width]]
        table[i, : len(first)] = first
    rows = np.arange(len(lists), dtype=np.int64)[:, None] * n_codes
    return np.where(table >= 0, rows + table, -1)


def all_tags_metrics(
    suggested: Sequence[Sequence[str]], true_tags: Sequence[Sequence[str]], ks: tuple[int, ...] = KS
) -> dict[str, float]:
    """P@k, R@k, F1@k over all of the asker's tags (see the section comment), plus `n_all`, the questions scored.

    `suggested[i]`: question i's suggestions, best first (any length; only the first max(ks) count).
    `true_tags[i]`: every tag its asker chose. Questions with no tag at all are left out (nothing to recall).
    Raises ValueError when the two lists differ in length or no question has a tag.
    """
    if len(suggested) != len(true_tags):
        raise ValueError(f"suggested: {len(suggested)} lists for {len(true_tags)} questions")
    keep = [i for i, row in enumerate(true_tags) if len(row) > 0]
    if not keep:
        raise ValueError("true_tags: no question has a tag")
    suggested = [suggested[i] for i in keep]
    true_tags = [list(dict.fromkeys(true_tags[i])) for i in keep]  # a tag listed twice counts once
    codes: dict[str, int] = {}
    for row in (*suggested, *true_tags):
        for tag in row:
            codes.setdefault(tag, len(codes))
    width = max(ks)
    offered = _row_keys(suggested, codes, width)  # (n, width), -1 where a list is short
    hit = np.isin(offered, _row_keys(true_tags, codes)) & (offered >= 0)
    hits_at = np.cumsum(hit, axis=1)
    n_true = np.fromiter((len(r) for r in true_tags), dtype=np.int64, count=len(true_tags))
    out = _at_k(hits_at, n_true, ks, lambda k: k - 1, "_all")
    out["n_all"] = float(len(true_tags))
    return out


def vocabulary_coverage(vocabulary: Iterable[str], true_tags: Sequence[Sequence[str]]) -> float:
    """Share of the askers' tag occurrences that the vocabulary contains (0.0 when there are none)."""
    known = set(vocabulary)
    occurrences = [t for row in true_tags for t in row]
    if not occurrences:
        return 0.0
    return float(np.mean(pd.Index(occurrences).isin(list(known))))


def all_tags_evaluation(
    suggested: Sequence[Sequence[str]], true_tags: Sequence[Sequence[str]], vocabulary: Iterable[str]
) -> dict[str, float]:
    """`all_tags_metrics` plus `vocabulary_coverage`, one dict."""
    metrics = all_tags_metrics(suggested, true_tags)
    metrics["vocabulary_coverage"] = vocabulary_coverage(vocabulary, true_tags)
    return metrics


def quality_all_line(metrics: dict[str, float], label: str = "quality-all") -> str:
    """The all-tags summary line `make bench-quality` prints after the in-vocabulary ones."""
    m = metrics
    return (
        f"{label}: P@1={m['precision_at_1_all']:.4f} R@3={m['recall_at_3_all']:.4f} R@5={m['recall_at_5_all']:.4f} "
        f"F1@3={m['f1_at_3_all']:.4f} coverage={m['vocabulary_coverage']:.4f}"
    )


ALL_TAGS_HEADLINE = ("precision_at_1_all", "recall_at_3_all", "recall_at_5_all", "f1_at_3_all", "vocabulary_coverage")


def all_tags_from_scores(
    scores: np.ndarray, vocabulary: Sequence[str], true_tags: Sequence[Sequence[str]]
) -> dict[str, float]:
    """`all_tags_evaluation` of a score matrix: each row's max(KS) best tags, unthresholded, against every tag its
    asker chose (`true_tags[i]`, the full list, not restricted to the vocabulary). `scores`: (n, len(vocabulary))."""
    return all_tags_evaluation(ranked_tags(scores, vocabulary, max(KS)), true_tags, vocabulary)


def served_no_tag_share(scores: np.ndarray, threshold: float, min_tags: int = 0) -> float:
    """The share of questions given no tag at all at the served threshold (every score below it); none when the
    version serves at least `min_tags` >= 1 tags."""
    if scores.shape[0] == 0 or (min_tags > 0 and scores.shape[1] > 0):
        return 0.0
    return float((scores.max(axis=1) < threshold).mean())


def suggestion_hits(
    scores: np.ndarray, vocabulary: Sequence[str], true_tags: Sequence[Sequence[str]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each question's `k` best-scored tags, flat: (their scores, 1.0 where the asker chose the tag)."""
    if scores.shape[0] != len(true_tags):
        raise ValueError(f"true_tags: {len(true_tags)} rows for {scores.shape[0]} score rows")
    top = top_k_indices(scores, min(k, scores.shape[1]))
    chosen = np.take_along_axis(scores, top, axis=1).ravel().astype(np.float64)
    names = np.asarray(vocabulary, dtype=object)[top]
    hits = np.array(
        [name in set(tags) for row, tags in zip(names, true_tags, strict=True) for name in row], dtype=np.float64
    )
    return chosen, hits


def reliability_bins(
    scores: np.ndarray, vocabulary: Sequence[str], true_tags: Sequence[Sequence[str]], k: int = 5, bins: int = 10
) -> pd.DataFrame:
    """The reliability diagram: each question's `k` best suggestions binned by score (`bins` equal-width bins over
    [0, 1]); per non-empty bin its mean score, the share of its suggestions the askers chose, and its count."""
    chosen, hits = suggestion_hits(scores, vocabulary, true_tags, k)
    which = np.minimum((np.clip(chosen, 0, 1) * bins).astype(int), bins - 1)
    rows = [
        {
            "bin_low": b / bins,
            "bin_high": (b + 1) / bins,
            "mean_score": float(chosen[which == b].mean()),
            "chosen_share": float(hits[which == b].mean()),
            "count": int((which == b).sum()),
        }
        for b in range(bins)
        if (which == b).any()
    ]
    return pd.DataFrame(rows, columns=["bin_low", "bin_high", "mean_score", "chosen_share", "count"])


def expected_calibration_error(
    scores: np.ndarray, vocabulary: Sequence[str], true_tags: Sequence[Sequence[str]], k: int = 5, bins: int = 10
) -> float:
    """How far the scores are from probabilities: the reliability bins' |share chosen - mean score|, weighted by
    the bins' sizes (ECE, Guo et al. 2017). 0 is calibrated; NaN for scores outside [0, 1] (margins)."""
    if scores.size == 0 or scores.min() < 0 or scores.max() > 1:
        return float("nan")
    table = reliability_bins(scores, vocabulary, true_tags, k, bins)
    weights = table["count"] / table["count"].sum()
    return float((weights * (table["chosen_share"] - table["mean_score"]).abs()).sum())
