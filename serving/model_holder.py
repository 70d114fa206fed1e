"""The model the gateway serves, and its atomic swap on `/reload`.

A request takes a reference to the current `ResolvedModel` once and uses it to the end, so a
swap never changes the model under a request in flight: old requests finish on the old
model, new ones get the new one. A reload that fails (missing version, sha256 mismatch,
unloadable file, no answer to a probe question) leaves the current model serving and reports why.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from sotag.infra.tracking import TrackingSettings
from sotag.registry.resolve import ResolvedModel, resolve


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    message: str
    previous_version: str | None
    version: str | None
    seconds: float


class ModelHolder:
    def __init__(self, uri: str, tracking: TrackingSettings, model: ResolvedModel | None = None):
        self.uri, self.tracking = uri, tracking
        self._model = model if model is not None else resolve(uri, tracking)
        self._reload_lock = threading.Lock()
        self.last_reload: dict | None = None  # what /health reports: the outcome of the last reload

    @property
    def current(self) -> ResolvedModel:
        return self._model

    def reload(self, uri: str | None = None) -> ReloadResult:
        result = self._reload(uri)
        self.last_reload = {
            "ok": result.ok,
            "message": result.message,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(result.seconds, 3),
        }
        return result

    def _reload(self, uri: str | None) -> ReloadResult:
        start = time.perf_counter()
        with self._reload_lock:
            old = self._model
            try:
                new = resolve(uri or self.uri, self.tracking)
                probe(new)
            except Exception as exc:  # any failure to fetch or load: the current model keeps serving
                return ReloadResult(
                    False, f"kept v{old.version}: {exc}", old.version, old.version, time.perf_counter() - start
                )
            self._model = new  # one reference assignment: atomic for readers
        return ReloadResult(
            True,
            f"now serving {new.name} v{new.version} (was v{old.version})",
            old.version,
            new.version,
            time.perf_counter() - start,
        )


PROBE = ("How do I read a file line by line?", "<p>I open the file and loop over it.</p>")


def probe(model: ResolvedModel) -> None:
    """A loaded model must score one question, every tag finite, before it serves (raises otherwise)."""
    if not np.isfinite(np.asarray(model.tagger.scores([PROBE[0]], [PROBE[1]]))).all():
        raise ValueError(f"v{model.version} answers the probe question with non-finite scores")
