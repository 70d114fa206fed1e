"""`sotag`: one console entry point for every stage (train, compare, promote, serve, drift, ...).

Each stage package (and the registry, for promote / rollback / status) contributes its
sub-commands through `register(subparsers)`. This module sits above every layer, so the
stages need not know each other. It builds the settings once (sotag.settings: defaults < config file <
environment < the flags given) and hands them to the command; `sotag config` prints them with their sources. Errors
meant for the user (SotagError) print one line and exit with code 2, never a traceback. SIGTERM and Ctrl-C
end the command's open MLflow runs KILLED and exit 143 / 130 (`sotag.interrupts`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sotag import interrupts
from sotag.infra.argtypes import settings_flags
from sotag.infra.tracking import TrackingSettings, note_launched_run
from sotag.monitoring import cli as monitoring_cli
from sotag.registry import cli as registry_cli
from sotag.serving import cli as serving_cli
from sotag.settings import Loaded, Settings, describe, load_settings, quiet_artifact_downloads
from sotag.tagger.errors import ComponentFault, SotagError
from sotag.training import cli as training_cli
from sotag.training.evaluate import EVALUATION_EXPERIMENT

# In the order `sotag --help` lists them: the lifecycle from training to monitoring.
SECTIONS = (training_cli, registry_cli, serving_cli, monitoring_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sotag", description="StackOverflow tag suggestion, run with MLflow.")
    parser.add_argument("--version", action="version", version=f"sotag {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for section in SECTIONS:
        section.register(subparsers)
    p = subparsers.add_parser(
        "config",
        help="print every setting, its value and where it came from (default, file, env, flag); where state lives",
        description="Settings come from, lowest first: defaults, a config file (--config, $SOTAG_CONFIG, or "
        "sotag.toml / sotag.yaml in the working folder), the environment (the documented names, or any field as "
        "SOTAG_<SECTION>__<FIELD>), then flags. `sotag config train --top-n-tags 200` shows what `sotag train "
        "--top-n-tags 200` would run with.",
    )
    p.add_argument(
        "command_line",
        nargs=argparse.REMAINDER,
        metavar="COMMAND ...",
        help="a sotag command line whose flags to include (nothing runs)",
    )
    p.set_defaults(handler=_config)
    for command in subparsers.choices.values():
        command.add_argument(
            "--config",
            dest="config_file",
            default=None,
            metavar="FILE",
            help="a settings file (TOML or YAML; default: $SOTAG_CONFIG, else sotag.toml or sotag.yaml here)",
        )
    return parser


def _config(args: argparse.Namespace, settings: Settings, loaded: Loaded) -> int:
    print("\n".join(describe(loaded)))
    return 0


def _settings_args(args: argparse.Namespace) -> argparse.Namespace:
    """The parsed command line whose flags are settings: for `sotag config COMMAND ...`, COMMAND's."""
    if args.handler is not _config or not args.command_line:
        return args
    line = list(args.command_line)
    if line[0] == "config":
        raise SotagError("sotag config: give the command line of another command (sotag config train --data F)")
    inner = build_parser().parse_args(dashed_options(line))
    inner.config_file = inner.config_file or args.config_file
    return inner


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sotag")
    except PackageNotFoundError:
        return "unknown (not installed)"


def component_fault(exc: BaseException) -> str | None:
    """One line for a fault of a component the job talks to (tracking server, database, object store,
    network, disk); None for anything else, which is a bug and keeps its traceback."""
    from mlflow.exceptions import MlflowException

    kinds: list[tuple[type, str]] = [(MlflowException, "tracking server or model registry")]
    try:
        import requests

        kinds.append((requests.RequestException, "network"))
    except ImportError:
        pass
    try:
        import sqlalchemy

        kinds.append((sqlalchemy.exc.SQLAlchemyError, "database"))
    except ImportError:
        pass
    try:
        import botocore.exceptions

        kinds.append((botocore.exceptions.BotoCoreError, "object store"))
        kinds.append((botocore.exceptions.ClientError, "object store"))
    except ImportError:
        pass
    kinds.append((OSError, "file system or network"))
    for kind, what in kinds:
        if isinstance(exc, kind):
            text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            first = next((line.strip() for line in str(text).splitlines() if line.strip()), type(exc).__name__)
            if "mlflow-artifacts" in first or "artifact" in type(exc).__name__.lower():
                what = "artifact store (through the tracking server)"
            return f"{what}: {first[:400]} (SOTAG_DEBUG=1 shows the traceback)"
    return None


