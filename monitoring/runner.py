"""One drift job end to end, one way: config → resolved run → result → reports folder, plots, MLflow → actions.

The config is read, never rewritten: what the job derives from it (the months, the served model, the
baselines, the rules) is a `ResolvedRun`. `run_drift` returns the whole result in memory; the reports
folder, the plots and the MLflow run are written from it, and the summary last, once (with its run id).
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime

import pandas as pd
from tabulate import tabulate

from sotag.data import filter_sources, load_questions
from sotag.data.store import StoreSource
from sotag.infra.drift_summary import write_summary
from sotag.infra.tracking import FluentRuns, TrackingSettings
from sotag.monitoring import plots
from sotag.monitoring.actions import post_webhook, retrain_line
from sotag.monitoring.config import EXIT_ALERT, DriftConfig
from sotag.monitoring.job import SERVED_TAGS, SERVED_TOP_SCORE, DriftResult, MonthResult, run_drift
from sotag.monitoring.publish import log_run
from sotag.monitoring.reports import write_reports
from sotag.monitoring.resolved import resolve_run
from sotag.monitoring.severity import FAMILIES
from sotag.tagger.errors import DataError, SotagError


def load_frame(config: DriftConfig) -> pd.DataFrame:
    """Questions from the data file, or the gateway's logged predictions: tagged with what the askers kept where a
    feedback came back (POST /feedback), so the supervised family is judged on live traffic too."""
    if config.data is not None:
        frame, _ = load_questions(config.data)
        return filter_sources(frame, config.exclude_sources)
    from sotag.infra.prediction_log import read_feedback, read_predictions

    start = end = None
    if config.rolling and config.as_of is not None:  # only the two windows are read
        days = config.current_days + config.reference_days
        start, end = (config.as_of - pd.Timedelta(days=days)).isoformat(), config.as_of.isoformat()
    logged = read_predictions(config.predictions_url, start, end)
    if logged.empty:
        within = f" between {start} and {end} UTC" if start else ""
        raise DataError(f"{config.predictions_url}: the prediction log holds no prediction{within}")
    if logged["title"].isna().all():
        raise DataError(
            f"{config.predictions_url}: the log holds digests only; start the gateway with SOTAG_LOG_TEXT=1 "
            "so monitoring can embed the questions"
        )
    logged = logged.dropna(subset=["title"])
    kept = read_feedback(config.predictions_url, start)
    kept_tags = dict(zip(kept["prediction_id"], kept["kept_tags"], strict=True))
    frame = pd.DataFrame(
        {
            "creation_date": pd.to_datetime(logged["ts"], utc=True).dt.tz_localize(None),
            "title": logged["title"],
            "body": logged["body"].fillna(""),
            # What was served, for the served-prediction statistics (monitoring/job.py `served_values`).
            SERVED_TAGS: logged["tags"].map(list),
            SERVED_TOP_SCORE: logged["scores"].map(lambda s: float(max(s)) if len(s) else 0.0),
        }
    )
    if kept_tags:  # the questions askers labelled (POST /feedback): the supervised family's input
        frame["tags"] = [list(kept_tags.get(pid) or []) for pid in logged["prediction_id"]]
    return frame


def retrain_args(config: DriftConfig) -> list[str] | None:
    """The arguments of the retrain an alert starts: the job's own data paths, all of them (none: the default), and
    the settings file the job was given (the environment and the working folder's sotag.toml it inherits)."""
    args = ["--data", *(p.url if isinstance(p, StoreSource) else str(p) for p in config.data)] if config.data else []
    if config.config_file is not None:
        args += ["--config", str(config.config_file)]
    return args or None


def _new_tags(month: MonthResult, floor: int) -> str:
    """The end of a month's vocabulary line: its most used new tags, or why none is listed."""
    if month.unlisted_new_tags:
        tagged, left_out = int(month.values.get("n_tagged_questions", 0)), month.unlisted_new_tags
        return (
            f"{left_out} new tag{'s' if left_out != 1 else ''} not listed: {tagged} tagged questions, under the "
            f"vocabulary family's minimum of {floor}"
        )
    return "most used new tags: " + (", ".join(f"{tag} ({count})" for tag, count in month.new_tags) or "none")


def execute(
    config: DriftConfig,
    settings: TrackingSettings,
    frame: pd.DataFrame | None = None,
    publish_to: FluentRuns | None = None,
) -> tuple[DriftResult, int]:
    """The drift job: resolve the champion through `settings`' store, run the months, write the reports folder and,
    with `publish_to` (the entry point's `use_fluent` with `config.experiment`), log the drift run in its experiment
    (None: the reports only, as `--no-mlflow`). Returns the result and the exit code (4 on alert)."""
    from sotag.monitoring.evidently_report import use_pca_projection
    from sotag.registry.resolve import resolve

    use_pca_projection()  # the drift job's reports draw embeddings with PCA, not t-SNE
    start = time.perf_counter()
    frame = load_frame(config) if frame is None else frame
    run = resolve_run(config, frame, resolve(config.model_uri, settings))
    load_s = time.perf_counter() - start
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    checked = f"{run.months[0]}_{run.months[-1]}"
    if run.rolling:  # the windows: 20261207T060000_7d-2026-11-30..2026-12-06_vs_30d-2026-10-31..2026-11-29
        checked = run.label.replace(" vs ", "_vs_").replace(" ", "-")
    reports_dir = config.reports_root / f"{stamp}_{checked}"
    # Written under a hidden name and renamed when complete: a reader (the demo app, a person) never takes a
    # half-written folder (a full disk, an unwritable folder, a crash) for a finished report.
    partial = config.reports_root / f".partial-{reports_dir.name}"
    try:
        result = run_drift(config, run, frame)
        start = time.perf_counter()
        # The plots are drawn only for a job that publishes (as before: --no-mlflow writes the reports only).
        figures = plots.render(result, run.rules) if publish_to is not None else {}
        write_reports(partial, result, figures)
        published = log_run(result, config, run, figures, publish_to) if publish_to is not None else None
        write_summary(partial, published.summary if published else result.summary())
        result.timings |= {"load_s": load_s, "publish_s": time.perf_counter() - start}
        partial.rename(reports_dir)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        reason = exc.strerror or str(exc)
        raise SotagError(f"reports folder {config.reports_root}: cannot write the reports ({reason})") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    result.reports_dir = reports_dir

    def cell(values: dict[str, float], key: str, digits: int = 3) -> str:
        return f"{values[key]:.{digits}f}" if key in values else "-"

    rows = [
        [m.month, m.n, m.severity, cell(m.values, "embedding_drift_auc"), cell(m.values, "centroid_cosine_distance", 4),
         cell(m.values, "tag_psi"), cell(m.values, "no_tag_share"), cell(m.values, "precision_at_1"),
         cell(m.values, "oov_share")]
        for m in result.months
    ]  # fmt: skip
    trained_before = run.baselines.trained_before
    trained = f", trained on questions before {trained_before:%Y-%m-%d}" if trained_before else ""
    if run.rolling:
        current, reference = run.checked[0], run.baselines.reference_window
        print(
            f"drift: current window {current.label} ({current.days:g} days, {current.describe()}) against the "
            f"reference window {reference.label} ({reference.days:g} days, {reference.describe()})"
        )
    print(f"drift: model {run.model_name} v{run.model_version}{trained}; each family of statistics against:")
    for family in FAMILIES:
        print(f"  {family + ':':<13}{result.baselines.get(family, 'skipped (see below)')}")
    for note in result.notes:
        print(f"  note: {note}")
    headers = ["window" if run.rolling else "month", "n", "severity", "emb AUC", "centroid", "tag PSI", "no-tag",
               "P@1", "OOV"]  # fmt: skip
    served = [m for m in result.months if "served_tag_psi" in m.values]
    for m in served:
        v = m.values
        print(
            f"served: {m.month}: {int(v['n_served_questions'])} logged predictions: tag PSI {v['served_tag_psi']:.3f}, "
            f"chi-square p {v['served_tag_chi2_pvalue']:.3g}, top-score KS {v['served_top_score_ks']:.3f} "
            f"(p {v['served_top_score_ks_pvalue']:.3g})"
        )
    print(tabulate(rows, headers=headers))
    for m in result.months:
        for reason in m.reasons:
            print(f"  {m.month}: {reason}")
    reference_oov = result.reference.get("oov_share")
    for m in result.months:
        if "oov_share" in m.values:
            baseline = f" (champion's evaluation window {reference_oov:.3f})" if reference_oov is not None else ""
            print(
                f"vocabulary: {m.month}: {m.values['oov_share']:.3f} of tag occurrences outside the champion's "
                f"vocabulary{baseline}; {_new_tags(m, result.min_questions.get('vocabulary', 0))}"
            )
    print(f"reports: {reports_dir}")
    if published:
        print(f"mlflow:  experiment '{config.experiment}', run {published.run_id}")
    code = 0
    if result.worst == "alert":
        code = EXIT_ALERT
        alerts = [m.month for m in result.months if m.severity == "alert"]
        where = f"the current window {alerts[0]} vs {run.baselines.reference_label}" if run.rolling else ""
        print(f"drift: ALERT in {where or ', '.join(alerts)} (exit {EXIT_ALERT})")
        if config.webhook:
            print(post_webhook(config.webhook, result.summary().to_dict()))
        if config.on_alert == "retrain":
            print("drift: running retrain", flush=True)
            print(retrain_line(config.settings, retrain_args(config)))
    return result, code
