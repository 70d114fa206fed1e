"""The served threshold, chosen by measurement: what the user sees is the best `top_k` tags scoring at least it.

A fixed threshold serves very differently per model (a label tree's probabilities over 2,000 tags are smaller than
a one-vs-rest head's over 100), so a training run chooses it on questions the model was not fitted on.

The objective is the F1 of the served set against all of the asker's tags, per question, averaged: precision =
right tags served / tags served (a question served nothing scores 0), recall = right tags served / min(top_k,
the asker's tag count). (The all-tags F1@k of tagger.metrics divides by k whatever is served, so a threshold
could only lower it: it ranks, it does not choose how many to serve.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sotag.tagger.metrics import top_k_indices

# Fine at the low end: a label tree's probabilities over thousands of tags are small (on the bundled sample the
# best served F1 was at 0.05, the lowest of a grid starting there).
GRID = (0.01, 0.02, 0.03, 0.04, *(round(float(t), 3) for t in np.arange(0.05, 0.625, 0.025)))


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold, its served F1 and no-tag share on the slice, and the table of every candidate."""

    threshold: float
    served_f1: float
    no_tag_share: float
    table: pd.DataFrame  # columns: threshold, served_f1, no_tag_share, tags_per_question


def served_table(
    scores: np.ndarray,
    vocabulary: Sequence[str],
    true_tags: Sequence[Sequence[str]],
    top_k: int,
    thresholds: Sequence[float] = GRID,
    min_tags: int = 0,
) -> pd.DataFrame:
    """For each threshold: the served set's mean F1 (questions with at least one tag), the share of questions
    served no tag, and the mean number served, each question served at least its best `min_tags`. `scores` is
    (n, n_tags) over `vocabulary`; ValueError when the row counts differ or no question has a tag."""
    if scores.shape[0] != len(true_tags):
        raise ValueError(f"true_tags: {len(true_tags)} rows for {scores.shape[0]} score rows")
    ranked = top_k_indices(scores, top_k)
    top = np.take_along_axis(scores, ranked, axis=1)
    names = np.asarray(vocabulary, dtype=object)[ranked]
    hit = np.array([[tag in set(truth) for tag in row] for row, truth in zip(names, true_tags, strict=True)])
    n_true = np.array([len(set(t)) for t in true_tags])
    tagged = n_true > 0
    if not tagged.any():
        raise ValueError("true_tags: no question has a tag")
    rows = []
    for t in thresholds:
        served = top >= t
        served[:, : min(min_tags, top_k)] = True  # ranked best first
        n_served = served.sum(axis=1)
        hits = (hit & served).sum(axis=1)
        precision = np.divide(hits, n_served, out=np.zeros(len(hits)), where=n_served > 0)
        recall = hits / np.maximum(np.minimum(top_k, n_true), 1)
        f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(hits)), where=hits > 0)
        rows.append(
            {
                "threshold": float(t),
                "served_f1": float(f1[tagged].mean()),
                "no_tag_share": float((n_served == 0).mean()),
                "tags_per_question": float(n_served.mean()),
            }
        )
    return pd.DataFrame(rows)


def choose_threshold(
    scores: np.ndarray,
    vocabulary: Sequence[str],
    true_tags: Sequence[Sequence[str]],
    top_k: int,
    thresholds: Sequence[float] = GRID,
    min_tags: int = 0,
) -> ThresholdChoice:
    """The threshold with the best served F1 (ties: the lower threshold, fewer questions left with no tag)."""
    table = served_table(scores, vocabulary, true_tags, top_k, thresholds, min_tags)
    best = table.sort_values(["served_f1", "threshold"], ascending=[False, True], kind="stable").iloc[0]
    return ThresholdChoice(float(best["threshold"]), float(best["served_f1"]), float(best["no_tag_share"]), table)
