"""`sotag`: one console entry point for every stage (train, compare, ...).

Each stage package contributes its sub-commands through `register(subparsers)`; errors
meant for the user (SotagError) print one line and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from tagger.errors import SotagError

STAGES = ("training.cli", "serving.cli", "monitoring.cli")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="sotag", description="StackOverflow tag suggestion, run with MLflow.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in STAGES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except SotagError as exc:
        print(f"sotag {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sotag {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
