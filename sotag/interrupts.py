"""SIGTERM and Ctrl-C for every `sotag` command: the open MLflow runs end KILLED, the exit code is conventional.

A signal is turned into an exception (`Interrupted`, a KeyboardInterrupt, so no `except Exception` swallows it)
that unwinds through the `with mlflow.start_run()` blocks. Those end their runs FAILED on the way out; once the
command has unwound, `end_interrupted_runs` marks every run that was open when the signal came (the innermost
one and its parents, nested ones included) KILLED, ends any run still active, and deletes a model version
registered from one of them, so an interrupted run leaves no registered version behind. Exit code: 128 + the
signal number (143 for SIGTERM, 130 for Ctrl-C), as a shell reports a process the signal ended.

Python runs a signal handler wherever the main thread happens to be, and some places there swallow an exception:
a weakref callback or a `__del__` run by the garbage collector prints "Exception ignored in …" and carries on (seen
with SBERT encoding: the command then ran to its end and ignored the SIGTERM). So the signal is delivered again,
every `REDELIVER_S` seconds, until the command has unwound: a timer (SIGALRM) re-raises `Interrupted` unless it is
already propagating (it is then the exception being handled).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import mlflow
from mlflow.entities import RunStatus

from sotag.infra.tracking import TrackingSettings

KILLED = RunStatus.to_string(RunStatus.KILLED)
_PARENT_TAG = "mlflow.parentRunId"
REDELIVER_S = 1.0
# Ids of the runs open when a signal came (the active run and its parent chain as far as it is known in memory).
_open_at_signal: list[str] = []
_pending: list[int] = []  # the signal being delivered, until the command has unwound


class Interrupted(KeyboardInterrupt):
    """The command was stopped by a signal; `code` is the conventional exit status (128 + signal number).

    A KeyboardInterrupt, so libraries that clean up on Ctrl-C (worker pools, progress bars) do so on SIGTERM too.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.code = 128 + signum
        super().__init__(signal.Signals(signum).name)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    # No I/O here (the main thread may be inside a store transaction): note the open runs, then unwind.
    run = mlflow.active_run()
    if run is not None and not _open_at_signal:
        _open_at_signal.append(run.info.run_id)
        parent = run.data.tags.get(_PARENT_TAG)
        if parent:
            _open_at_signal.append(parent)
    if not _pending:
        _pending.append(signum)
        signal.setitimer(signal.ITIMER_REAL, REDELIVER_S, REDELIVER_S)
    raise Interrupted(signum)


def _redeliver(_signum: int, _frame: FrameType | None) -> None:
    """The timer: raise the pending interruption again unless it is already unwinding the command."""
    if _pending and not isinstance(sys.exc_info()[1], Interrupted):
        raise Interrupted(_pending[0])


@contextmanager
def interruptible() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGINT raise `Interrupted` (a command that serves may install its own
    SIGTERM handler inside); the previous handlers come back after. Outside the main thread (where Python
    delivers no signal) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _open_at_signal.clear()
    _pending.clear()
    previous = {signum: signal.signal(signum, _on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, _redeliver)
    unraisable = sys.unraisablehook
    sys.unraisablehook = _quiet_when_redelivered(unraisable)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)  # delivered: the command has unwound
        _pending.clear()
        sys.unraisablehook = unraisable
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _quiet_when_redelivered(default: Callable[[Any], None]) -> Callable[[Any], None]:
    """Python's hook for an exception it cannot raise (a weakref callback, a `__del__`): an `Interrupted` swallowed
    there is delivered again by the timer, so it is not printed as "Exception ignored … Traceback" (the user sees one
    line, `sotag CMD: interrupted`); any other exception goes to `default`."""

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, Interrupted) and _pending:
            return
        default(unraisable)

    return hook


def end_interrupted_runs(settings: TrackingSettings) -> list[str]:
    """Mark the runs that were open at the signal KILLED (parents included) and drop versions registered from them,
    through a client of `settings`' store (the store the command's runs were opened in).

    Returns the ids of the runs it marked. Further SIGTERM/SIGINT are ignored meanwhile (a few store calls).
    """
    in_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGTERM, signal.SIGINT)} if in_main else {}
    try:
        return _kill_open_runs(settings)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _kill_open_runs(settings: TrackingSettings) -> list[str]:
    ids = list(_open_at_signal)
    _open_at_signal.clear()
    while (run := mlflow.active_run()) is not None:  # a run started without `with` is still active
        ids.append(run.info.run_id)
        mlflow.end_run(KILLED)
    if not ids:
        return []
    client = settings.client()
    killed: list[str] = []
    pending = list(dict.fromkeys(ids))
    while pending:
        run_id = pending.pop(0)
        if run_id in killed:
            continue
        run = client.get_run(run_id)
        if run.info.status != KILLED:
            client.set_terminated(run_id, KILLED)
        killed.append(run_id)
        parent = run.data.tags.get(_PARENT_TAG)
        if parent and parent not in killed:
            pending.append(parent)
    for run_id in killed:
        for version in client.search_model_versions(f"run_id = '{run_id}'"):
            client.delete_model_version(version.name, version.version)
    return killed
