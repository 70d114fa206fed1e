"""`sotag train`, `sotag compare` and `sotag retrain`."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from sotag.data.split import parse_sources
from sotag.data.store import shown_url
from sotag.infra.argtypes import (
    add_data_argument,
    add_model_uri_argument,
    non_negative_int,
    positive_int,
    setting,
    unit_float,
)
from sotag.infra.tracking import TrackingSettings, use_fluent
from sotag.registry.cli import add_gate_args, gate_from_settings, promotion_lines
from sotag.settings import Settings
from sotag.tagger.errors import DataError
from sotag.tagger.kinds import trainable_kinds
from sotag.training.config import TrainConfig


def _add_common(p: argparse.ArgumentParser) -> None:
    add_data_argument(p)
    setting(p, "--split-date", "train.split_date", "train before, evaluate from (YYYY-MM-DD)")
    setting(p, "--eval-end", "train.eval_end", "evaluate before this date (none: to the end of the data)")
    setting(p, "--top-n-tags", "train.top_n_tags", type=positive_int)
    setting(
        p,
        "--min-tag-questions",
        "train.plt.min_tag_questions",
        "the plt kind's vocabulary: every tag on at least N training questions (the top-N-tags are its head)",
        type=positive_int,
    )
    setting(p, "--exclude-sources", "train.exclude_sources", "comma-separated source prefixes, or 'topic-specific'")
    setting(
        p,
        "--drop-code",
        "train.keep_code",
        "drop <pre> code blocks instead of keeping identifiers",
        action="store_false",
    )
    setting(p, "--max-features", "train.max_features", type=positive_int)
    setting(p, "--ngram-max", "train.ngram_max", type=positive_int)
    setting(p, "--min-df", "train.min_df", type=positive_int)
    setting(p, "--C", "train.C", "inverse regularisation of each logistic regression", type=float)
    setting(p, "--sbert-C", "train.ensemble.sbert_C", "the ensemble's SBERT head's C", type=float)
    setting(
        p,
        "--ensemble-weight",
        "train.ensemble.weight",
        "fix the ensemble's TF-IDF weight (none: chosen on the newest 15% of the training window)",
        type=unit_float,
    )
    setting(p, "--top-k", "train.top_k", type=positive_int)
    setting(
        p,
        "--threshold",
        "train.threshold",
        "the served threshold on calibrated probabilities (none: the best served F1 on the newest 15% of the "
        "training window)",
        type=unit_float,
    )
    setting(
        p,
        "--choose-threshold",
        "train.choose_threshold",
        "choose the served threshold on the newest 15% of the training window even when --threshold is set",
        action="store_true",
    )
    setting(
        p,
        "--no-calibrate",
        "train.calibrate",
        "serve the kind's raw scores, not probabilities fitted on the newest 15% of the training window (saves a fit)",
        action="store_false",
    )
    setting(
        p,
        "--min-tags",
        "train.min_tags",
        "every question gets at least this many tags, its best, whatever their score (0: only those >= threshold)",
        type=non_negative_int,
    )
    setting(p, "--n-jobs", "train.n_jobs", type=positive_int)
    setting(p, "--experiment", "train.experiment")


def config_from_settings(settings: Settings, **overrides: object) -> TrainConfig:
    """The training run's configuration: the `train` section on the data the settings name (or the default)."""
    data = settings.data_paths()
    return TrainConfig.from_settings(settings, data, **overrides).for_vectorizer(settings.train.kind)


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from sotag.training.train import train

    config = config_from_settings(settings, register=not args.no_register, run_name=args.run_name)
    train(config, use_fluent(TrackingSettings.from_settings(settings), config.experiment))
    return 0


def _compare(args: argparse.Namespace, settings: Settings) -> int:
    from sotag.training.compare import compare

    given = settings.train.compare_kinds
    kinds = tuple(k for k in given.split(",") if k) if given else trainable_kinds()
    unknown = [k for k in kinds if k not in trainable_kinds()]
    if unknown:
        raise DataError(
            f"--vectorizers: unknown kind(s) {', '.join(unknown)} (choose from {', '.join(trainable_kinds())})"
        )
    config = TrainConfig.from_settings(settings, settings.data_paths(), register=False)
    runs = use_fluent(TrackingSettings.from_settings(settings), config.experiment)
    compare(config, runs, kinds, rank_on=settings.promote.primary_metric)
    return 0


