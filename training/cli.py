"""`sotag train`, `sotag compare` and `sotag retrain`."""

from __future__ import annotations

import argparse
import datetime
import os
from collections.abc import Sequence

from infra.argtypes import positive_int, unit_float
from infra.cache import cache_dir
from infra.tracking import MODEL_NAME, TrackingSettings, use_fluent
from registry.cli import add_gate_args, gate_from_args, promotion_lines
from tagger.data import resolve_data_path
from tagger.data.split import parse_sources
from tagger.errors import DataError
from tagger.kinds import trainable_kinds
from training.config import TrainConfig


def _add_common(p: argparse.ArgumentParser) -> None:
    d = TrainConfig.__dataclass_fields__
    p.add_argument(
        "--data", default="", help="questions file (default: $SOTAG_DATA, the shared data, or the bundled sample)"
    )
    p.add_argument("--split-date", default=d["split_date"].default, help="train before, evaluate from (YYYY-MM-DD)")
    p.add_argument("--eval-end", default=None, help="evaluate before this date (default: to the end of the data)")
    p.add_argument("--top-n-tags", type=positive_int, default=d["top_n_tags"].default)
    p.add_argument(
        "--min-tag-questions",
        type=positive_int,
        default=d["min_tag_questions"].default,
        help="the plt kind's vocabulary: every tag on at least N training questions (the top-N-tags are its head)",
    )
    p.add_argument("--exclude-sources", default="", help="comma-separated source prefixes to drop, or 'topic-specific'")
    p.add_argument("--drop-code", action="store_true", help="drop <pre> code blocks instead of keeping identifiers")
    p.add_argument("--max-features", type=positive_int, default=d["max_features"].default)
    p.add_argument("--ngram-max", type=positive_int, default=d["ngram_max"].default)
    p.add_argument("--min-df", type=positive_int, default=d["min_df"].default)
    p.add_argument("--C", type=float, default=d["C"].default, help="inverse regularisation of each logistic regression")
    p.add_argument("--sbert-C", type=float, default=d["sbert_C"].default, help="the ensemble's SBERT head's C")
    p.add_argument(
        "--ensemble-weight",
        type=unit_float,
        default=None,
        help="fix the ensemble's TF-IDF weight (default: chosen on the newest 15%% of the training window)",
    )
    p.add_argument("--top-k", type=positive_int, default=d["top_k"].default)
    p.add_argument("--threshold", type=unit_float, default=d["threshold"].default)
    p.add_argument(
        "--choose-threshold",
        action="store_true",
        help="serve the threshold with the best served F1 on the newest 15%% of the training window (one more fit)",
    )
    p.add_argument("--n-jobs", type=positive_int, default=d["n_jobs"].default)
    p.add_argument("--experiment", default=d["experiment"].default)


def config_from_args(args: argparse.Namespace, **overrides: object) -> TrainConfig:
    # An empty --data (MLproject's default) means the default data set.
    data = resolve_data_path(args.data)
    exclude = parse_sources(args.exclude_sources)
    values = dict(
        data=data,
        split_date=args.split_date,
        eval_end=args.eval_end,
        top_n_tags=args.top_n_tags,
        min_tag_questions=args.min_tag_questions,
        exclude_sources=exclude,
        keep_code=not args.drop_code,
        max_features=args.max_features,
        ngram_max=args.ngram_max,
        min_df=args.min_df,
        C=args.C,
        sbert_C=args.sbert_C,
        ensemble_weight=args.ensemble_weight,
        top_k=args.top_k,
        threshold=args.threshold,
        choose_threshold=args.choose_threshold,
        n_jobs=args.n_jobs,
        experiment=args.experiment,
        cache_dir=cache_dir(os.environ),
    )
    values.update(overrides)
    return TrainConfig(**values)


def _train(args: argparse.Namespace) -> int:
    from training.train import train

    config = config_from_args(args, register=not args.no_register, run_name=args.run_name)
    config = config.for_vectorizer(args.vectorizer)
    train(config, use_fluent(TrackingSettings.from_env(), config.experiment))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from training.compare import compare

    kinds = tuple(k for k in args.vectorizers.split(",") if k)
    unknown = [k for k in kinds if k not in trainable_kinds()]
    if unknown:
        raise DataError(
            f"--vectorizers: unknown kind(s) {', '.join(unknown)} (choose from {', '.join(trainable_kinds())})"
        )
    config = config_from_args(args, register=False)
    compare(config, use_fluent(TrackingSettings.from_env(), config.experiment), kinds)
    return 0


