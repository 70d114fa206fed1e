"""Admin authentication: a bearer token compared in constant time, and a limit on failed attempts.

After `max_failures` failed attempts from one client within `window_s`, that client gets 429 (with
Retry-After) on every admin route until the window has passed, even with the right token: guessing
the token costs a window per few tries. Written by hand: one dict and a lock, no dependency. The token
itself is never logged or echoed.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable


class FailedAttempts:
    def __init__(self, max_failures: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and now - failures[0] >= self.window_s:
            failures.popleft()
        return failures

    def retry_after(self, client: str) -> int | None:
        """Seconds until `client` may try again, or None when it may try now."""
        with self._lock:
            now = self.clock()
            failures = self._recent(client, now)
            if len(failures) < self.max_failures:
                return None
            return max(1, math.ceil(self.window_s - (now - failures[-self.max_failures])))

    def failed(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            self._recent(client, now).append(now)
            if len(self._failures) > 10_000:  # bounded memory under a spray of clients
                stale = [c for c, f in self._failures.items() if not f or now - f[-1] >= self.window_s]
                for c in stale:
                    del self._failures[c]


def token_matches(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())
