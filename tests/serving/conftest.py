"""A registered champion on a throwaway store, shared by the serving tests of one module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from sotag.infra.tracking import MODEL_NAME, TrackingSettings, use_fluent
from sotag.registry.gate import GateConfig
from sotag.training.config import TrainConfig
from tests.support.settings import tracking_settings

SMALL = dict(
    vectorizer="tfidf", split_date="2018-03-01", top_n_tags=8, max_features=2000, min_df=1, C=10.0, threshold=0.2
)


@dataclass
class Store:
    root: Path
    settings: TrackingSettings
    data: Path
    env: dict[str, str]

    def train(self, **overrides: object) -> str:
        """A new version, registered as @challenger (not promoted)."""
        from sotag.training.train import train

        config = TrainConfig(data=self.data, cache_dir=self.root / "cache", **{**SMALL, **overrides})
        return train(config, use_fluent(self.settings, config.experiment)).version

    def train_and_promote(self, **overrides: object) -> str:
        from sotag.registry.lifecycle import promote
        from sotag.registry.store import open_registry

        version = self.train(**overrides)
        # Serving tests need a champion to serve, not a gate decision: promoted without floor, cases, latency
        # budget (a loaded machine's p50 is no concern here) or margin over the champion, and over a broken
        # champion as an operator would (--replace-broken-champion).
        gate = GateConfig(
            data=self.data,
            floor=0.0,
            behaviour_cases=None,
            replace_broken_champion=True,
            max_latency_ms=1e9,
            min_delta=-1.0,
        )
        result = promote(open_registry(self.settings, MODEL_NAME), gate, version)
        assert result.champion == version, result.verdict.reason if result.verdict else result
        return version


@contextmanager
def throwaway_store(root: Path, data: Path) -> Iterator[Store]:
    """An embedded MLflow store under `root`, active (and in the environment) while the block runs."""
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "SOTAG_ARTIFACT_ROOT": (root / "artifacts").as_uri(),
        "SOTAG_LOCK_DIR": str(root / "locks"),
        "SOTAG_HOME": str(root),
        # One worker unless a test asks for more (tests/serving/test_workers.py): the tests of one process's
        # behaviour read its counters and state as one process's.
        "SOTAG_GATEWAY__WORKERS": "1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        settings = tracking_settings()
        # For the tests' own bare MlflowClient(): product code takes `settings` instead.
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.registry_uri)
        yield Store(root=root, settings=settings, data=data, env=env)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, questions_parquet: Path):
    with throwaway_store(tmp_path_factory.mktemp("serving-store"), questions_parquet) as s:
        s.train_and_promote()
        yield s
