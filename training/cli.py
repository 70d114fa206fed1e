"""`sotag train` and `sotag compare`."""

from __future__ import annotations

import argparse
from pathlib import Path

from tagger.data.split import TOPIC_SPECIFIC_SOURCES
from tagger.errors import DataError
from tagger.tracking import TrackingSettings
from tagger.vectorizers import VECTORIZER_KINDS
from training.config import TrainConfig, default_data_path

NO_DATA_HELP = (
    "no data file at {path}. Pass one with --data (make demo DATA=path). Supported: a Stack Exchange "
    "Data Explorer CSV export (columns Id, CreationDate, Title, Body, Tags; e.g. "
    "SELECT Id, CreationDate, Title, Body, Tags FROM Posts WHERE PostTypeId = 1 on data.stackexchange.com), "
    "a Stack Exchange Posts.xml dump (archive.org/details/stackexchange), the Kaggle "
    "'60k Stack Overflow Questions' CSV, or a parquet file with id, creation_date, title, body, tags."
)


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
    data = Path(args.data) if args.data else default_data_path()
    if not Path(data).is_file():
        raise DataError(NO_DATA_HELP.format(path=data))
    exclude = tuple(s for s in args.exclude_sources.split(",") if s)
    if exclude == ("topic-specific",):
        exclude = TOPIC_SPECIFIC_SOURCES
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
