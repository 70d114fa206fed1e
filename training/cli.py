"""`sotag train` and `sotag compare`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tagger.data.split import parse_sources
from tagger.errors import DataError
from tagger.tracking import MODEL_NAME, TrackingSettings
from tagger.vectorizers import VECTORIZER_KINDS
from training.config import GateConfig, TrainConfig, resolve_data_path

GATE_METRICS = ("f1_at_3", "f1_at_5", "precision_at_1", "precision_at_3", "recall_at_3", "recall_at_5", "f1_micro")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _unit_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    d = TrainConfig.__dataclass_fields__
    p.add_argument("--data", default="", help="questions file (default: $SOTAG_DATA or the shared data)")
    p.add_argument("--split-date", default=d["split_date"].default, help="train before, evaluate from (YYYY-MM-DD)")
    p.add_argument("--eval-end", default=None, help="evaluate before this date (default: to the end of the data)")
    p.add_argument("--top-n-tags", type=_positive_int, default=d["top_n_tags"].default)
    p.add_argument("--exclude-sources", default="", help="comma-separated source prefixes to drop, or 'topic-specific'")
    p.add_argument("--drop-code", action="store_true", help="drop <pre> code blocks instead of keeping identifiers")
    p.add_argument("--max-features", type=_positive_int, default=d["max_features"].default)
    p.add_argument("--ngram-max", type=_positive_int, default=d["ngram_max"].default)
    p.add_argument("--min-df", type=_positive_int, default=d["min_df"].default)
    p.add_argument("--C", type=float, default=d["C"].default, help="inverse regularisation of each logistic regression")
    p.add_argument("--top-k", type=_positive_int, default=d["top_k"].default)
    p.add_argument("--threshold", type=_unit_float, default=d["threshold"].default)
    p.add_argument("--n-jobs", type=_positive_int, default=d["n_jobs"].default)
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
        exclude_sources=exclude,
        keep_code=not args.drop_code,
        max_features=args.max_features,
        ngram_max=args.ngram_max,
        min_df=args.min_df,
        C=args.C,
        top_k=args.top_k,
        threshold=args.threshold,
        n_jobs=args.n_jobs,
        experiment=args.experiment,
    )
    values.update(overrides)
    return TrainConfig(**values)


def _train(args: argparse.Namespace) -> int:
    from training.train import train

    config = config_from_args(args, register=not args.no_register, run_name=args.run_name)
    config = config.for_vectorizer(args.vectorizer)
    train(config, TrackingSettings.from_env())
    return 0


def _compare(args: argparse.Namespace) -> int:
    from training.compare import compare

    kinds = tuple(k for k in args.vectorizers.split(",") if k)
    unknown = [k for k in kinds if k not in VECTORIZER_KINDS]
    if unknown:
        raise DataError(
            f"--vectorizers: unknown kind(s) {', '.join(unknown)} (choose from {', '.join(VECTORIZER_KINDS)})"
        )
    compare(config_from_args(args, register=False), TrackingSettings.from_env(), kinds)
    return 0


def _add_gate(p: argparse.ArgumentParser) -> None:
    d = GateConfig.__dataclass_fields__
    p.add_argument("--primary-metric", choices=GATE_METRICS, default=d["primary_metric"].default)
    p.add_argument("--floor-metric", choices=GATE_METRICS, default=d["floor_metric"].default)
    p.add_argument(
        "--floor", type=_unit_float, default=float(os.environ.get("SOTAG_PROMOTION_FLOOR", d["floor"].default))
    )
    p.add_argument("--min-delta", type=float, default=d["min_delta"].default, help="required gain over the champion")
    p.add_argument(
        "--mirror-stages", action="store_true", help="also set the legacy stage: champion Production, previous Archived"
    )


def gate_from_args(args: argparse.Namespace, data: Path) -> GateConfig:
    exclude = None
    if getattr(args, "eval_exclude_sources", None) is not None:
        exclude = parse_sources(args.eval_exclude_sources)
    return GateConfig(
        data=data,
        primary_metric=args.primary_metric,
        floor_metric=args.floor_metric,
        floor=args.floor,
        min_delta=args.min_delta,
        eval_start=getattr(args, "eval_start", None),
        eval_end=getattr(args, "eval_end_gate", None),
        exclude_sources=exclude,
        mirror_stages=args.mirror_stages,
    )


def _promote(args: argparse.Namespace) -> int:
    from training.promote import open_registry, promote

    registry = open_registry(TrackingSettings.from_env(), args.model_name)
    return promote(registry, gate_from_args(args, resolve_data_path(args.data)), args.version).exit_code


def _rollback(args: argparse.Namespace) -> int:
    from training.promote import open_registry, rollback

    rollback(open_registry(TrackingSettings.from_env(), args.model_name), args.reason, args.mirror_stages)
    return 0


def _status(args: argparse.Namespace) -> int:
    from training.promote import open_registry, status_text

    print(status_text(open_registry(TrackingSettings.from_env(), args.model_name)))
    return 0


def _retrain(args: argparse.Namespace) -> int:
    from training.promote import retrain

    config = config_from_args(args).for_vectorizer(args.vectorizer)
    return retrain(TrackingSettings.from_env(), config, gate_from_args(args, config.data), args.eval_days).exit_code


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train one configuration, log it and register it as @challenger")
    _add_common(p)
    p.add_argument("--vectorizer", choices=VECTORIZER_KINDS, default="tfidf")
    p.add_argument("--no-register", action="store_true", help="log the model without registering a version")
    p.add_argument("--run-name", default=None)
    p.set_defaults(handler=_train)

    p = subparsers.add_parser("compare", help="compare vectorizers on one split (nested runs)")
    _add_common(p)
    p.add_argument("--vectorizers", default=",".join(VECTORIZER_KINDS))
    p.set_defaults(handler=_compare)

    p = subparsers.add_parser(
        "promote",
        help="re-score @challenger and @champion on one window; move @champion if the challenger is as good",
        description="Exit codes: 0 promoted (or already champion), 3 champion kept, 2 bad input or registry state.",
    )
    p.add_argument("--version", default=None, help="the version to judge (default: @challenger)")
    p.add_argument("--data", default="", help="questions file for the evaluation window (default: the shared data)")
    p.add_argument("--eval-start", default=None, help="window start (default: the challenger's split date)")
    p.add_argument("--eval-end", dest="eval_end_gate", default=None, help="window end (default: the challenger's)")
    p.add_argument(
        "--eval-exclude-sources", default=None, help="sources to drop from the window (default: the challenger's)"
    )
    p.add_argument("--model-name", default=MODEL_NAME)
    _add_gate(p)
    p.set_defaults(handler=_promote)

    p = subparsers.add_parser("rollback", help="put @champion back on the previous champion")
    p.add_argument("--reason", default="manual rollback")
    p.add_argument("--model-name", default=MODEL_NAME)
    p.add_argument("--mirror-stages", action="store_true", help="also move the legacy Production stage")
    p.set_defaults(handler=_rollback)

    p = subparsers.add_parser("status", help="versions, aliases, key metrics and the promotion history")
    p.add_argument("--model-name", default=MODEL_NAME)
    p.set_defaults(handler=_status)

    p = subparsers.add_parser(
        "retrain",
        help="train on the newest data window, register, promote if better",
        description="Exit codes: 0 promoted, 3 champion kept, other non-zero on failure (the champion is untouched).",
    )
    _add_common(p)
    p.add_argument("--vectorizer", choices=VECTORIZER_KINDS, default="tfidf")
    p.add_argument("--eval-days", type=_positive_int, default=30, help="evaluate on the last N days of the data")
    _add_gate(p)
    p.set_defaults(handler=_retrain)
