"""Drift plots: every statistic over the months, and each month's PCA scatter over the reference.

`render` draws both from the job's result, once, as PNG bytes: the reports folder and MLflow take the same bytes.
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sotag.infra.drift_summary import DriftSummary
from sotag.monitoring.job import DriftResult
from sotag.monitoring.severity import Rule

SEVERITY_COLOURS = {"unjudged": "#9e9e9e", "ok": "#2e7d32", "warn": "#f9a825", "alert": "#c62828"}
SERIES = (
    "embedding_drift_auc",
    "centroid_cosine_distance",
    "pca_wasserstein_max",
    "pca_ks_pvalue_min",
    "tag_psi",
    "tag_chi2_pvalue",
    "top_tag_js",
    "no_tag_share",
    "length_wasserstein",
    "code_share_psi",
    "precision_at_1",
    "recall_at_5",
    "f1_at_3",
    "tag_coverage",
)


TIME_SERIES = "drift_over_time.png"
PCA_GRID = "pca_by_month.png"


def render(result: DriftResult, rules: tuple[Rule, ...]) -> dict[str, bytes]:
    """The two figures of a job, file name -> PNG bytes; none when no window holds a question (nothing to draw)."""
    if not result.months:
        return {}
    panels = [(m.month, m.pca, m.severity) for m in result.months]
    return {
        TIME_SERIES: png(time_series(result.summary(), list(rules)), dpi=100),
        PCA_GRID: png(pca_grid(result.reference_pca, panels), dpi=90),
    }


def png(fig: plt.Figure, dpi: int) -> bytes:
    """The figure drawn once as PNG; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    close(fig)
    return buffer.getvalue()


def time_series(summary: DriftSummary, rules: list[Rule]) -> plt.Figure:
    points = summary.month_rows()
    months = [m["month"] for m in points]
    present = [s for s in SERIES if any(s in m for m in points)]
    cols = 3
    rows = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 2.8 * rows), squeeze=False)
    by_metric = {r.metric: r for r in rules}
    x = np.arange(len(months))
    for ax, name in zip(axes.flat, present, strict=False):
        y = [m.get(name, np.nan) for m in points]
        ax.plot(x, y, color="#555", linewidth=1)
        ax.scatter(x, y, c=[SEVERITY_COLOURS[m["severity"]] for m in points], zorder=3, s=22)
        rule, ref = by_metric.get(name), summary.reference.get(name)
        if ref is not None:
            ax.axhline(ref, color="#1565c0", linestyle=":", linewidth=1, label="baseline")
        if rule is not None:
            for level, colour in (("warn", SEVERITY_COLOURS["warn"]), ("alert", SEVERITY_COLOURS["alert"])):
                bound = getattr(rule, level)
                if rule.direction == "drop" and ref is not None:
                    bound = ref * (1 - bound) if rule.relative else ref - bound
                elif rule.direction == "drop_negative" and ref is not None:
                    bound = ref + bound
                elif rule.direction != "above":
                    continue
                ax.axhline(bound, color=colour, linestyle="--", linewidth=1)
        ax.set_title(name, fontsize=9)
        ax.set_xticks(x, months, rotation=60, fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(present) :]:
        ax.axis("off")
    fig.suptitle("drift per month (dots: green ok, amber warn, red alert; dashed: thresholds)", fontsize=10)
    # Fixed margins: tight_layout measured every label and took as long as drawing the figure.
    fig.subplots_adjust(left=0.05, right=0.98, top=1 - 0.35 / rows, bottom=0.5 / rows, hspace=0.75, wspace=0.2)
    return fig


def pca_grid(reference: np.ndarray, months: list[tuple[str, np.ndarray, str]], cols: int = 4) -> plt.Figure:
    """Each month's embeddings (PCA of the reference) over the reference, one panel a month."""
    rows = math.ceil(len(months) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False, sharex=True, sharey=True)
    for ax, (month, current, severity) in zip(axes.flat, months, strict=False):
        ax.scatter(reference[:, 0], reference[:, 1], s=3, alpha=0.2, color="#9e9e9e", rasterized=True)
        ax.scatter(current[:, 0], current[:, 1], s=4, alpha=0.6, color=SEVERITY_COLOURS[severity], rasterized=True)
        ax.set_title(f"{month} ({severity})", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(months) :]:
        ax.axis("off")
    fig.suptitle("SBERT embeddings on the reference's first two PCA components (grey: reference)", fontsize=10)
    fig.subplots_adjust(left=0.05, right=0.98, top=1 - 0.3 / rows, bottom=0.25 / rows, hspace=0.3, wspace=0.1)
    return fig


def close(fig: plt.Figure) -> None:
    plt.close(fig)