def _retrain(args: argparse.Namespace) -> int:
    return retrain_job(TrackingSettings.from_env(), args)


def retrain_job(settings: TrackingSettings, args: argparse.Namespace | Sequence[str] = ()) -> int:
    """`sotag retrain` in this process, on `settings`' store: the one function behind the command and the
    gateway's /admin/retrain (which the `sotag` command layer hands it). `args`: parsed flags, or the command's
    arguments (none: every default). Returns the exit code: 0 promoted, 3 champion kept."""
    from training.retrain import retrain

    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="sotag retrain")
        _add_retrain_args(parser)
        args = parser.parse_args(list(args))
    config = config_from_args(args).for_vectorizer(args.vectorizer)
    # This function is the command (and the gateway's /admin/retrain): the entry point that points MLflow's fluent
    # API at the store for the training run.
    result = retrain(use_fluent(settings, config.experiment), config, gate_from_args(args, config.data), args.eval_days)
    print("\n".join(promotion_lines(result, config.model_name)))
    return result.exit_code


def _evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import EvaluateConfig, evaluate_model, report_lines

    settings = TrackingSettings.from_env()
    config = EvaluateConfig(
        data=resolve_data_path(args.data),
        model_uri=args.model_uri,
        start=args.start,
        end=args.end,
        exclude_sources=parse_sources(args.exclude_sources),
        experiment=args.experiment,
        top_missing=args.top_missing,
    )
    outcome = evaluate_model(config, use_fluent(settings, config.experiment))
    print("\n".join(report_lines(outcome, config, settings)))
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
    p.add_argument("--vectorizer", choices=trainable_kinds(), default=TrainConfig.vectorizer)
    p.add_argument("--eval-days", type=positive_int, default=30, help="evaluate on the last N days of the data")
    add_gate_args(p)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train one configuration, log it and register it as @challenger")
    _add_common(p)
    p.add_argument("--vectorizer", choices=trainable_kinds(), default=TrainConfig.vectorizer)
    p.add_argument("--no-register", action="store_true", help="log the model without registering a version")
    p.add_argument("--run-name", default=None)
    p.set_defaults(handler=_train)

    p = subparsers.add_parser("compare", help="compare vectorizers on one split (nested runs)")
    _add_common(p)
    p.add_argument("--vectorizers", default=",".join(trainable_kinds()))
    p.set_defaults(handler=_compare)

    p = subparsers.add_parser(
        "retrain",
        help="train on the newest data window, register, promote if better",
        description="Exit codes: 0 promoted, 3 champion kept, other non-zero on failure (the champion is untouched).",
    )
    _add_retrain_args(p)
    p.set_defaults(handler=_retrain)

    from training.evaluate import EVALUATION_EXPERIMENT

    p = subparsers.add_parser(
        "evaluate",
        help="score any model (models:/name@alias, models:/name/3, a model folder) on any questions file or window",
        description="In-vocabulary and all-tags metrics, vocabulary coverage, a per-tag table and the most used tags "
        "the model cannot suggest, logged as an MLflow run linked to the model version. Ends with the line "
        "`evaluate: P@1=… R@5=… P@1_all=… R@5_all=… coverage=… n=…`. Exit codes: 0 done, 2 bad input (unknown "
        "file or model, no question in the window), 1 a component fault (tracking server, store).",
    )
    p.add_argument("--data", default="", help="questions file: SEDE CSV, Posts.xml, parquet, StackSample, BigQuery")
    p.add_argument("--model-uri", default=f"models:/{MODEL_NAME}@champion", help="registry URI or model folder")
    p.add_argument("--start", type=_date, default=None, help="questions created on or after this date (YYYY-MM-DD)")
    p.add_argument("--end", type=_date, default=None, help="questions created before this date (YYYY-MM-DD)")
    p.add_argument("--exclude-sources", default="", help="comma-separated source prefixes to drop, or 'topic-specific'")
    p.add_argument("--top-missing", type=positive_int, default=20, help="how many unsuggestable tags to list")
    p.add_argument("--experiment", default=EVALUATION_EXPERIMENT, help="the MLflow experiment of the run")
    p.set_defaults(handler=_evaluate)