def _retrain(args: argparse.Namespace, settings: Settings) -> int:
    return retrain_job(settings)


def retrain_job(settings: Settings) -> int:
    """`sotag retrain` in this process, with `settings`. The gateway's /admin/retrain and the drift job's
    `--on-alert retrain` run it as a child process (`sotag.infra.retrain_job`) with their settings passed down.
    Returns the exit code: 0 promoted, 3 champion kept."""
    from sotag.training.retrain import retrain

    config = config_from_settings(settings)
    # This function is the command (and the gateway's /admin/retrain): the entry point that points MLflow's fluent
    # API at the store for the training run.
    runs = use_fluent(TrackingSettings.from_settings(settings), config.experiment)
    gate = gate_from_settings(settings, config.data)
    result = retrain(runs, config, gate, settings.train.eval_days, settings.train.retrain_min_questions)
    print("\n".join(promotion_lines(result, config.model_name)))
    return result.exit_code


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from sotag.training.evaluate import EvaluateConfig, evaluate_model, report_lines

    tracking = TrackingSettings.from_settings(settings)
    config = EvaluateConfig(
        data=settings.data_paths(),
        model_uri=settings.served_model_uri,
        start=args.start,
        end=args.end,
        exclude_sources=parse_sources(args.exclude_sources),
        experiment=args.experiment,
        top_missing=args.top_missing,
    )
    outcome = evaluate_model(config, use_fluent(tracking, config.experiment))
    print("\n".join(report_lines(outcome, config, tracking)))
    return 0


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from sotag.data.ingest import inbox_files, ingest

    inputs = [Path(p) for p in args.inputs]
    if args.feedback:
        if inputs or "store.inbox" in vars(args):
            raise DataError("--feedback: give files and folders, --inbox or --feedback, one of them")
        return _ingest_feedback(settings)
    if "store.inbox" in vars(args):  # --inbox [FOLDER]: only the files no earlier load read
        if inputs:
            raise DataError("--inbox: give files and folders, or --inbox, not both")
        found = inbox_files(settings.store_url, settings.inbox_dir)
        if found.seen:
            print(
                f"ingest: {len(found.seen)} file(s) in {settings.inbox_dir} skipped: read by an earlier load, or "
                "copies of a file read now (same sha256)"
            )
        if not found.new:
            print(f"ingest: no new files in {settings.inbox_dir}")
            return 0
        inputs = list(found.new)
    elif not inputs:
        raise DataError("ingest: give question files or folders, or --inbox [FOLDER]")
    result = ingest(settings.store_url, inputs, settings.store.max_refused_share)
    print(result.line())
    if result.previous_digest == result.digest:
        print("ingest: the store's snapshot is unchanged (no new or changed question)")
    print(f"ingest: store {shown_url(settings.store_url)} (read it with --data store)")
    return 0


def _ingest_feedback(settings: Settings) -> int:
    """The gateway's labelled live questions (the tags askers kept, POST /feedback) into the question store, where
    the next retrain reads them: ids negative (data.store.live_question_id), source `feedback`, dated when asked."""
    import pandas as pd

    from sotag.data.ingest import frame_sha256, load_rows
    from sotag.data.store import live_question_id, shown_url
    from sotag.infra.prediction_log import read_feedback

    log = settings.prediction_log_url
    labelled = read_feedback(log)
    if labelled.empty:
        print(f"ingest: the prediction log {shown_url(log)} holds no feedback")
        return 0
    with_text = labelled.dropna(subset=["title"])
    if len(with_text) < len(labelled):
        print(
            f"ingest: {len(labelled) - len(with_text)} of {len(labelled)} feedback rows have no question text: the "
            "gateway logged digests only (gateway.log_text = true keeps the text, for retraining and drift)"
        )
    if with_text.empty:
        return 0
    bodies = with_text["body"].fillna("")
    raw = pd.DataFrame(
        {
            "id": [live_question_id(t, b) for t, b in zip(with_text["title"], bodies, strict=True)],
            "creation_date": pd.to_datetime(with_text["predicted_at"], utc=True).dt.tz_localize(None),
            "title": with_text["title"].to_numpy(),
            "body": bodies.to_numpy(),
            "tags": with_text["kept_tags"].to_numpy(),
            "source": "feedback",
        }
    )
    entries = [{"path": f"feedback:{shown_url(log)}", "sha256": frame_sha256(raw)}]
    result = load_rows(settings.store_url, raw, entries, settings.store.max_refused_share)
    print(result.line())
    print(f"ingest: {len(raw)} labelled live questions from {shown_url(log)} into {shown_url(settings.store_url)}")
    return 0


