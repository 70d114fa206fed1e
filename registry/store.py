"""The registry as sotag uses it: aliases are the truth, every alias move is an event.

* `challenger` points at the newest trained version, `champion` at the served one.
* Each move of `champion` appends one event to the registered model's tags under its own
  key (`sotag.history.<time>.<id>`). Events are never rewritten, so two writers cannot lose
  each other's history (a single JSON list would be a read-modify-write race).
* Each move also writes tags on the versions involved (promoted_at, reason, metrics, the
  previous champion), which the MLflow UI shows on the version page.
* Moves are guarded by a compare-and-set on the champion alias, made atomic on this machine by a
  lock file held only for the check, the alias write and the history event: the move is refused
  when the champion changed since the decision was made (the decision itself runs unlocked).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from infra.tracking import TrackingSettings
from registry.resolve import load_version
from tagger.errors import SotagError
from tagger.model import Tagger

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_PREFIX = "sotag.history."


class RegistryError(SotagError):
    """The registry is not in a state the command can act on."""


class RegistryConflict(RegistryError):
    """Another writer moved the champion while this command was deciding."""


@dataclass(frozen=True)
class Event:
    """One move of the champion alias."""

    action: str  # "promote" or "rollback"
    version: str  # the new champion
    previous: str | None  # the champion before the move
    at: str  # ISO time, UTC
    by: str
    reason: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    key: str = ""

    def to_json(self) -> str:
        body = {k: v for k, v in self.__dict__.items() if k != "key"}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_tag(cls, key: str, value: str) -> Event:
        return cls(key=key, **json.loads(value))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Registry:
    """Aliases, history and version tags of one registered model."""

    def __init__(self, client: MlflowClient, name: str, store_uri: str, lock_dir: Path, lock_timeout_s: float = 600.0):
        self.client = client
        self.name = name
        # One lock file per registry store and model: promotions elsewhere do not wait on this one.
        digest = hashlib.sha256(f"{store_uri}|{name}".encode()).hexdigest()[:16]
        lock_dir.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(lock_dir / f"registry-{digest}.lock"), timeout=lock_timeout_s)

    # -- reading --------------------------------------------------------------------
    def alias(self, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException:
            return None

    def version(self, version: str) -> ModelVersion:
        try:
            return self.client.get_model_version(self.name, str(version))
        except MlflowException as exc:
            raise RegistryError(f"{self.name} version {version}: not found in the registry") from exc

    def versions(self) -> list[ModelVersion]:
        found = self.client.search_model_versions(f"name = '{self.name}'", max_results=10_000)
        return sorted(found, key=lambda v: int(v.version))

    def load_tagger(self, version: str) -> Tagger:
        """Version `version` of this model, loaded from this registry's store through its client."""
        return load_version(self.client, self.name, str(version)).tagger

    def aliases(self) -> dict[str, list[str]]:
        """version -> aliases pointing at it."""
        try:
            model = self.client.get_registered_model(self.name)
        except MlflowException as exc:
            raise RegistryError(f"no registered model {self.name!r}: train one first (sotag train)") from exc
        out: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            out.setdefault(str(version), []).append(alias)
        return out

    def history(self) -> list[Event]:
        """Every champion move, oldest first."""
        model = self.client.get_registered_model(self.name)
        events = [Event.from_tag(k, v) for k, v in (model.tags or {}).items() if k.startswith(HISTORY_PREFIX)]
        return sorted(events, key=lambda e: (e.at, e.key))

    def lineage(self) -> list[str]:
        """The champions still to roll back to, oldest first; the last one is the champion by history.

        Promotions push, rollbacks pop: rolling back twice goes two champions back.
        """
        stack: list[str] = []
        for event in self.history():
            if event.action == "rollback":
                if stack:
                    stack.pop()
                if not stack or stack[-1] != event.version:
                    stack.append(event.version)
            elif not stack or stack[-1] != event.version:
                stack.append(event.version)
        return stack

    # -- writing --------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise the compare-and-set of champion moves from this machine (the alias check covers the rest)."""
        try:
            with self._lock:
                yield
        except Timeout as exc:
            raise RegistryConflict(
                f"another promote/rollback holds {self._lock.lock_file} for over {self._lock.timeout:.0f} s"
            ) from exc

    def move_champion(
        self,
        version: str,
        expected_current: str | None,
        action: str,
        reason: str,
        metrics: dict[str, dict[str, float]] | None = None,
        mirror_stages: bool = False,
    ) -> Event:
        """Point `champion` at `version` if it still points at `expected_current`; record the move.

        The lock covers only the compare-and-set and the history event (a few registry calls), never a
        decision: raises RegistryConflict when the champion moved since `expected_current` was read, and
        the caller judges again. The version tags and the legacy stage are annotations written after it.
        """
        with self.locked():
            current = self.alias(CHAMPION)
            if current != expected_current:
                raise RegistryConflict(
                    f"champion moved to v{current} while this {action} was deciding against "
                    f"v{expected_current}; nothing changed, run it again"
                )
            moved_at = datetime.now(UTC)
            event = Event(
                action=action,
                version=str(version),
                previous=current,
                at=moved_at.isoformat(timespec="milliseconds"),
                by=_user(),
                reason=reason,
                metrics=metrics or {},
                # Tag keys allow no '+': a compact UTC stamp keeps the keys sortable by time.
                key=f"{HISTORY_PREFIX}{moved_at.strftime('%Y%m%dT%H%M%S%f')}.{uuid.uuid4().hex[:8]}",
            )
            self.client.set_registered_model_alias(self.name, CHAMPION, str(version))
            self.client.set_registered_model_tag(self.name, event.key, event.to_json())
        self._annotate(event)
        if mirror_stages:
            self.mirror_stages(str(version))
        return event

    def _annotate(self, event: Event) -> None:
        """The move on the versions' pages: when, why, with which metrics, and who was demoted."""
        tags = {
            "promoted_at" if event.action == "promote" else "restored_at": event.at,
            f"{event.action}_reason": event.reason,
            "previous_champion": event.previous or "",
        }
        if event.metrics:
            tags["promotion_metrics"] = json.dumps(event.metrics, sort_keys=True)
        self.tag_version(event.version, tags)
        if event.previous and event.previous != event.version:
            demoted = {"demoted_at": event.at, "demoted_for": event.version, "demoted_by": event.action}
            self.tag_version(event.previous, demoted)

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, str(version), key, value)

    def mirror_stages(self, champion: str) -> None:
        """Legacy UI: champion in `Production`, every other Production version `Archived`.

        MLflow 3 deprecates stages but still honours the call; aliases stay the source of truth.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.client.transition_model_version_stage(
                self.name, champion, "Production", archive_existing_versions=True
            )


def open_registry(settings: TrackingSettings, model_name: str) -> Registry:
    """The registry of `model_name` in the store the settings name (a client of its own; no process-wide state)."""
    return Registry(settings.client(), model_name, settings.tracking_uri, settings.lock_dir)
