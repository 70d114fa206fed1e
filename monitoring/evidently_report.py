"""One month's Evidently report: embedding drift, text descriptors and the top predicted tag."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.legacy.metrics.data_drift import embeddings_drift as _embeddings_drift
from evidently.legacy.metrics.data_drift.embedding_drift_methods import model
from evidently.legacy.renderers.html_widgets import text_widget
from evidently.metrics import EmbeddingsDrift, ValueDrift


class _PcaProjection:
    """Stands in for t-SNE in the report's embedding picture (same `fit_transform` interface).

    Evidently draws the embeddings with a 1,000-iteration t-SNE of up to 2 x 2,500 points: ~10 s
    a month on 2 cores, for a picture, which made a warm rerun no faster than the statistics
    allow. A PCA projection draws in milliseconds and is the projection the job's own PCA
    statistics and scatter plots use. The drift score never depended on it.
    """

    def __init__(self, n_components: int = 2, **_: object) -> None:
        self.n_components = n_components

    def fit_transform(self, frame: pd.DataFrame) -> np.ndarray:
        from sklearn.decomposition import PCA

        return PCA(n_components=self.n_components, random_state=0).fit_transform(frame)


# What Evidently's embedding picture used before `use_pca_projection` replaced it (tests/monitoring checks that
# upstream still draws with t-SNE; when it no longer does, the patch goes).
UPSTREAM_PROJECTION = {"TSNE": _embeddings_drift.TSNE, "SAMPLE_CONSTANT": _embeddings_drift.SAMPLE_CONSTANT}


def use_pca_projection() -> None:
    """Patch Evidently (0.7's legacy `EmbeddingsDriftMetric.calculate`) to draw its embedding picture with PCA.

    Upstream behaviour worked around: the picture is a `sklearn.manifold.TSNE` fit of up to 2 x 2,500 sampled
    points (`SAMPLE_CONSTANT`) on every report, ~10 s a month on 2 cores, for a picture only; the drift score
    does not depend on it. Here: `_PcaProjection` over up to 2 x 1,000 points. Applied by the drift job's entry
    point (`monitoring.runner.execute`), never at import; idempotent.
    """
    _embeddings_drift.TSNE = _PcaProjection
    _embeddings_drift.SAMPLE_CONSTANT = 1000


EMBEDDINGS = "sbert"
# Which Evidently stattest each descriptor gets, and why (see monitoring/job.py).
DESCRIPTOR_TESTS = {"length": "wasserstein", "code_share": "psi"}
TAG_TEST = "jensenshannon"  # bounded in [0, 1] whatever the number of tags, unlike chi-square on one column


def _frame(embeddings: np.ndarray, descriptors: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(embeddings, columns=[f"e{i}" for i in range(embeddings.shape[1])])
    frame[list(descriptors.columns)] = descriptors.to_numpy()
    return frame


def _run(metrics: list, current: pd.DataFrame, reference: pd.DataFrame, definition: DataDefinition, title: str):
    return Report(metrics, metadata={"title": title}).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )


def _values(snapshot: Snapshot, names: list[str]) -> dict[str, float]:
    values_in_order = [m.get("value") for m in snapshot.dict()["metrics"]]
    return {name: float(v) for name, v in zip(names, values_in_order, strict=True) if isinstance(v, int | float)}


@dataclass(frozen=True)
class MonthReports:
    """A month's Evidently results: the values (by our metric names), the embeddings/text snapshot and the
    predicted-tags snapshot (None without one). Rendered by `html` once sotag's verdict is known."""

    values: dict[str, float]
    snapshot: Snapshot
    tags_snapshot: Snapshot | None


def html(snapshot: Snapshot, header: str) -> str:
    """The standalone HTML report of `snapshot`, opening with `header` (Markdown) in Evidently's own text widget.

    The verdict a header states is known only after the report's values are judged, so the widget is added to the
    finished snapshot (its serialised model), not to the Report before it runs."""
    model = snapshot.to_snapshot_model()
    headed = model.copy(update={"widgets": [text_widget(text=header), *model.widgets]})
    return Snapshot.load_model(headed).get_html_str(as_iframe=False)


def month_report(
    reference: tuple[np.ndarray, pd.DataFrame],
    current: tuple[np.ndarray, pd.DataFrame],
    tags: tuple[np.ndarray, np.ndarray] | None,
    title: str,
) -> MonthReports:
    """The month's reports: embeddings and text against the reference months; the top predicted tag
    (reference, current) against the prediction baseline, which holds other questions (monitoring/baselines.py)."""
    ref, cur = _frame(*reference), _frame(*current)
    definition = DataDefinition(
        numerical_columns=list(DESCRIPTOR_TESTS),
        embeddings={EMBEDDINGS: [c for c in ref.columns if c.startswith("e") and c[1:].isdigit()]},
    )
    metrics = [
        # Primary: a domain classifier's ROC AUC (0.5 = the month looks like the reference).
        EmbeddingsDrift(embeddings_name=EMBEDDINGS, drift_method=model(bootstrap=False, threshold=0.55)),
        *(ValueDrift(column=c, method=m) for c, m in DESCRIPTOR_TESTS.items()),
    ]
    snapshot = _run(metrics, cur, ref, definition, title)
    values = _values(snapshot, ["embedding_drift_auc", "length_wasserstein", "code_share_psi"])
    if tags is None:
        return MonthReports(values, snapshot, None)
    tag_frames = [pd.DataFrame({"top_tag": t.astype(str)}) for t in tags]
    tag_snapshot = _run(
        [ValueDrift(column="top_tag", method=TAG_TEST)],
        tag_frames[1],
        tag_frames[0],
        DataDefinition(categorical_columns=["top_tag"]),
        f"{title}: the champion's top tag vs its prediction baseline",
    )
    values |= _values(tag_snapshot, ["top_tag_js"])
    return MonthReports(values, snapshot, tag_snapshot)
