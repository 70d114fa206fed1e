"""What every benchmark shares: the data path argument and a fitted default model."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sotag.data import resolve_data_paths
from sotag.infra.argtypes import add_data_argument
from sotag.settings import Settings, load_settings
from sotag.tagger.errors import DataError
from sotag.training.config import TrainConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_args(description: str, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """`--data` (one or several files or folders, as for `sotag train`) parsed into `args.data`, a tuple of
    paths; a path that does not exist exits 2 naming it. `parser`: one with the benchmark's own flags."""
    parser = parser or argparse.ArgumentParser(description=description)
    add_data_argument(parser)
    args = parser.parse_args()
    try:
        given = tuple(v for v in getattr(args, "data", ()) if v)
        edge = bench_settings()
        args.data = resolve_data_paths(given or edge.data, edge.home, edge.store_file)
    except DataError as exc:
        parser.exit(2, f"error: {exc}\n")
    return args


def bench_settings() -> Settings:
    """The settings a `sotag` command run here would have (the benches' edge)."""
    return load_settings().settings


def default_config(data: tuple[Path, ...], **overrides: object) -> TrainConfig:
    return replace(TrainConfig(data=data, register=False, cache_dir=bench_settings().cache), **overrides)


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


def fit_default_in_store(data: tuple[Path, ...], root: Path, experiment: str, **overrides: object) -> DefaultInStore:
    """The default configuration (with `overrides`, e.g. `vectorizer="tfidf"`) fitted on `data`."""
    from sotag.infra.tracking import TrackingSettings, use_fluent
    from sotag.training.fit import fit_and_evaluate, prepare

    config = default_config(data, **overrides)
    prepared = prepare(config)
    result = fit_and_evaluate(config, prepared)
    settings = TrackingSettings(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri())
    client = settings.client()
    use_fluent(settings, experiment)  # the bench logs its models with MLflow's fluent API
    example = prepared.split.evaluation.head(2)[["title", "body"]].reset_index(drop=True)
    return DefaultInStore(config, prepared, result, settings, client, example)