def dashed_options(argv: Sequence[str]) -> list[str]:
    """`--split_date` as `--split-date`: MLflow's launcher passes an MLproject parameter it does not declare as
    `--<name> <value>` with the name as written in `-P name=value` (underscores); sotag's flags use dashes."""
    out = []
    for token in argv:
        name, sep, value = token.partition("=")
        if name.startswith("--") and "_" in name:
            token = name.replace("_", "-") + sep + value
        out.append(token)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(dashed_options(sys.argv[1:] if argv is None else argv))
    handler: Callable[..., int] = args.handler
    settings: Settings | None = None
    try:
        given = _settings_args(args)
        loaded = load_settings(settings_flags(given), config=given.config_file)
        settings = loaded.settings
        quiet_artifact_downloads()
        extra: dict[str, Any] = {"loaded": loaded} if handler is _config else {}
        with interrupts.interruptible():
            code = handler(args, settings, **extra)
        _note_launched_run(args.command, settings, code)
        return code
    except KeyboardInterrupt as exc:  # Ctrl-C, or an `interrupts.Interrupted` for SIGTERM / SIGINT
        return _interrupted(args.command, exc, settings)
    except ComponentFault as exc:
        print(f"sotag {args.command}: failed: {exc}", file=sys.stderr)
        return 1
    except SotagError as exc:
        code = getattr(exc, "exit_code", 2)  # 3: a decision not to act (a broken champion kept), not bad input
        print(f"sotag {args.command}: {'error' if code == 2 else 'kept'}: {exc}", file=sys.stderr)
        return code
    except Exception as exc:
        fault = component_fault(exc)
        if fault is None or (settings is not None and settings.debug):
            raise
        print(f"sotag {args.command}: failed: {fault}", file=sys.stderr)
        return 1


def own_experiment(command: str, settings: Settings) -> str:
    """The experiment a command's runs belong in: drift's, promotion's, evaluation's, else the training runs'."""
    if command == "evaluate":
        return EVALUATION_EXPERIMENT
    if command in ("drift", "schedule"):
        return settings.drift.experiment
    if command in ("promote", "rollback"):
        return settings.promote.experiment
    return settings.train.experiment


def _note_launched_run(command: str, settings: Settings, code: int) -> None:
    """Under `mlflow run`: the launcher's run tagged with the stage, and a note when it is in another stage's
    experiment (infra.tracking.note_launched_run)."""
    tracking = TrackingSettings.from_settings(settings)
    if not tracking.launched_run_id:
        return
    note = note_launched_run(tracking, command, own_experiment(command, settings), code)
    if note:  # stderr: a command's last stdout line is its interface (evaluate:, drift:, …)
        print(note, file=sys.stderr)


def _interrupted(command: str, exc: BaseException, settings: Settings | None) -> int:
    """End the runs the signal left open (KILLED), say so in one line, return 143 (SIGTERM) or 130 (Ctrl-C)."""
    code = exc.code if isinstance(exc, interrupts.Interrupted) else 130
    name = str(exc) if isinstance(exc, interrupts.Interrupted) else "SIGINT"
    if settings is None:
        print(f"sotag {command}: interrupted ({name})", file=sys.stderr, flush=True)
        return code
    try:
        killed = interrupts.end_interrupted_runs(TrackingSettings.from_settings(settings))
        runs = f"; runs ended KILLED: {', '.join(killed)}" if killed else ""
    except Exception as err:  # the store may be the reason the job was stopped
        runs = f"; open runs not ended ({component_fault(err) or type(err).__name__})"
    print(f"sotag {command}: interrupted ({name}){runs}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
