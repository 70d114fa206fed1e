"""The one way sotag starts a retrain from another component: `sotag retrain` as a child process.

The gateway's /admin/retrain and the drift job's `--on-alert retrain` both start it here, with the settings of the
process that starts it passed down (`child_environment(..., every_setting=True)`: every setting as a variable,
whatever the child's working folder holds), so no model is ever fitted in a web process and both report the same
outcome: the exit code (0 promoted, 3 champion kept, anything else failed) and the command's own last line.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from sotag.settings import Settings, child_environment

# What `sotag retrain`'s exit code means: 0 promoted, 3 the champion kept; anything else failed (2 bad input or
# registry state, 1 a component's fault, 130 / 143 interrupted).
OUTCOMES = {0: "promoted", 3: "kept"}
OUTPUT_KEPT = 4000  # characters of the command's output a result keeps


def retrain_command(args: Sequence[str] = ()) -> list[str]:
    """`sotag retrain ARGS` run by this interpreter (the same installation, whatever PATH holds)."""
    return [sys.executable, "-m", "sotag", "retrain", *args]


@dataclass(frozen=True)
class RetrainResult:
    exit_code: int
    output: str  # what the command said (its stderr, or stdout and stderr together), the last OUTPUT_KEPT characters

    @property
    def status(self) -> str:
        return OUTCOMES.get(self.exit_code, "failed")

    @property
    def last_line(self) -> str:
        """The command's own one-line verdict (`sotag retrain: failed: tracking server ...`) where it printed one,
        else its last line."""
        said = [line.strip() for line in self.output.splitlines() if line.strip()]
        own = [line for line in said if line.startswith("sotag retrain:")]
        return (own or said or [""])[-1]


class RetrainProcess:
    """`sotag retrain` started as a child process with `settings` (None: this process's environment only).

    `echo`: its standard output goes through to this process's as it runs (the drift job), and only its standard
    error is kept; else both are kept together (the gateway's job record). `wait()` gives the result."""

    def __init__(self, settings: Settings | None, args: Sequence[str] = (), echo: bool = False):
        self.command = retrain_command(args)
        self.process = subprocess.Popen(
            self.command,
            env=child_environment(settings, every_setting=True),
            stdin=subprocess.DEVNULL,
            stdout=None if echo else subprocess.PIPE,
            stderr=subprocess.PIPE if echo else subprocess.STDOUT,
            text=True,
            errors="replace",
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self) -> RetrainResult:
        """Wait for the command to end (reading its output meanwhile, so a full pipe never blocks it)."""
        out, err = self.process.communicate()
        return RetrainResult(self.process.returncode, ((err if out is None else out) or "")[-OUTPUT_KEPT:])

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (the command ends its runs KILLED and leaves the registry as it was), then wait."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()


def run_retrain(settings: Settings | None, args: Sequence[str] = (), echo: bool = False) -> RetrainResult:
    """`sotag retrain ARGS` with `settings`, to its end."""
    return RetrainProcess(settings, args, echo=echo).wait()
