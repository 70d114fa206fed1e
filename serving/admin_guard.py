"""Admin authentication: a bearer token compared in constant time, and a limit on failed attempts.

After `max_failures` failed attempts from one client within `window_s`, that client gets 429 (with
Retry-After) on every admin route until the window has passed, even with the right token: guessing
the token costs a window per few tries. Written by hand: one dict and a lock, no dependency. The token
itself is never logged or echoed. With several gateway workers the failures are kept in one SQLite file
in their shared folder (`path`), so the limit is the same whichever worker a client reaches.
"""

from __future__ import annotations

import math
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path


class FailedAttempts:
    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 60.0,
        clock: Callable[[], float] | None = None,
        path: Path | None = None,
    ):
        # Shared across processes: wall-clock time (monotonic clocks are per boot, fine, but keep one meaning).
        self.max_failures, self.window_s = max_failures, window_s
        self.clock = clock or (time.time if path is not None else time.monotonic)
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._db() as db:
                db.execute("CREATE TABLE IF NOT EXISTS failures (client TEXT NOT NULL, at REAL NOT NULL)")
                db.execute("CREATE INDEX IF NOT EXISTS failures_client ON failures (client, at)")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def _shared_recent(self, client: str, now: float) -> list[float]:
        with self._db() as db:
            rows = db.execute(
                "SELECT at FROM failures WHERE client = ? AND at > ? ORDER BY at", (client, now - self.window_s)
            ).fetchall()
        return [r[0] for r in rows]

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and now - failures[0] >= self.window_s:
            failures.popleft()
        return failures

    def retry_after(self, client: str) -> int | None:
        """Seconds until `client` may try again, or None when it may try now."""
        with self._lock:
            now = self.clock()
            failures = self._shared_recent(client, now) if self.path else self._recent(client, now)
            if len(failures) < self.max_failures:
                return None
            return max(1, math.ceil(self.window_s - (now - failures[-self.max_failures])))

    def failed(self, client: str) -> None:
        if self.path is not None:
            now = self.clock()
            with self._db() as db:
                db.execute("INSERT INTO failures VALUES (?, ?)", (client, now))
                db.execute("DELETE FROM failures WHERE at <= ?", (now - self.window_s,))
            return
        with self._lock:
            now = self.clock()
            self._recent(client, now).append(now)
            if len(self._failures) > 10_000:  # bounded memory under a spray of clients
                stale = [c for c, f in self._failures.items() if not f or now - f[-1] >= self.window_s]
                for c in stale:
                    del self._failures[c]


def token_matches(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())
