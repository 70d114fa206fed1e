"""The drift job flows one way: config → resolved run → result → reports folder, plots, MLflow; nothing the job
wrote is read back, the config is never rewritten, and the summary is written once through its schema."""

from __future__ import annotations

import builtins
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from sotag.data import load_questions
from sotag.infra.drift_summary import SCHEMA_VERSION, DriftSummary, SummaryError, read_summary, write_summary
from sotag.infra.tracking import MODEL_NAME, use_fluent
from sotag.monitoring import plots
from sotag.monitoring.config import DriftConfig
from sotag.monitoring.publish import log_run
from sotag.monitoring.resolved import resolve_run
from sotag.monitoring.runner import execute
from sotag.registry.resolve import resolve
from sotag.training.config import TrainConfig
from sotag.training.train import train

MONTHS = ("2017-07", "2017-08")


@pytest.fixture()
def drift_config(tracking, questions_parquet, tmp_path) -> DriftConfig:
    config = TrainConfig(
        vectorizer="tfidf",
        data=questions_parquet, split_date="2017-07-01", top_n_tags=8, max_features=2000, min_df=1,
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    version = train(config, use_fluent(tracking, config.experiment)).version
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", version)
    return DriftConfig(
        reference=("2017-01", "2017-06"),
        months=MONTHS,
        data=questions_parquet,
        max_per_month=0,
        max_reference=0,
        reports_root=tmp_path / "reports",
        cache_dir=tmp_path / "drift-cache",
    )


def test_the_job_reads_back_nothing_it_wrote_and_writes_the_summary_once(drift_config, tracking, monkeypatch):
    reports_root = drift_config.reports_root.resolve()
    reads: list[str] = []
    real_open = builtins.open

    def watching_open(file, mode="r", *args, **kwargs):
        reading = isinstance(file, str | Path) and "r" in mode and not {"w", "a", "+"} & set(mode)
        if reading and Path(file).resolve().is_relative_to(reports_root):
            reads.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", watching_open)
    monkeypatch.setattr(io, "open", watching_open)
    result, code = execute(drift_config, tracking, frame=None, publish_to=use_fluent(tracking, drift_config.experiment))
    monkeypatch.undo()

    assert reads == []  # neither the summary nor any projection went through the disk
    assert code in (0, 4) and [m.month for m in result.months] == list(MONTHS)
    assert drift_config.reference == ("2017-01", "2017-06") and drift_config.months == MONTHS  # as given
    folder = result.reports_dir
    tagged = {m.month for m in result.months if m.predictions_html is not None}
    reports = {f"{m}.html" for m in MONTHS} | {f"{m}-predictions.html" for m in MONTHS if m in tagged}
    assert {p.name for p in folder.iterdir()} == reports | {"summary.json", "drift_over_time.png", "pca_by_month.png"}
    assert not list(folder.glob(".pca-*"))
    # The file holds the summary of the result, naming the MLflow run that logged the same summary.
    on_disk = read_summary(folder / "summary.json")
    assert on_disk.schema_version == SCHEMA_VERSION and on_disk.mlflow_run_id
    assert [m.month for m in on_disk.months] == list(MONTHS) and on_disk.worst == result.worst
    assert on_disk.months[0].values["embedding_drift_auc"] == result.months[0].values["embedding_drift_auc"]
    logged = mlflow.artifacts.load_text(f"runs:/{on_disk.mlflow_run_id}/reports/summary.json")
    assert DriftSummary.from_dict(json.loads(logged)) == on_disk


def test_publishing_works_from_the_result_alone_after_the_reports_folder_is_gone(drift_config, tracking):
    result, _ = execute(drift_config, tracking)
    assert not (result.reports_dir / "drift_over_time.png").exists()  # --no-mlflow: the reports only, as before
    shutil.rmtree(result.reports_dir)

    frame, _ = load_questions(drift_config.data)
    run = resolve_run(drift_config, frame, resolve(drift_config.model_uri, tracking))
    published = log_run(
        result, drift_config, run, plots.render(result, run.rules), use_fluent(tracking, drift_config.experiment)
    )

    client = MlflowClient()
    artifacts = {a.path for folder in ("plots", "reports") for a in client.list_artifacts(published.run_id, folder)}
    assert {"plots/drift_over_time.png", "plots/pca_by_month.png", "reports/summary.json"} <= artifacts
    assert {f"reports/{m}.html" for m in MONTHS} <= artifacts
    assert published.summary.mlflow_run_id == published.run_id
    assert [h.step for h in client.get_metric_history(published.run_id, "embedding_drift_auc")] == [0, 1]
    params = client.get_run(published.run_id).data.params
    assert params["reference"] == "2017-01..2017-06" and params["months"] == "2017-07..2017-08"


def test_summary_schema_round_trip_old_files_and_errors(tmp_path):
    from sotag.infra.drift_summary import MonthSummary, latest_summary

    summary = DriftSummary(
        reference={"precision_at_1": 0.8},
        baselines={"embeddings": "the reference 2017-01..2017-06"},
        notes=("a note",),
        months=(MonthSummary("2017-07", 60, "warn", ("tag PSI 0.3 (warn)",), "2017-07.html", {"tag_psi": 0.3}),),
        worst="warn",
        seconds=1.5,
        timings={"embed_s": 0.5},
    )
    job = tmp_path / "20260101T000000_2017-07_2017-07"
    job.mkdir()
    path = write_summary(job, summary)
    raw = json.loads(path.read_text())
    # The month's statistics sit beside its fields, as the demo app and earlier files have them.
    assert raw["schema_version"] == SCHEMA_VERSION and raw["months"][0]["tag_psi"] == 0.3
    assert "mlflow_run_id" not in raw
    assert read_summary(path) == summary
    assert latest_summary(tmp_path) == (job, summary)
    (tmp_path / ".partial-x").mkdir()
    write_summary(tmp_path / ".partial-x", summary.with_run("r", "e"))
    assert latest_summary(tmp_path)[1].mlflow_run_id is None  # a job in progress is never the latest

    assert raw["months"][0]["new_tags"] == []  # schema 2: the vocabulary family's new tags, a fixed field
    del raw["schema_version"]  # a file written before the schema had a version: the same layout
    del raw["months"][0]["new_tags"]  # ... and before schema 2: no new tags
    path.write_text(json.dumps(raw))
    old = read_summary(path)
    assert old == replace(summary, schema_version=1) and old.months[0].new_tags == ()
    raw["months"][0]["new_tags"] = [["polars", 12], ["rust", 9]]
    path.write_text(json.dumps({**raw, "schema_version": 2}))
    assert read_summary(path).months[0].new_tags == (("polars", 12), ("rust", 9))
    assert read_summary(path).months[0].values == {"tag_psi": 0.3}
    path.write_text(json.dumps({**raw, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(SummaryError, match=f"{path}: schema version {SCHEMA_VERSION + 1} is newer"):
        read_summary(path)
    path.write_text(json.dumps({"months": []}))
    with pytest.raises(SummaryError, match=f"{path}: not a drift summary"):
        read_summary(path)


def test_a_month_that_fails_leaves_no_progress_bar_open(drift_config, tracking, monkeypatch, capsys):
    """The months' bar is closed, its line ended, when a month fails: the error printed next starts on a line of its
    own without sotag/cli.py closing every open bar first."""
    from tqdm import tqdm

    from sotag.monitoring import job

    real = job.month_report

    def second_month_fails(*args, **kwargs):
        if kwargs["title"].startswith(f"sotag drift {MONTHS[1]} "):
            raise RuntimeError(f"month {MONTHS[1]} failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "month_report", second_month_fails)
    with pytest.raises(RuntimeError, match=f"month {MONTHS[1]} failed") as failure:
        execute(drift_config, tracking)
    assert failure.traceback  # held, as an entry point holds it while it prints the error
    assert [bar for bar in tqdm._instances if bar.desc == "months"] == []
    err = capsys.readouterr().err
    assert "months:  50%|" in err and err.endswith("\n")
