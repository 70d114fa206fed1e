"""Everything one training run writes to MLflow: params, metrics, dataset, plots, model, registry version."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.data
import pandas as pd
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import get_dataset_source_from_json
from mlflow.tracking import MlflowClient

from sotag.data import describe_data
from sotag.data.store import StoreSource, as_store_source, source_snapshot
from sotag.registry.card import ModelCard
from sotag.registry.publish import log_pyfunc, register_challenger
from sotag.tagger.explain import top_terms_per_tag
from sotag.training import plots
from sotag.training.config import TrainConfig
from sotag.training.fit import FitResult, Prepared


def light_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Questions as an MLflow dataset holds them: MLflow hashes the frame for its digest and list cells are
    unhashable, so tags go in as `<a><b>`; ids are identifiers, not quantities, so they go in as strings."""
    return frame.assign(id=frame["id"].astype(str), tags=frame["tags"].map(lambda ts: "".join(f"<{t}>" for t in ts)))


def dataset_source(data: Sequence[Path]) -> DatasetSource:
    """The local data as an MLflow dataset source (named explicitly: a bare path matches two registered local
    sources and warns). An MLflow source holds one URI: one input's own, or the folder that holds several inputs
    (the run's `data_source` tag lists each of them)."""
    # A question store: its SQLite file, or its server database's URL without the password (StoreSource.shown).
    uris = [p.shown if isinstance(p, StoreSource) else str(Path(p).resolve()) for p in data]
    local = [u for u in uris if "://" not in u]
    uri = uris[0] if len(uris) == 1 or not local else os.path.commonpath(local)
    return get_dataset_source_from_json(json.dumps({"uri": uri}), source_type="local")


def data_name(data: Sequence[Path]) -> str:
    """The data's name in MLflow's dataset view: the input's file name, or the names joined by `+`."""
    return "+".join(p.name if isinstance(p, StoreSource) else Path(p).name for p in data)


def log_dataset(prepared: Prepared, config: TrainConfig) -> str:
    """Log train and evaluation windows as run inputs; return the digest of the whole data set (every input
    together, after validation: adding a file with new questions changes it)."""
    light = light_frame
    source = dataset_source(config.data)
    name = data_name(config.data)
    for context, frame in (("training", prepared.split.train), ("evaluation", prepared.split.evaluation)):
        dataset = mlflow.data.from_pandas(light(frame), source=source, name=f"{name}:{context}")
        mlflow.log_input(dataset, context=context)
    digest = mlflow.data.from_pandas(light(prepared.frame), source=source, name=name).digest
    mlflow.set_tags({"data_digest": digest, "data_source": describe_data([p.resolve() for p in config.data])[:5000]})
    mlflow.set_tags(store_tags(config.data))
    return digest


def store_tags(data: Sequence[Path]) -> dict[str, str]:
    """For a run that read a question store (sotag ingest): which store, and its snapshot (load and digest) then."""
    for path in data:
        source = path if isinstance(path, StoreSource) else as_store_source(path)
        if isinstance(source, StoreSource):
            snapshot = source_snapshot(source)
            if snapshot is not None:
                tags = {
                    "data_store": source.shown,  # the SQLite file, or the server database's URL (no password)
                    "data_store_load": str(snapshot["id"]),
                    "data_store_snapshot": snapshot["digest"],
                }
                if source.describe_window():  # the store read within store.since..store.until
                    tags["data_store_window"] = source.describe_window()
                return tags
    return {}


def log_evaluation(result: FitResult, prefix: str = "") -> None:
    mlflow.log_metrics({f"{prefix}{k}": v for k, v in result.evaluation.metrics.items()})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "per_tag_metrics.csv"
        result.evaluation.per_tag.to_csv(path, index=False)
        mlflow.log_artifact(str(path), "evaluation")
        # What drives each tag (bow/tfidf): the terms with the largest positive weights.
        terms = top_terms_per_tag(result.tagger)
        if terms is not None:
            path = Path(tmp) / "top_terms_per_tag.csv"
            terms.to_csv(path, index=False)
            mlflow.log_artifact(str(path), "evaluation")
    fig = plots.per_tag_f1(result.evaluation.per_tag)
    mlflow.log_figure(fig, "evaluation/per_tag_f1.png")
    plots.close(fig)
    config = result.tagger.config
    fig, table = plots.frequent_confusions(
        result.eval_scores, result.eval_truth, config.vocabulary, config.top_k, config.threshold, config.min_tags
    )
    mlflow.log_figure(fig, "evaluation/frequent_confusions.png")
    mlflow.log_table(table, "evaluation/frequent_confusions.json")
    plots.close(fig)
    if result.reliability is not None and not result.reliability.empty:
        mlflow.log_table(result.reliability, "calibration/reliability.json")
        fig = plots.reliability(result.reliability)
        mlflow.log_figure(fig, "calibration/reliability.png")
        plots.close(fig)


def log_details(result: FitResult) -> None:
    """What the model kind adds to its run (tagger.kinds.base.RunRecord): params, metrics and tables."""
    record = result.record
    if record.params:
        mlflow.log_params(record.params)
    if record.metrics:
        mlflow.log_metrics(record.metrics)
    for path, table in record.tables.items():
        mlflow.log_table(table, path)


@dataclass(frozen=True)
class LoggedModel:
    model_uri: str
    version: str | None


def log_model(
    result: FitResult, prepared: Prepared, config: TrainConfig, digest: str, client: MlflowClient
) -> LoggedModel:
    """Log the pyfunc with its four artifacts in the active run; register it as `challenger` (through `client`,
    a client of the run's store) when asked."""
    tagger = result.tagger
    example = prepared.split.evaluation.head(2)[["title", "body"]].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = tagger.save(Path(tmp) / "artifacts", result.mlb)
        info = log_pyfunc(
            model_dir,
            config.vectorizer,
            config.top_k,
            tagger.config.threshold,
            example,
            config.model_name if config.register else None,
        )
    version = str(info.registered_model_version) if config.register else None
    if version is not None:
        describe_version(client, config, version, result, digest)
    return LoggedModel(model_uri=info.model_uri, version=version)


def describe_version(client: MlflowClient, config: TrainConfig, version: str, result: FitResult, digest: str) -> None:
    run_id = mlflow.active_run().info.run_id
    m = result.evaluation.metrics
    n_tags = len(result.tagger.vocabulary)
    description = (
        f"{config.vectorizer} model suggesting {n_tags} tags (training setting --top-n-tags {config.top_n_tags}), "
        f"trained on questions before {config.split_date}, evaluated from {config.split_date}: "
        f"P@1 {m['precision_at_1']:.3f}, F1@3 {m['f1_at_3']:.3f}, R@5 {m['recall_at_5']:.3f}. Run {run_id}."
    )
    card = ModelCard(
        run_id=run_id,
        vectorizer=config.vectorizer,
        top_n_tags=config.top_n_tags,
        n_tags=n_tags,
        data_digest=digest,
        split_date=config.split_date,
        eval_end=config.eval_end or None,
        exclude_sources=tuple(config.exclude_sources),
        eval_metrics={k: round(v, 4) for k, v in m.items()},
    )
    register_challenger(client, config.model_name, version, description, card)
