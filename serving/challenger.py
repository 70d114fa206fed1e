"""@challenger beside the champion, for shadow and canary traffic (serving.traffic).

The slot follows `models:/<name>@challenger` as the gateway follows the alias it serves (serving.alias_watch: its
poll and nudges check the slot too): a new version is loaded, verified and probed before it is used, and a version
that fails is not tried again until the alias moves; when the alias is gone (the challenger was promoted or
archived) the slot is empty and every question goes to the champion, unshadowed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sotag.infra.tracking import TrackingSettings
from sotag.registry.resolve import ResolvedModel, pin, resolve
from sotag.serving.model_holder import probe
from sotag.tagger.errors import SotagError

log = logging.getLogger("sotag.gateway")


class ChallengerSlot:
    def __init__(
        self,
        uri: str,
        tracking: TrackingSettings,
        on_change: Callable[[ResolvedModel | None], None] | None = None,
    ):
        self.uri, self.tracking, self.on_change = uri, tracking, on_change
        self._model: ResolvedModel | None = None
        self._refused: str | None = None
        self._lock = threading.Lock()
        self.last: dict[str, Any] | None = None

    @property
    def current(self) -> ResolvedModel | None:
        return self._model

    def check(self, trigger: str = "poll") -> str:
        """Load the version the alias names now if it is not the one held; never raises. Returns the outcome:
        unchanged, loaded, absent (no such alias), refused, skipped (refused before), error (could not ask)."""
        with self._lock:
            held = self._model.version if self._model is not None else None
            try:
                wanted: str | None = pin(self.uri, self.tracking).version
            except SotagError:  # the registry says there is no @challenger
                wanted = None
            except Exception as exc:  # the registry could not answer: keep what is held
                return self._record(trigger, "error", None, f"cannot read {self.uri}: {exc}")
            if wanted == held:
                return self._record(trigger, "unchanged" if held else "absent", wanted, self._describe())
            if wanted is None:
                self._set(None)
                return self._record(trigger, "absent", None, f"{self.uri} names no version; v{held} is unloaded")
            if wanted == self._refused and trigger == "poll":
                return self._record(trigger, "skipped", wanted, f"v{wanted} was refused before")
            try:
                model = resolve(self.uri, self.tracking)
                probe(model)
            except Exception as exc:
                self._refused = wanted
                log.warning("challenger: refused v%s: %s", wanted, exc)
                return self._record(trigger, "refused", wanted, f"refused v{wanted}: {exc}")
            self._refused = None
            self._set(model)
            return self._record(trigger, "loaded", wanted, self._describe())

    def _set(self, model: ResolvedModel | None) -> None:
        self._model = model  # one reference assignment: atomic for readers
        if self.on_change is not None:
            self.on_change(model)

    def _describe(self) -> str:
        model = self._model
        return f"holding {model.name} v{model.version}" if model is not None else f"{self.uri}: none"

    def _record(self, trigger: str, outcome: str, wanted: str | None, message: str) -> str:
        self.last = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "trigger": trigger,
            "outcome": outcome,
            "registry_version": wanted,
            "message": message,
        }
        return outcome

    def status(self) -> dict[str, Any]:
        model = self._model
        return {"uri": self.uri, "version": model.version if model else None, "last_check": self.last}
