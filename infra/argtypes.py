"""argparse value types shared by every `sotag` sub-command: the message names the rule broken."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def unit_float(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


DATA_HELP = (
    "questions: one or several files or folders (SEDE CSV, Posts.xml, parquet, StackSample, BigQuery; a folder: "
    "its question files), concatenated, each question id once; `--data A B` or `--data A --data B` "
    "(default: $SOTAG_DATA, the shared data, or the bundled sample)"
)


def add_data_argument(parser: argparse.ArgumentParser, help: str = DATA_HELP) -> None:
    """`--data PATH [PATH …]`, repeatable: every value given, in order (tagger.data.resolve_data_paths reads them;
    none, or only empty ones, means the default data set)."""
    parser.add_argument("--data", nargs="*", action="extend", default=[], metavar="PATH", help=help)