def _date(text: str) -> str | None:
    """A YYYY-MM-DD date as given on the command line; empty (MLproject's default) is none."""
    if not text:
        return None
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _add_retrain_args(p: argparse.ArgumentParser) -> None:
    _add_common(p)
    setting(p, "--vectorizer", "train.kind", "the model kind", choices=trainable_kinds())
    setting(p, "--eval-days", "train.eval_days", "evaluate on the last N days of the data", type=positive_int)
    setting(
        p,
        "--min-questions",
        "train.retrain_min_questions",
        "judge only on at least N questions neither model trained on, else keep the champion without a verdict",
        type=positive_int,
    )
    add_gate_args(p)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train one configuration, log it and register it as @challenger")
    _add_common(p)
    setting(p, "--vectorizer", "train.kind", "the model kind", choices=trainable_kinds())
    p.add_argument("--no-register", action="store_true", help="log the model without registering a version")
    p.add_argument("--run-name", default=None)
    p.set_defaults(handler=_train)

    p = subparsers.add_parser("compare", help="compare vectorizers on one split (nested runs)")
    _add_common(p)
    setting(p, "--vectorizers", "train.compare_kinds", f"comma-separated kinds (none: {','.join(trainable_kinds())})")
    p.set_defaults(handler=_compare)

    p = subparsers.add_parser(
        "retrain",
        help="train on the newest data window, register, promote if better",
        description="Exit codes: 0 promoted, 3 champion kept, other non-zero on failure (the champion is untouched).",
    )
    _add_retrain_args(p)
    p.set_defaults(handler=_retrain)

    p = subparsers.add_parser(
        "ingest",
        help="append questions (any supported file or folder) to the question store: upsert by id, one load",
        description="Each load is one transaction, recorded with its counts and the store's snapshot digest; a load "
        "that refuses more than store.max_refused_share of its rows is refused whole. Exit codes: 0 loaded, 2 bad "
        "input (nothing written), 1 the store's database failed (nothing written). With --inbox: only the inbox's "
        "files whose sha256 no earlier load recorded; none: `ingest: no new files in FOLDER`, exit 0.",
    )
    p.add_argument("inputs", nargs="*", metavar="FILE|FOLDER", help="question files or folders, as --data takes")
    setting(p, "--store", "store.url", "the store's SQLAlchemy URL (none: sqlite:///<home>/questions.db)")
    setting(
        p,
        "--inbox",
        "store.inbox",
        "load the new files of this folder (no FOLDER: the store.inbox setting; none: <home>/inbox)",
        type=Path,
        nargs="?",
        const=None,
        metavar="FOLDER",
    )
    p.add_argument(
        "--feedback",
        action="store_true",
        help="load the gateway's labelled live questions (POST /feedback: the tags askers kept) from the prediction "
        "log (gateway.prediction_log) instead of files",
    )
    p.set_defaults(handler=_ingest)

    from sotag.training.evaluate import EVALUATION_EXPERIMENT

    p = subparsers.add_parser(
        "evaluate",
        help="score any model (models:/name@alias, models:/name/3, a model folder) on any questions file or window",
        description="In-vocabulary and all-tags metrics, vocabulary coverage, a per-tag table and the most used tags "
        "the model cannot suggest, logged as an MLflow run linked to the model version. Ends with the line "
        "`evaluate: P@1=… R@5=… P@1_all=… R@5_all=… coverage=… n=…`. Exit codes: 0 done, 2 bad input (unknown "
        "file or model, no question in the window), 1 a component fault (tracking server, store).",
    )
    add_data_argument(p)
    add_model_uri_argument(p)
    p.add_argument("--start", type=_date, default=None, help="questions created on or after this date (YYYY-MM-DD)")
    p.add_argument("--end", type=_date, default=None, help="questions created before this date (YYYY-MM-DD)")
    p.add_argument("--exclude-sources", default="", help="comma-separated source prefixes to drop, or 'topic-specific'")
    p.add_argument("--top-missing", type=positive_int, default=20, help="how many unsuggestable tags to list")
    p.add_argument("--experiment", default=EVALUATION_EXPERIMENT, help="the MLflow experiment of the run")
    p.set_defaults(handler=_evaluate)
