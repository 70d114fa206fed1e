"""What every benchmark shares: the data path argument and a fitted default model."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from infra.cache import cache_dir
from tagger.data import default_data_path
from training.config import TrainConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=None, help="questions file (default: $SOTAG_DATA or shared data)")
    args = parser.parse_args()
    args.data = args.data or default_data_path()
    if not args.data.is_file():
        parser.exit(2, f"error: no data file at {args.data} (set DATA=path or SOTAG_DATA)\n")
    return args


def default_config(data: Path, **overrides: object) -> TrainConfig:
    return replace(TrainConfig(data=data, register=False, cache_dir=cache_dir(os.environ)), **overrides)


@dataclass
class DefaultInStore:
    """The default configuration fitted on `data`, and a throwaway store (experiment set) to log it in."""

    config: TrainConfig
    prepared: Any
    result: Any
    settings: Any
    client: Any
    example: Any  # two evaluation questions: the logged model's input example

    @property
    def tagger(self):
        return self.result.tagger

    def write(self, directory: Path) -> Path:
        return self.result.tagger.save(directory, self.result.mlb)


def fit_default_in_store(data: Path, root: Path, experiment: str, **overrides: object) -> DefaultInStore:
    """The default configuration (with `overrides`, e.g. `vectorizer="tfidf"`) fitted on `data`."""
    from infra.tracking import TrackingSettings, use_fluent
    from training.fit import fit_and_evaluate, prepare

    config = default_config(data, **overrides)
    prepared = prepare(config)
    result = fit_and_evaluate(config, prepared)
    settings = TrackingSettings(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri())
    client = settings.client()
    use_fluent(settings, experiment)  # the bench logs its models with MLflow's fluent API
    example = prepared.split.evaluation.head(2)[["title", "body"]].reset_index(drop=True)
    return DefaultInStore(config, prepared, result, settings, client, example)
