"""monitoring/evidently_report.use_pca_projection still works around Evidently: this fails once upstream changed, and
then the patch goes."""

from __future__ import annotations

import inspect


def test_evidently_still_draws_its_embedding_picture_with_tsne_over_2500_points():
    from evidently.legacy.metrics.data_drift.embeddings_drift import EmbeddingsDriftMetric
    from sklearn.manifold import TSNE

    from sotag.monitoring.evidently_report import UPSTREAM_PROJECTION

    assert UPSTREAM_PROJECTION["TSNE"] is TSNE
    assert UPSTREAM_PROJECTION["SAMPLE_CONSTANT"] > 1000
    assert "TSNE(n_components=2).fit_transform" in inspect.getsource(EmbeddingsDriftMetric.calculate)
