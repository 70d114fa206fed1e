"""The registry tests' small trained versions and their registry, on the test's own embedded store."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sotag.infra.tracking import MODEL_NAME, use_fluent
from sotag.registry.store import Registry, open_registry
from sotag.training.config import TrainConfig
from sotag.training.train import train

# A top-8 TF-IDF model on the synthetic questions: trained in seconds, good enough to pass the tests' floors.
SMALL = dict(
    vectorizer="tfidf", split_date="2018-03-01", top_n_tags=8, max_features=2000, min_df=1, C=10.0, threshold=0.2
)


@pytest.fixture()
def make_version(tracking, questions_parquet, tmp_path) -> Callable[..., str]:
    """Train and register one version (SMALL with `overrides`); returns its version number."""

    def _train(**overrides: object) -> str:
        config = TrainConfig(data=questions_parquet, cache_dir=tmp_path / "cache", **{**SMALL, **overrides})
        return train(config, use_fluent(tracking, config.experiment)).version

    return _train


@pytest.fixture()
def registry(tracking) -> Registry:
    return open_registry(tracking, MODEL_NAME)
