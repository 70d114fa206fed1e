"""argparse value types shared by every `sotag` sub-command (the message names the rule broken), and `setting`:
a flag that sets one field of the settings object (sotag.settings), given only when the user typed it."""

from __future__ import annotations

import argparse
from typing import Any

from sotag.settings import Settings, field_value

_DEFAULTS = Settings()  # the defaults, as written once in sotag.settings


def setting(parser: argparse.ArgumentParser, flag: str, dest: str, help: str = "", **kwargs: Any) -> None:
    """`flag` sets the field `dest` ("train.top_n_tags"): left out of the parsed namespace unless given, so the
    config file and the environment are not overridden by a default; the help says the default."""
    default = field_value(_DEFAULTS, dest)
    shown = "none" if default is None else default
    if kwargs.get("action") in ("store_true", "store_false"):
        text = help
    else:
        text = f"{help} (default: {shown})".strip() if help else f"default: {shown}"
        if "choices" not in kwargs:
            kwargs.setdefault("metavar", flag.lstrip("-").replace("-", "_").upper())
    parser.add_argument(flag, dest=dest, default=argparse.SUPPRESS, help=text.replace("%", "%%"), **kwargs)


def settings_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the command line set: every namespace entry whose name is a field's dotted path."""
    flags = {name: value for name, value in vars(args).items() if "." in name or name in _TOP_LEVEL}
    if "data" in flags:
        given = tuple(v for v in flags.pop("data") if v)
        if given:
            flags["data"] = given
    return flags


_TOP_LEVEL = frozenset({"data", "model_uri"})


def _integer_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _integer_at_least(text, 1)


def non_negative_int(text: str) -> int:
    return _integer_at_least(text, 0)


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
    "(default: the `data` setting ($SOTAG_DATA, sotag.toml), the shared data beside the working folder, or the "
    "bundled sample)"
)


def add_data_argument(parser: argparse.ArgumentParser, help: str = DATA_HELP) -> None:
    """`--data PATH [PATH …]`, repeatable: the `data` setting, every value given, in order (empty values, e.g.
    MLproject's, are dropped; none left means the setting from the file or the environment, else the default)."""
    parser.add_argument(
        "--data", nargs="*", action="extend", type=_data_path, default=argparse.SUPPRESS, metavar="PATH", help=help
    )
    # The one time window of the question store, for every command that reads questions (sotag.data's loader).
    setting(parser, "--since", "store.since", "read the question store from this date on (YYYY-MM-DD or ISO time, UTC)")
    setting(parser, "--until", "store.until", "read the question store before this date (excluded)")


def _data_path(text: str) -> str | None:
    return text or None


def add_model_uri_argument(parser: argparse.ArgumentParser) -> None:
    """`--model-uri`: the `model_uri` setting (none: models:/<model name>@champion)."""
    parser.add_argument(
        "--model-uri",
        dest="model_uri",
        default=argparse.SUPPRESS,
        help="registry URI (models:/name@alias, models:/name/3), runs:/ URI or model folder (default: the "
        "model_uri setting, $SOTAG_MODEL_URI, else models:/stackoverflow-tagger@champion)",
    )
