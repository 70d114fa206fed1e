"""Figures logged to MLflow as artifacts."""

from __future__ import annotations

from collections import Counter

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sotag.tagger.metrics import decide


def per_tag_f1(per_tag: pd.DataFrame, limit: int = 40) -> Figure:
    """F1 of the `limit` most frequent tags of the evaluation window."""
    top = per_tag.head(limit).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, max(4, 0.22 * len(top))))
    ax.barh(top["tag"], top["f1"], color="#4C72B0")
    ax.set_xlabel("F1 at the served threshold")
    ax.set_xlim(0, 1)
    ax.set_title(f"Per-tag F1 ({len(top)} most frequent tags in the evaluation window)")
    fig.tight_layout()
    return fig


def frequent_confusions(
    scores: np.ndarray,
    y_true: np.ndarray,
    vocabulary: list[str],
    top_k: int,
    threshold: float,
    min_tags: int = 0,
    limit: int = 20,
) -> tuple[Figure, pd.DataFrame]:
    """Most frequent (missed true tag -> wrongly predicted tag) pairs, as bars and a table.

    A pair is counted for a question when the true tag was not predicted and the other
    tag was predicted without being true.
    """
    predicted = decide(scores, top_k, threshold, min_tags).astype(bool)
    truth = y_true.astype(bool)
    counts: Counter[tuple[str, str]] = Counter()
    missed_rows, wrong_rows = truth & ~predicted, predicted & ~truth
    for missed, wrong in zip(missed_rows, wrong_rows, strict=True):
        if missed.any() and wrong.any():
            for m in np.flatnonzero(missed):
                for w in np.flatnonzero(wrong):
                    counts[(vocabulary[m], vocabulary[w])] += 1
    table = pd.DataFrame(
        [(t, p, n) for (t, p), n in counts.most_common(limit)], columns=["true_tag", "predicted_tag", "count"]
    )
    fig, ax = plt.subplots(figsize=(8, max(3, 0.3 * len(table))))
    labels = [f"{t} → {p}" for t, p in zip(table["true_tag"], table["predicted_tag"], strict=True)][::-1]
    ax.barh(labels, table["count"][::-1], color="#C44E52")
    ax.set_xlabel("questions")
    ax.set_title("Most frequent confusions (true tag missed → other tag predicted)")
    fig.tight_layout()
    return fig, table


def comparison_bars(table: pd.DataFrame, metric: str, label: str) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bars = ax.bar(table["vectorizer"], table[metric], color=["#4C72B0", "#55A868", "#C44E52", "#8172B2"][: len(table)])
    ax.bar_label(bars, fmt="%.3f")
    ax.set_ylim(0, 1)
    ax.set_ylabel(label)
    ax.set_title(f"{label} per vectorizer")
    fig.tight_layout()
    return fig


def reliability(table: pd.DataFrame) -> Figure:
    """The reliability diagram: per score bin, the share of suggestions the askers chose against the mean score,
    for the kind's raw scores and the served (calibrated) ones; the diagonal is a calibrated model."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    for name, rows in table.groupby("scores", sort=True):
        ax.plot(rows["mean_score"], rows["chosen_share"], marker="o", label=f"{name} scores")
    ax.set_xlabel("mean score of the bin (each question's 5 best tags)")
    ax.set_ylabel("share the askers chose")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    plt.close(fig)
