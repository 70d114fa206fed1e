"""The gateway's background jobs (`/admin/retrain`): one at a time, with a bounded history.

A job is `sotag retrain` in a child process (sotag.infra.retrain_job, the one way a component starts a retrain;
the drift job's `--on-alert retrain` starts it the same way), with the gateway's settings passed down: no model is
fitted in the web process. A thread waits for the process and records its outcome: the exit code (0 promoted,
3 kept, anything else failed), its last line and the tail of its output.

With several gateway workers (`directory`: the workers' shared `jobs/` folder, serving.workers) "one at a time"
holds across them: the worker that starts a job holds an exclusive lock on `jobs/running.lock` until it ends, and
each job's record is also written to `jobs/<id>.json`, so `/admin/jobs/{id}` answers on every worker. A job whose
worker died while it ran (the lock is free, the record still says running) is reported failed, saying so.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
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

    def __init__(self, keep: int = KEEP, directory: Path | None = None):
        self.keep = keep
        self.directory = directory
        self._lock_fd: int | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
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
            self._take_shared_lock()
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
            self._write(job)
            snapshot = dict(job)
        threading.Thread(target=self._wait, args=(job, process), daemon=True, name=f"job-{job['id']}").start()
        return snapshot

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                return dict(job)
        return self._read(job_id)

    # Several workers: the shared lock and records (see the module docstring).
    def _take_shared_lock(self) -> None:
        if self.directory is None:
            return
        fd = os.open(self.directory / "running.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            running = (self.directory / "running.lock.id").read_text().strip() if self._has_running_id() else "?"
            raise JobRefused(running) from None
        self._lock_fd = fd

    def _has_running_id(self) -> bool:
        return self.directory is not None and (self.directory / "running.lock.id").is_file()

    def _release_shared_lock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _write(self, job: dict[str, Any]) -> None:
        if self.directory is None or not job.get("id"):
            return
        if job["status"] == "running":
            (self.directory / "running.lock.id").write_text(job["id"])
        tmp = self.directory / f"{job['id']}.json.tmp"
        tmp.write_text(json.dumps(job))
        tmp.replace(self.directory / f"{job['id']}.json")

    def _read(self, job_id: str) -> dict[str, Any] | None:
        if self.directory is None or not job_id.isalnum():
            return None
        try:
            job = json.loads((self.directory / f"{job_id}.json").read_text())
        except (OSError, ValueError):
            return None
        if job.get("status") == "running" and self._lock_is_free():
            job.update(status="failed", exit_code=None, last_line="the gateway worker running this job stopped")
        return job

    def _lock_is_free(self) -> bool:
        fd = os.open(self.directory / "running.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # closing releases a lock taken here
        return True

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
        self._write(job)
        self._release_shared_lock()
        self._forget_oldest()

    def _forget_oldest(self) -> None:
        while len(self._jobs) > self.keep:
            oldest = next((k for k in self._jobs if k != self._running), None)
            if oldest is None:
                return
            del self._jobs[oldest]
