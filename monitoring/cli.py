"""`sotag drift` and `sotag schedule`."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from sotag.data.split import parse_sources
from sotag.infra.argtypes import add_data_argument, add_model_uri_argument, positive_int, setting
from sotag.infra.tracking import FluentRuns, TrackingSettings, use_fluent
from sotag.monitoring.config import DriftConfig
from sotag.monitoring.severity import DEFAULT_THRESHOLDS
from sotag.settings import Settings
from sotag.tagger.errors import InputError


def _add_drift_args(p: argparse.ArgumentParser) -> None:
    add_data_argument(
        p,
        "questions with creation_date: one or several files or folders, read together as for train "
        "(default: the data setting, the shared data, or the sample)",
    )
    p.add_argument(
        "--predictions",
        default=None,
        help="the gateway's prediction log URL (sqlite:///…, postgresql://…) instead of --data, or a folder of "
        "`sotag score` output: then the prediction statistics cover every scored question of each month",
    )
    p.add_argument(
        "--reference",
        default=None,
        help="YYYY-MM..YYYY-MM for embeddings and text (default: the champion's last 6 training months); when the "
        "champion did not train on it, also the baseline of prediction and supervised statistics",
    )
    p.add_argument("--months", default=None, help="YYYY-MM..YYYY-MM to check (default: the newest complete month)")
    setting(
        p,
        "--current-days",
        "drift.current_days",
        "rolling windows instead of months: check the N days before --as-of (with --reference-days)",
        type=positive_int,
    )
    setting(
        p,
        "--reference-days",
        "drift.reference_days",
        "rolling windows: against the N days before the current window (with --current-days)",
        type=positive_int,
    )
    p.add_argument(
        "--as-of",
        default=None,
        metavar="YYYY-MM-DD",
        help="rolling windows end here (midnight UTC, that day excluded; or an ISO time) (default: now, UTC)",
    )
    setting(p, "--exclude-sources", "drift.exclude_sources", "comma-separated source prefixes, or 'topic-specific'")
    add_model_uri_argument(p)
    setting(
        p, "--max-per-month", "drift.max_per_month", "sample size per month; 0 = all (none: 400, spark: 0)", type=int
    )
    setting(p, "--max-reference", "drift.max_reference", "reference sample size; 0 = all (none: 2000)", type=int)
    setting(
        p,
        "--engine",
        "drift.engine",
        "where SBERT embeds the months: this process, or Spark (full months by default)",
        choices=("local", "spark"),
    )
    setting(p, "--master", "spark.master", "Spark master URL")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting (repeatable)")
    setting(p, "--thresholds", "drift.thresholds", "none: the thresholds shipped with sotag", type=Path)
    setting(p, "--reports-dir", "drift.reports_dir", "none: <home>/reports/drift", type=Path)
    setting(p, "--on-alert", "drift.on_alert", choices=("none", "retrain"))
    setting(p, "--webhook", "drift.webhook", "POST the summary here when a month is alert")
    setting(p, "--no-mlflow", "drift.mlflow", "write the reports only", action="store_false")


def config_from_settings(args: argparse.Namespace, settings: Settings) -> DriftConfig:
    from sotag.infra.spark import SparkSettings, parse_conf
    from sotag.monitoring.months import month_range

    d = settings.drift
    log_url, scored = None, None
    if args.predictions and "://" in args.predictions:
        if settings.data and "data" in vars(args):
            raise InputError("--predictions", "a prediction log replaces --data; give one of them")
        log_url = args.predictions
    elif args.predictions:
        scored = Path(args.predictions)
        if not scored.is_dir():
            raise InputError("--predictions", f"{scored} is neither a log URL nor a folder of sotag score output")
    data = settings.data_paths() if log_url is None else None
    # No --reference: the runner takes the champion's last training months from its version tags.
    reference = month_range(args.reference, "--reference") if args.reference else None
    # No --months: the job picks the newest complete month from the data it reads anyway.
    months = month_range(args.months, "--months") if args.months else ()
    current_days, reference_days, as_of = _rolling(args, settings, scored)
    full = d.engine == "spark"  # Spark embeds full months unless told to sample
    per_month = d.max_per_month if d.max_per_month is not None else (0 if full else DriftConfig.max_per_month)
    per_reference = d.max_reference if d.max_reference is not None else (0 if full else DriftConfig.max_reference)
    for flag, value in (("--max-per-month", per_month), ("--max-reference", per_reference)):
        if value != 0 and value < 10:
            raise InputError(flag, f"samples need at least 10 questions (0 = all), got {value}")
    spark = SparkSettings(
        master=settings.spark.master,
        conf=parse_conf(args.conf),
        app_name="sotag drift",
        java_home=settings.spark.java_home,
        log_level=settings.spark.log_level,
    )
    return DriftConfig(
        reference=(reference[0], reference[-1]) if reference else None,
        months=months,
        data=data,
        predictions_url=log_url,
        scored=scored,
        engine=d.engine,
        spark=spark,
        model_uri=settings.served_model_uri,
        exclude_sources=parse_sources(d.exclude_sources),
        max_per_month=per_month,
        max_reference=per_reference,
        thresholds=d.thresholds or DEFAULT_THRESHOLDS,
        reports_root=settings.reports_dir,
        on_alert=d.on_alert,
        webhook=d.webhook,
        cache_dir=settings.cache,
        experiment=d.experiment,
        config_file=Path(args.config_file).resolve() if getattr(args, "config_file", None) else None,
        current_days=current_days,
        reference_days=reference_days,
        as_of=as_of,
        settings=settings,
    )


def _rolling(args: argparse.Namespace, settings: Settings, scored: Path | None) -> tuple[int | None, int | None, Any]:
    """(current_days, reference_days, as_of) for rolling windows, all None for calendar months; InputError for a
    half-given pair or a flag that belongs to the other mode."""
    from sotag.monitoring.months import parse_as_of

    current, reference = settings.drift.current_days, settings.drift.reference_days
    if current is None and reference is None:
        if getattr(args, "as_of", None):
            raise InputError("--as-of", "ends rolling windows; give --current-days and --reference-days too")
        return None, None, None
    if current is None or reference is None:
        missing = "--current-days" if current is None else "--reference-days"
        raise InputError(missing, "rolling windows need both --current-days and --reference-days")
    for flag in ("months", "reference"):
        if getattr(args, flag, None):
            raise InputError(f"--{flag}", "names calendar months; rolling windows (--current-days) replace it")
    if scored is not None:
        raise InputError("--predictions", "rolling windows read a prediction log URL or --data, not sotag score output")
    return current, reference, parse_as_of(getattr(args, "as_of", None))


def _drift(args: argparse.Namespace, settings: Settings) -> int:
    from sotag.monitoring.runner import execute

    tracking = TrackingSettings.from_settings(settings)
    config = config_from_settings(args, settings)
    _, code = execute(config, tracking, publish_to=_publish_to(settings, tracking, config))
    return code


def _publish_to(settings: Settings, tracking: TrackingSettings, config: DriftConfig) -> FluentRuns | None:
    """Where the drift run is logged: MLflow's fluent API pointed at the drift experiment, unless --no-mlflow."""
    return use_fluent(tracking, config.experiment) if settings.drift.mlflow else None


