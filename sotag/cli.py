"""`sotag`: one console entry point for every stage (train, compare, promote, serve, drift, ...).

Each stage package (and the registry, for promote / rollback / status) contributes its
sub-commands through `register(subparsers)`. This module sits above every layer, so the
stages need not know each other; errors
meant for the user (SotagError) print one line and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import monitoring.cli
import registry.cli
import serving.cli
import training.cli
from tagger.errors import SotagError

# In the order `sotag --help` lists them: the lifecycle from training to monitoring.
SECTIONS = (training.cli, registry.cli, serving.cli, monitoring.cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sotag", description="StackOverflow tag suggestion, run with MLflow.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for section in SECTIONS:
        section.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # MLflow draws a bar per artifact download (even a 4-file model); ours already say what runs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
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
