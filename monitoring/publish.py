"""The drift job's MLflow run: per-month metrics (step = month index), reports, plots, summary."""

from __future__ import annotations

import json

import mlflow
import numpy as np

from infra.tracking import TrackingSettings, use_fluent
from monitoring import plots
from monitoring.config import DriftConfig
from monitoring.job import DriftResult
from monitoring.severity import LEVELS, load_rules


def log_run(result: DriftResult, config: DriftConfig, settings: TrackingSettings, model_version: str | None) -> str:
    use_fluent(settings, config.experiment)  # the drift run is a fluent MLflow run
    summary = result.summary()
    rules = load_rules(config.thresholds)
    with mlflow.start_run(run_name=f"drift {config.months[0]}..{config.months[-1]}") as run:
        mlflow.log_params(
            {
                "reference": f"{config.reference[0]}..{config.reference[1]}",
                "months": f"{config.months[0]}..{config.months[-1]}",
                "model_uri": config.model_uri,
                "model_version": model_version or "",
                "source": str(config.data or config.predictions_url),
                "max_per_month": config.max_per_month,
                "max_reference": config.max_reference,
                "exclude_sources": ",".join(config.exclude_sources),
            }
        )
        mlflow.set_tags({"sotag.stage": "drift", "worst_severity": result.worst})
        mlflow.set_tags({f"baseline.{family}": words[:5000] for family, words in result.baselines.items()})
        mlflow.log_dict(json.loads(config.thresholds.read_text()), "thresholds.json")
        for step, month in enumerate(result.months):
            metrics = {k: v for k, v in month.values.items() if isinstance(v, float) and np.isfinite(v)}
            metrics["severity_level"] = float(LEVELS.index(month.severity))
            metrics["n_questions"] = float(month.n)
            mlflow.log_metrics(metrics, step=step)
        mlflow.log_metrics({f"reference_{k}": v for k, v in result.reference.items()})
        mlflow.log_dict(summary, "summary.json")
        mlflow.log_dict({str(i): m.month for i, m in enumerate(result.months)}, "month_index.json")
        # Rendered once, to the reports folder (read by the demo app), and logged from there.
        fig = plots.time_series(summary, rules)
        fig.savefig(result.reports_dir / "drift_over_time.png", dpi=100)
        plots.close(fig)
        mlflow.log_artifact(str(result.reports_dir / "drift_over_time.png"), "plots")
        reference = np.load(result.reports_dir / ".pca-reference.npy")
        panels = [(m.month, np.load(result.reports_dir / f".pca-{m.month}.npy"), m.severity) for m in result.months]
        fig = plots.pca_grid(reference, panels)
        fig.savefig(result.reports_dir / "pca_by_month.png", dpi=90)
        plots.close(fig)
        mlflow.log_artifact(str(result.reports_dir / "pca_by_month.png"), "plots")
        # The on-disk summary names its run, so the demo app can link each report to the MLflow UI.
        summary |= {"mlflow_run_id": run.info.run_id, "mlflow_experiment_id": run.info.experiment_id}
        (result.reports_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        for path in [*sorted(result.reports_dir.glob("*.html")), result.reports_dir / "summary.json"]:
            mlflow.log_artifact(str(path), "reports")
    return run.info.run_id