def _schedule(args: argparse.Namespace, settings: Settings) -> int:
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    from sotag.monitoring.runner import execute

    cron = settings.drift.cron
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("sotag.schedule")
    try:
        trigger = CronTrigger.from_crontab(cron, timezone="UTC")
    except ValueError as exc:
        raise InputError("--cron", f"{cron!r} is not a crontab expression ({exc})") from None
    tracking = TrackingSettings.from_settings(settings)

    def run() -> None:
        start = time.perf_counter()
        # Without --months, execute picks the newest complete month of the data at run time.
        config = config_from_settings(args, settings)
        result, code = execute(config, tracking, publish_to=_publish_to(settings, tracking, config))
        elapsed = time.perf_counter() - start
        months = ",".join(m.month for m in result.months) or "no month with data"
        log.info("drift %s: worst %s, exit %d, %.0f s", months, result.worst, code, elapsed)

    job = guarded(run, log)
    scheduler = make_scheduler(BlockingScheduler(timezone="UTC"), trigger, job, args.run_now)
    log.info("drift scheduled with cron %r (UTC); next run %s", cron, trigger.get_next_fire_time(None, _now()))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")
    return 0


def guarded(run, log: logging.Logger):
    """The scheduled job: a failing run is logged and the scheduler stays up for the next one."""

    def job() -> None:
        try:
            run()
        except Exception:
            log.exception("drift run failed")

    return job


def make_scheduler(scheduler, trigger, job, run_now: bool):
    """One drift job on the trigger; never two at once; a missed run (machine asleep) runs late, once."""
    scheduler.add_job(job, trigger, id="drift", max_instances=1, coalesce=True, misfire_grace_time=3600)
    if run_now:
        scheduler.add_job(job, id="drift-now")
    return scheduler


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "drift",
        help="monthly drift reports (Evidently over SBERT embeddings, predictions, text); exit 4 on alert",
        description="Exit codes: 0 every month ok or warn, 4 at least one month alert, 2 bad input.",
    )
    _add_drift_args(p)
    p.set_defaults(handler=_drift)

    p = subparsers.add_parser("schedule", help="run the drift job on a cron expression (APScheduler), stays up")
    setting(p, "--cron", "drift.cron", "crontab expression, UTC (06:00 on the 1st)")
    p.add_argument("--run-now", action="store_true", help="also run once at start")
    _add_drift_args(p)
    p.set_defaults(handler=_schedule)
