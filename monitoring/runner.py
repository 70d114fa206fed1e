"""One drift job end to end: data → champion → statistics and reports → MLflow → severity → actions."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pandas as pd
from tabulate import tabulate

from monitoring.actions import post_webhook, run_retrain
from monitoring.config import EXIT_ALERT, DriftConfig
from monitoring.job import DriftResult, run_drift
from monitoring.months import newest_complete_month
from monitoring.publish import log_run
from tagger.data import filter_sources, load_questions
from tagger.errors import DataError
from tagger.tracking import TrackingSettings


def load_frame(config: DriftConfig) -> pd.DataFrame:
    """Questions from the data file, or the gateway's logged predictions (then without tags)."""
    if config.data is not None:
        frame, _ = load_questions(config.data)
        return filter_sources(frame, config.exclude_sources)
    from tagger.prediction_log import read_predictions

    logged = read_predictions(config.predictions_url)
    if logged.empty:
        raise DataError(f"{config.predictions_url}: the prediction log is empty")
    if logged["title"].isna().all():
        raise DataError(
            f"{config.predictions_url}: the log holds digests only; start the gateway with SOTAG_LOG_TEXT=1 "
            "so monitoring can embed the questions"
        )
    logged = logged.dropna(subset=["title"])
    return pd.DataFrame(
        {
            "creation_date": pd.to_datetime(logged["ts"], utc=True).dt.tz_localize(None),
            "title": logged["title"],
            "body": logged["body"].fillna(""),
        }
    )


def execute(
    config: DriftConfig, settings: TrackingSettings, frame: pd.DataFrame | None = None, log_to_mlflow: bool = True
) -> tuple[DriftResult, int]:
    from registry.resolve import resolve

    settings.activate()
    start = time.perf_counter()
    frame = load_frame(config) if frame is None else frame
    if not config.months:
        config = replace(config, months=(newest_complete_month(frame["creation_date"]),))
    served = resolve(config.model_uri)
    load_s = time.perf_counter() - start
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    reports_dir = config.reports_root / f"{stamp}_{config.months[0]}_{config.months[-1]}"
    result = run_drift(config, served.tagger, frame, reports_dir)
    start = time.perf_counter()
    run_id = log_run(result, config, settings, served.version) if log_to_mlflow else None
    result.timings |= {"load_s": load_s, "publish_s": time.perf_counter() - start}

    rows = [
        [m.month, m.n, m.severity, f"{m.values.get('embedding_drift_auc', float('nan')):.3f}",
         f"{m.values['centroid_cosine_distance']:.4f}", f"{m.values['tag_psi']:.3f}",
         f"{m.values.get('precision_at_1', float('nan')):.3f}", "; ".join(m.reasons)]
        for m in result.months
    ]  # fmt: skip
    print(f"drift: reference {config.reference[0]}..{config.reference[1]}, model {served.name} v{served.version}")
    print(tabulate(rows, headers=["month", "n", "severity", "emb AUC", "centroid", "tag PSI", "P@1", "why"]))
    print(f"reports: {reports_dir}")
    if run_id:
        print(f"mlflow:  experiment '{config.experiment}', run {run_id}")
    code = 0
    if result.worst == "alert":
        code = EXIT_ALERT
        alerts = [m.month for m in result.months if m.severity == "alert"]
        print(f"drift: ALERT in {', '.join(alerts)} (exit {EXIT_ALERT})")
        if config.webhook:
            print(post_webhook(config.webhook, result.summary()))
        if config.on_alert == "retrain":
            print(f"drift: running retrain (exit {run_retrain()})")
    return result, code
