"""Only entry points set MLflow's process-wide state: the library functions that log fluent runs (training,
evaluation, the drift run) take the `FluentRuns` their entry point's `use_fluent` returned and set nothing."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from sotag.infra.tracking import MODEL_NAME, use_fluent
from sotag.monitoring.config import DriftConfig
from sotag.monitoring.runner import execute
from sotag.training.config import TrainConfig
from sotag.training.evaluate import EvaluateConfig, evaluate_model
from sotag.training.train import train

SMALL = dict(
    vectorizer="tfidf", split_date="2018-03-01", top_n_tags=8, max_features=2000, min_df=1, C=10.0, threshold=0.2
)


def setters_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, setting MLflow's tracking or registry URI or its experiment fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a library function set process-wide MLflow state ({args or kwargs})")

    for name in ("set_tracking_uri", "set_registry_uri", "set_experiment"):
        monkeypatch.setattr(mlflow, name, refuse)


def test_train_evaluate_and_drift_log_in_the_entry_points_experiments_and_set_nothing(
    tracking, questions_parquet, tmp_path, monkeypatch
):
    config = TrainConfig(data=questions_parquet, cache_dir=tmp_path / "cache", **SMALL)
    # The entry point (here, the test) points MLflow's fluent API at the store, once per experiment.
    training = use_fluent(tracking, config.experiment)
    evaluation = use_fluent(tracking, "sotag-evaluation")
    drift_runs = use_fluent(tracking, "sotag-drift")
    mlflow.set_experiment(experiment_id=training.experiment_id)
    setters_refuse(monkeypatch)

    outcome = train(config, training)
    client = MlflowClient(tracking.tracking_uri)
    assert client.get_run(outcome.run_id).info.experiment_id == training.experiment_id
    MlflowClient(tracking.tracking_uri, tracking.tracking_uri).set_registered_model_alias(
        MODEL_NAME, "champion", outcome.version
    )

    # The evaluation names its experiment in the FluentRuns it is given; MLflow's current one is the training's.
    evaluated = evaluate_model(EvaluateConfig(data=questions_parquet, start="2018-03-01"), evaluation)
    assert client.get_run(evaluated.run_id).info.experiment_id == evaluation.experiment_id

    drift = DriftConfig(
        reference=("2017-01", "2017-06"),
        months=("2017-07",),
        data=questions_parquet,
        reports_root=tmp_path / "reports",
        cache_dir=tmp_path / "cache",
        experiment="sotag-drift",
    )
    result, _ = execute(drift, tracking, publish_to=drift_runs)
    assert result.reports_dir is not None and result.reports_dir.is_dir()
    runs = client.search_runs([drift_runs.experiment_id])
    assert [r.data.tags["sotag.stage"] for r in runs] == ["drift"]
