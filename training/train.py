"""Train one configuration as an MLflow run: data → split → fit → evaluate → log → register."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import mlflow
import pandas as pd

from sotag.data import describe_data
from sotag.data.validate import ValidationReport
from sotag.infra.tracking import FluentRuns, TrackingSettings, runs_view_url
from sotag.registry.publish import git_commit, sotag_version
from sotag.tagger.metrics import quality_line
from sotag.training import mlflow_log
from sotag.training.config import TrainConfig
from sotag.training.fit import FitResult, Prepared, fit_and_evaluate, prepare, small_data_warnings

log = logging.getLogger(__name__)

# The run's tag holding the small-data warnings, when there are any.
SMALL_DATA_TAG = "sotag.small_data"


@dataclass(frozen=True)
class TrainOutcome:
    run_id: str
    model_uri: str
    version: str | None
    result: FitResult
    seconds: float


def log_training_run(config: TrainConfig, prepared: Prepared, runs: FluentRuns, nested: bool = False) -> TrainOutcome:
    """Fit and log inside a (possibly nested) MLflow run of `runs`' experiment; the registry version is described
    through a client of its store."""
    start = time.perf_counter()
    name = config.run_name or f"{config.vectorizer}-top{config.top_n_tags}"
    with mlflow.start_run(run_name=name, nested=nested, experiment_id=runs.experiment_id) as run:
        # Under `mlflow run` the launcher already logged its entry-point parameters on this run
        # (as typed: "30" where we write "30.0"); MLflow refuses to change a param, so add only new ones.
        already = mlflow.get_run(run.info.run_id).data.params
        mlflow.log_params({k: v for k, v in config.params().items() if k not in already})
        mlflow.set_tags({"git_commit": git_commit(), "sotag.version": sotag_version(), "sotag.stage": "train"})
        digest = mlflow_log.log_dataset(prepared, config)
        if prepared.report is not None:
            mlflow.log_dict(prepared.report.as_dict(), "data/validation_report.json")
        split = prepared.split
        mlflow.log_params({"n_train": len(split.train), "n_eval": len(split.evaluation)})
        warn_small_data(config, prepared)

        result = fit_and_evaluate(config, prepared)
        mlflow_log.log_evaluation(result)
        mlflow_log.log_details(result)
        logged = mlflow_log.log_model(result, prepared, config, digest, runs.settings.client())
        seconds = time.perf_counter() - start
        mlflow.log_metrics({"train_wall_s": seconds, **result.timings})
    return TrainOutcome(run.info.run_id, logged.model_uri, logged.version, result, seconds)


def warn_small_data(config: TrainConfig, prepared: Prepared) -> None:
    """Say (a logged warning, and the run's `sotag.small_data` tag) when the windows are too small to mean anything;
    the run is not refused."""
    warnings = small_data_warnings(config, prepared)
    for warning in warnings:
        log.warning("small data: %s", warning)
    if warnings:
        mlflow.set_tag(SMALL_DATA_TAG, "; ".join(warnings))


def train(
    config: TrainConfig, runs: FluentRuns, loaded: tuple[pd.DataFrame, ValidationReport] | None = None
) -> TrainOutcome:
    """Train and log one configuration as a fluent run in `runs`' experiment (the entry point's `use_fluent`, with
    `config.experiment`); `loaded` is the already-read data set, when the caller has it."""
    prepared = prepare(config, *(loaded or ()))
    outcome = log_training_run(config, prepared, runs)
    _report(outcome, config, runs.settings)
    return outcome


def _report(outcome: TrainOutcome, config: TrainConfig, settings: TrackingSettings) -> None:
    m = outcome.result.evaluation.metrics
    record, served = outcome.result.record.metrics, outcome.result.tagger.config
    scored = "raw score" if served.calibration is None else "probability"
    print(quality_line(m))
    print(f"train: wall_s={outcome.seconds:.1f} " + " ".join(f"{k}={v:.1f}" for k, v in outcome.result.timings.items()))
    print(f"run:   {outcome.run_id}  (tracking: {settings.tracking_uri})")
    print(f"data:  {describe_data(config.data)}")
    if outcome.version:
        print(f"model: models:/{config.model_name}/{outcome.version}  alias @challenger")
    client = settings.client()
    experiment_id = client.get_run(outcome.run_id).info.experiment_id
    experiment = client.get_experiment(experiment_id).name  # under `mlflow run`, the launcher's choice
    start = "" if settings.tracking_uri.startswith("http") else "make ui (installed: mlflow ui --backend-store-uri "
    start += "" if settings.tracking_uri.startswith("http") else f"{settings.tracking_uri}), then "
    print(f"see:   {start}{runs_view_url(settings.ui_url, experiment_id)}  (experiment '{experiment}')")
    print(
        f"served:  f1_micro={m['f1_micro']:.4f} f1_macro={m['f1_macro']:.4f} jaccard={m['jaccard']:.4f} "
        f"hamming_loss={m['hamming_loss']:.5f} no_tag_share={record['no_tag_share']:.4f} ece={record['ece']:.4f} "
        f"(the tags the model serves: at least {served.min_tags}, at most {served.top_k} with {scored} >= "
        f"{served.threshold:g}, against the true tags)"
    )
