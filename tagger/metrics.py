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

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, hamming_loss, jaccard_score, precision_recall_fscore_support

from tagger.errors import DataError

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
    out: dict[str, float] = {}
    for k in ks:
        hits = hits_at[:, min(k, ranked.shape[1]) - 1]
        precision = hits / k
        recall = hits / np.minimum(k, n_true)
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)
        out[f"precision_at_{k}"] = float(precision.mean())
        out[f"recall_at_{k}"] = float(recall.mean())
        out[f"f1_at_{k}"] = float(f1.mean())
    return out


def decide(scores: np.ndarray, top_k: int, threshold: float) -> np.ndarray:
    """The served decision as a 0/1 matrix: top `top_k` tags whose score is >= `threshold`."""
    predicted = np.zeros(scores.shape, dtype=np.int8)
    ranked = top_k_indices(scores, top_k)
    rows = np.arange(scores.shape[0])[:, None]
    predicted[rows, ranked] = np.take_along_axis(scores, ranked, axis=1) >= threshold
    return predicted


def evaluate(scores: np.ndarray, y_true: np.ndarray, vocabulary: list[str], top_k: int, threshold: float) -> Evaluation:
    """All metrics for one model on one evaluation set (the questions with at least one vocabulary tag);
    DataError when none has one (a tiny or mismatched evaluation window is bad input, not a crash)."""
    keep = y_true.sum(axis=1) > 0
    if not keep.any():
        raise DataError(
            f"evaluation: none of its {len(keep)} questions carries one of the {len(vocabulary)} vocabulary tags; "
            "move --split-date (or --eval-end) or raise --top-n-tags"
        )
    scores, y_true = scores[keep], y_true[keep]
    predicted = decide(scores, top_k, threshold)
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
