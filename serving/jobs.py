"""The gateway's background jobs (`/admin/retrain`): one at a time, with a bounded history.

The job itself is a function handed to the gateway by the `sotag` command layer (serving may not import
training): the same function `sotag retrain` runs, in this process, returning the command's exit code.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sotag.tagger.errors import ComponentFault, SotagError

# What a job's exit code means (sotag retrain's: 0 promoted, 3 champion kept, anything else failed).
OUTCOMES = {0: "promoted", 3: "kept"}
KEEP = 100  # finished jobs remembered for /admin/jobs/{id}; older ones are forgotten first

RetrainJob = Callable[[], int]


class JobRefused(Exception):
    """A job is already running (its id is the message)."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Jobs:
    """Runs one job at a time on a thread; remembers the running job and the last `keep` finished ones."""

    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._running: str | None = None

    def start(self, work: RetrainJob) -> dict[str, Any]:
        """Start `work` on a thread and return the job's record (status `running`); JobRefused if one runs."""
        with self._lock:
            if self._running is not None:
                raise JobRefused(self._running)
            job = {"id": uuid.uuid4().hex[:12], "status": "running", "started": _now(), "exit_code": None}
            self._jobs[job["id"]] = job
            self._running = job["id"]
            self._forget_oldest()
            snapshot = dict(job)
        threading.Thread(target=self._run, args=(job, work), daemon=True, name=f"job-{job['id']}").start()
        return snapshot

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else dict(job)

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def _run(self, job: dict[str, Any], work: RetrainJob) -> None:
        try:
            code, output = work(), ""
        except BaseException as exc:  # the job's failure is its outcome; the gateway keeps serving
            # The exit code the command would give: 2 bad input or registry state, 1 a component's fault.
            code = 2 if isinstance(exc, SotagError) and not isinstance(exc, ComponentFault) else 1
            output = f"{type(exc).__name__}: {exc}"[-4000:]
        with self._lock:
            job.update(status=OUTCOMES.get(code, "failed"), exit_code=code, output=output, finished=_now())
            self._running = None
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        while len(self._jobs) > self.keep:
            oldest = next((k for k in self._jobs if k != self._running), None)
            if oldest is None:
                return
            del self._jobs[oldest]
