"""The gateway's background jobs (`/admin/retrain`): one at a time, with a bounded history.

A job is `sotag retrain` in a child process (sotag.infra.retrain_job, the one way a component starts a retrain;
the drift job's `--on-alert retrain` starts it the same way), with the gateway's settings passed down: no model is
fitted in the web process. A thread waits for the process and records its outcome: the exit code (0 promoted,
3 kept, anything else failed), its last line and the tail of its output.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sotag.infra.retrain_job import OUTCOMES, RetrainProcess

KEEP = 100  # finished jobs remembered for /admin/jobs/{id}; older ones are forgotten first

# Starts the job's process (the gateway: `RetrainProcess(settings)`); raising OSError when it cannot.
RetrainLauncher = Callable[[], RetrainProcess]

__all__ = ["KEEP", "OUTCOMES", "JobRefused", "Jobs", "RetrainLauncher"]


class JobRefused(Exception):
    """A job is already running (its id is the message)."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Jobs:
    """Runs one job's process at a time; remembers the running job and the last `keep` finished ones."""

    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._running: str | None = None
        self._process: RetrainProcess | None = None

    def start(self, launch: RetrainLauncher) -> dict[str, Any]:
        """Start the job's process and return its record (status `running`, its pid); JobRefused if one runs.
        A process that cannot start is a finished job, `failed` with exit code 1."""
        with self._lock:
            if self._running is not None:
                raise JobRefused(self._running)
            job: dict[str, Any] = {
                "id": uuid.uuid4().hex[:12], "status": "running", "started": _now(), "exit_code": None, "pid": None
            }  # fmt: skip
            self._jobs[job["id"]] = job
            self._running = job["id"]
            self._forget_oldest()
            try:
                self._process = process = launch()
            except OSError as exc:  # no interpreter, no fork: the job failed, the gateway keeps serving
                self._finish(job, 1, f"cannot start sotag retrain: {exc}", f"cannot start sotag retrain: {exc}")
                return dict(job)
            job["pid"] = process.pid
            snapshot = dict(job)
        threading.Thread(target=self._wait, args=(job, process), daemon=True, name=f"job-{job['id']}").start()
        return snapshot

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else dict(job)

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def close(self, timeout_s: float = 30.0) -> None:
        """At shutdown: stop a running job's process (SIGTERM: it ends its runs KILLED, the registry unchanged)."""
        with self._lock:
            process = self._process if self._running is not None else None
        if process is not None:
            process.stop(timeout_s)

    def _wait(self, job: dict[str, Any], process: RetrainProcess) -> None:
        try:
            result = process.wait()
            code, last_line, output = result.exit_code, result.last_line, result.output
        except Exception as exc:  # reading its output failed: the process's outcome is unknown, so it failed
            code, last_line = 1, f"{type(exc).__name__}: {exc}"
            output = last_line
        with self._lock:
            self._finish(job, code, last_line, output)

    def _finish(self, job: dict[str, Any], code: int, last_line: str, output: str) -> None:
        """Record the outcome (the caller holds the lock)."""
        job.update(
            status=OUTCOMES.get(code, "failed"), exit_code=code, last_line=last_line, output=output, finished=_now()
        )
        self._running, self._process = None, None
        self._forget_oldest()

    def _forget_oldest(self) -> None:
        while len(self._jobs) > self.keep:
            oldest = next((k for k in self._jobs if k != self._running), None)
            if oldest is None:
                return
            del self._jobs[oldest]
