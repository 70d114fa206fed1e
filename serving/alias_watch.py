"""The gateway follows the alias it serves: when `@champion` moves, the new version is swapped in.

`AliasWatch.check()` reads the version the alias names now (one registry read, nothing downloaded) and,
when it differs from the served one, swaps through `ModelHolder.reload` exactly as `/reload` does:
requests in flight finish on the old model, and a version that fails to load, to verify (sha256) or to
answer a probe question is refused while the old one keeps serving. A refused version is not tried again
by the poll until the alias names another version (the admin `/reload` and a webhook still try it).

The poll (`start()`) runs `check()` every `poll_s` seconds on a daemon thread; the MLflow webhook route
calls `check()` at once. The interval is the caller's setting (GatewayConfig.reload_poll_s), never read here.
With several workers, the worker that got the webhook touches a shared `Nudge` (serving.workers) and every other
worker's poll thread, which looks at it every `NUDGE_TICK_S`, checks at once too. `followers` are checked with
the alias (the @challenger that shadow and canary use, serving.challenger).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sotag.serving.model_holder import ModelHolder
from sotag.serving.workers import Nudge

log = logging.getLogger("sotag.gateway")

Outcome = Literal["unchanged", "swapped", "refused", "skipped", "error"]
NUDGE_TICK_S = 0.25  # how often a worker looks at the shared nudge file (one stat call)


@dataclass(frozen=True)
class AliasCheck:
    """One look at the alias. `registry_version`: what the alias named (None: the read failed);
    `served_version`: what the gateway serves after the check; `seconds`: the check's duration."""

    at: str  # ISO 8601, UTC
    outcome: Outcome
    trigger: str  # "poll", "webhook"
    registry_version: str | None
    served_version: str | None
    message: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class AliasWatch:
    """Follow `holder.uri`'s alias. `read_version()` returns the version the alias names now (raises on failure).

    `on_check` is called with every check (the app counts them in /metrics)."""

    def __init__(
        self,
        holder: ModelHolder,
        read_version: Callable[[], str],
        poll_s: float,
        on_check: Callable[[AliasCheck], None] | None = None,
        nudge: Nudge | None = None,
        followers: list[Callable[[str], object]] | None = None,
    ):
        self.holder, self.read_version, self.poll_s = holder, read_version, poll_s
        self.on_check = on_check
        self.nudge = nudge
        self.followers = list(followers or [])
        self.last: AliasCheck | None = None
        self._refused: str | None = None  # the version the last swap refused: not polled again
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def polling(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def check(self, trigger: str = "poll", retry_refused: bool = False) -> AliasCheck:
        """Swap to the version the alias names now if it is not the served one; never raises."""
        with self._lock:
            start = time.perf_counter()
            served = self.holder.current.version
            try:
                wanted = str(self.read_version())
            except Exception as exc:  # the registry is away: keep serving, say so, try at the next poll
                return self._record(trigger, "error", None, served, f"cannot read the alias: {exc}", start)
            if wanted == served:
                self._refused = None
                return self._record(trigger, "unchanged", wanted, served, f"serving v{served}", start)
            if wanted == self._refused and not retry_refused:
                message = f"v{wanted} was refused before; still serving v{served} (POST /reload to try it again)"
                return self._record(trigger, "skipped", wanted, served, message, start)
            result = self.holder.reload()
            now_served = self.holder.current.version
            if result.ok:
                self._refused = None
                return self._record(trigger, "swapped", wanted, now_served, result.message, start)
            self._refused = wanted
            log.warning("alias watch: refused v%s: %s", wanted, result.message)
            return self._record(trigger, "refused", wanted, now_served, f"refused v{wanted}: {result.message}", start)

    def _record(
        self, trigger: str, outcome: Outcome, wanted: str | None, served: str | None, message: str, start: float
    ) -> AliasCheck:
        check = AliasCheck(
            at=datetime.now(UTC).isoformat(timespec="seconds"),
            outcome=outcome,
            trigger=trigger,
            registry_version=wanted,
            served_version=served,
            message=message,
            seconds=round(time.perf_counter() - start, 3),
        )
        self.last = check
        if self.on_check is not None:
            self.on_check(check)
        return check

    def start(self) -> None:
        """Poll every `poll_s` seconds (and at once when nudged) until `stop()`; nothing when `poll_s` is 0 and
        there is no nudge to watch."""
        if (self.poll_s <= 0 and self.nudge is None) or self.polling:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sotag-alias-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        tick = NUDGE_TICK_S if self.nudge is not None else self.poll_s
        last = time.monotonic()
        while not self._stop.wait(tick):
            if self.nudge is not None and self.nudge.pending():
                self.check_all("nudge", retry_refused=True)
                last = time.monotonic()
            elif self.poll_s > 0 and time.monotonic() - last >= self.poll_s:
                self.check_all("poll")
                last = time.monotonic()

    def check_all(self, trigger: str, retry_refused: bool = False) -> AliasCheck:
        """`check()`, then the followers' checks (each guarded: a follower's failure never stops the watch)."""
        check = self.check(trigger, retry_refused)
        for follow in self.followers:
            try:
                follow(trigger)
            except Exception:  # a follower reports its own failures; the watch goes on
                log.exception("alias watch: a follower's check failed")
        return check

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def status(self) -> dict[str, Any]:
        """What /health shows: the interval (0: off) and the last check."""
        return {"poll_s": self.poll_s, "polling": self.polling, "last_check": self.last and self.last.as_dict()}
