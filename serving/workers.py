"""What the gateway's worker processes share: one folder (`gateway.run_dir`, default `<home>/run/gateway-<port>`).

- `metrics/`: prometheus_client's multiprocess files; `/metrics` on any worker answers the sum over all of them.
- `alias-nudge`: a file whose change tells every worker to look at the served aliases now. The worker that gets a
  webhook or an admin `/reload` touches it, so the others follow within a fraction of a second, not a poll interval.
- `jobs/`: the retrain jobs (serving.jobs), readable from every worker.

Written by hand: a touched file and its mtime are all the signalling this needs, across processes, with no broker.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def metrics(self) -> Path:
        return self.path / "metrics"

    @property
    def nudge_file(self) -> Path:
        return self.path / "alias-nudge"

    @property
    def jobs(self) -> Path:
        return self.path / "jobs"

    def prepare(self) -> None:
        """At the gateway's start, before its workers: a fresh metrics folder (counts start at 0, as with one
        process), the others created if missing."""
        shutil.rmtree(self.metrics, ignore_errors=True)
        for folder in (self.metrics, self.jobs):
            folder.mkdir(parents=True, exist_ok=True)


class Nudge:
    """Touch a shared file to ask every worker to act now; `pending()` says whether someone else touched it."""

    def __init__(self, path: Path):
        self.path = path
        self._seen = self._mtime()

    def _mtime(self) -> int:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return 0

    def touch(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a"):
            os.utime(self.path)
        self._seen = self._mtime()  # our own touch is not news to us

    def pending(self) -> bool:
        mtime = self._mtime()
        if mtime == self._seen:
            return False
        self._seen = mtime
        return True
