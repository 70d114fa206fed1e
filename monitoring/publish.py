"""The drift job's MLflow run, logged from the job's result: per-month metrics (step = month index), the
Evidently reports, the plots (the PNG bytes the reports folder gets too) and the summary. Reads no file the
job wrote."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from sotag.data import describe_data
from sotag.infra.drift_summary import SUMMARY_FILE, DriftSummary
from sotag.infra.tracking import FluentRuns
from sotag.monitoring.config import DriftConfig
from sotag.monitoring.job import DriftResult
from sotag.monitoring.resolved import ResolvedRun
from sotag.monitoring.severity import LEVELS


@dataclass(frozen=True)
class PublishedRun:
    run_id: str
    experiment_id: str
    summary: DriftSummary  # the job's summary, naming this run


def log_run(
    result: DriftResult,
    config: DriftConfig,
    run: ResolvedRun,
    figures: dict[str, bytes],
    runs: FluentRuns,
) -> PublishedRun:
    """One fluent MLflow run in `runs`' experiment (the entry point's `use_fluent` with `config.experiment`);
    `figures`: file name -> PNG (monitoring/plots.py `render`)."""
    with mlflow.start_run(run_name=f"drift {run.label}", experiment_id=runs.experiment_id) as active:
        # The summary names its run, so the demo app can link each report to the MLflow UI.
        summary = result.summary().with_run(active.info.run_id, active.info.experiment_id)
        mlflow.log_params(
            {
                "reference": run.baselines.reference_label,
                "months": run.months[0] if run.rolling else run.label,
                "windows": _windows(run),
                "model_uri": run.model_uri,
                "model_version": run.model_version or "",
                "source": describe_data(config.data)[:5000] if config.data else str(config.predictions_url),
                "max_per_month": config.max_per_month,
                "max_reference": config.max_reference,
                "exclude_sources": ",".join(config.exclude_sources),
            }
        )
        if run.rolling:
            current = run.checked[0]
            mlflow.log_params(
                {"current_days": config.current_days, "reference_days": config.reference_days,
                 "as_of": f"{current.end:%Y-%m-%dT%H:%M}Z"}
            )  # fmt: skip
        mlflow.set_tags({"sotag.stage": "drift", "worst_severity": result.worst})
        mlflow.set_tags({f"baseline.{family}": words[:5000] for family, words in result.baselines.items()})
        # The user's thresholds file as given (an input of the job, with its comments).
        mlflow.log_dict(json.loads(config.thresholds.read_text()), "thresholds.json")
        for step, month in enumerate(result.months):
            metrics = {k: v for k, v in month.values.items() if isinstance(v, float) and np.isfinite(v)}
            if month.severity != "unjudged":  # 0 ok, 1 warn, 2 alert; no level for a month no rule judged
                metrics["severity_level"] = float(LEVELS.index(month.severity) - LEVELS.index("ok"))
            metrics["n_questions"] = float(month.n)
            mlflow.log_metrics(metrics, step=step)
        mlflow.log_metrics({f"reference_{k}": v for k, v in result.reference.items()})
        mlflow.log_dict(summary.to_dict(), SUMMARY_FILE)
        mlflow.log_dict({str(i): m.month for i, m in enumerate(result.months)}, "month_index.json")
        new_tags = [[m.month, tag, count] for m in result.months for tag, count in m.new_tags]
        if new_tags:  # the vocabulary family: each month's most used tags the champion cannot suggest
            mlflow.log_table(pd.DataFrame(new_tags, columns=["month", "tag", "count"]), "vocabulary/new_tags.json")
        for name, png in figures.items():
            _log_bytes(png, f"plots/{name}")
        for month in result.months:
            mlflow.log_text(month.html, f"reports/{month.report}")
            if month.predictions_html is not None:
                mlflow.log_text(month.predictions_html, f"reports/{month.predictions_report}")
        mlflow.log_text(summary.to_json(), f"reports/{SUMMARY_FILE}")
    return PublishedRun(active.info.run_id, active.info.experiment_id, summary)


def _windows(run: ResolvedRun) -> str:
    """The spans read, end excluded: `reference 2026-10-31 00:00..2026-11-30 00:00 UTC; current ...`."""
    return f"reference {run.baselines.reference_window.describe()}; " + "; ".join(
        f"{'current' if run.rolling else w.label} {w.describe()}" for w in run.checked
    )


def _log_bytes(data: bytes, artifact_file: str) -> None:
    """`data` as the artifact `artifact_file` (MLflow uploads files: a private temporary one, like `log_text`)."""
    target = Path(artifact_file)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / target.name
        path.write_bytes(data)
        mlflow.log_artifact(str(path), str(target.parent))
