"""`sotag drift` and `sotag schedule`."""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from infra.cache import cache_dir
from infra.tracking import MODEL_NAME, FluentRuns, TrackingSettings, use_fluent
from monitoring.config import DriftConfig
from tagger.data.split import parse_sources
from tagger.errors import InputError


def _add_drift_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default=None,
        help="questions with creation_date (default: $SOTAG_DATA, the shared data, or the sample)",
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
    p.add_argument("--exclude-sources", default="", help="comma-separated source prefixes, or 'topic-specific'")
    p.add_argument("--model-uri", default=f"models:/{MODEL_NAME}@champion")
    p.add_argument(
        "--max-per-month", type=int, default=None, help="sample size per month; 0 = all (default 400, spark: 0)"
    )
    p.add_argument("--max-reference", type=int, default=None, help="reference sample size; 0 = all (default 2000)")
    p.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="where SBERT embeds the months: this process, or Spark (full months by default)",
    )
    p.add_argument("--master", default=os.environ.get("SOTAG_SPARK_MASTER", "local[*]"), help="Spark master URL")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting (repeatable)")
    p.add_argument("--thresholds", type=Path, default=DriftConfig.thresholds)
    p.add_argument("--reports-dir", type=Path, default=DriftConfig.reports_root)
    p.add_argument("--on-alert", choices=("none", "retrain"), default="none")
    p.add_argument("--webhook", default=None, help="POST the summary here when a month is alert")
    p.add_argument("--no-mlflow", action="store_true", help="write the reports only")


def config_from_args(args: argparse.Namespace) -> DriftConfig:
    from infra.spark import SparkSettings, parse_conf
    from monitoring.months import month_range
    from tagger.data import resolve_data_path

    log_url, scored = None, None
    if args.predictions and "://" in args.predictions:
        if args.data:
            raise InputError("--predictions", "a prediction log replaces --data; give one of them")
        log_url = args.predictions
    elif args.predictions:
        scored = Path(args.predictions)
        if not scored.is_dir():
            raise InputError("--predictions", f"{scored} is neither a log URL nor a folder of sotag score output")
    data = resolve_data_path(args.data or "") if log_url is None else None
    # No --reference: the runner takes the champion's last training months from its version tags.
    reference = month_range(args.reference, "--reference") if args.reference else None
    # No --months: the job picks the newest complete month from the data it reads anyway.
    months = month_range(args.months, "--months") if args.months else ()
    full = args.engine == "spark"  # Spark embeds full months unless told to sample
    per_month = args.max_per_month if args.max_per_month is not None else (0 if full else DriftConfig.max_per_month)
    per_reference = args.max_reference if args.max_reference is not None else (0 if full else DriftConfig.max_reference)
    for flag, value in (("--max-per-month", per_month), ("--max-reference", per_reference)):
        if value != 0 and value < 10:
            raise InputError(flag, f"samples need at least 10 questions (0 = all), got {value}")
    return DriftConfig(
        reference=(reference[0], reference[-1]) if reference else None,
        months=months,
        data=data,
        predictions_url=log_url,
        scored=scored,
        engine=args.engine,
        spark=SparkSettings(master=args.master, conf=parse_conf(args.conf), app_name="sotag drift"),
        model_uri=args.model_uri,
        exclude_sources=parse_sources(args.exclude_sources),
        max_per_month=per_month,
        max_reference=per_reference,
        thresholds=args.thresholds,
        reports_root=args.reports_dir,
        on_alert=args.on_alert,
        webhook=args.webhook,
        cache_dir=cache_dir(os.environ),
    )


def _drift(args: argparse.Namespace) -> int:
    from monitoring.runner import execute

    settings = TrackingSettings.from_env()
    config = config_from_args(args)
    _, code = execute(config, settings, publish_to=_publish_to(args, settings, config))
    return code


def _publish_to(args: argparse.Namespace, settings: TrackingSettings, config: DriftConfig) -> FluentRuns | None:
    """Where the drift run is logged: MLflow's fluent API pointed at the drift experiment, unless --no-mlflow."""
    return None if args.no_mlflow else use_fluent(settings, config.experiment)


def _schedule(args: argparse.Namespace) -> int:
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    from monitoring.runner import execute

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("sotag.schedule")
    try:
        trigger = CronTrigger.from_crontab(args.cron, timezone="UTC")
    except ValueError as exc:
        raise InputError("--cron", f"{args.cron!r} is not a crontab expression ({exc})") from None
    settings = TrackingSettings.from_env()

    def run() -> None:
        start = time.perf_counter()
        # Without --months, execute picks the newest complete month of the data at run time.
        config = config_from_args(args)
        result, code = execute(config, settings, publish_to=_publish_to(args, settings, config))
        elapsed = time.perf_counter() - start
        months = ",".join(m.month for m in result.months) or "no month with data"
        log.info("drift %s: worst %s, exit %d, %.0f s", months, result.worst, code, elapsed)

    job = guarded(run, log)
    scheduler = make_scheduler(BlockingScheduler(timezone="UTC"), trigger, job, args.run_now)
    log.info("drift scheduled with cron %r (UTC); next run %s", args.cron, trigger.get_next_fire_time(None, _now()))
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
    p.add_argument("--cron", default="0 6 1 * *", help="crontab expression, UTC (default: 06:00 on the 1st)")
    p.add_argument("--run-now", action="store_true", help="also run once at start")
    _add_drift_args(p)
    p.set_defaults(handler=_schedule)
