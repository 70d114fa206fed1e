"""The registry as sotag uses it: aliases are the truth, every alias move is an event.

* `challenger` points at the newest trained version, `champion` at the served one.
* Each move of `champion` appends one event to the registered model's tags under its own
  key (`sotag.history.<time>.<id>`). No writer rewrites another's event (only its own intent, once:
  see below), so two writers cannot lose each other's history (a single JSON list would be a
  read-modify-write race).
* Each move also writes tags on the versions involved (promoted_at, reason, metrics, the
  previous champion), which the MLflow UI shows on the version page.
* Moves are guarded by a compare-and-set on the champion alias, made atomic on this machine by a
  lock file held only for the check, the alias write and the history event: the move is refused
  when the champion changed since the decision was made (the decision itself runs unlocked).
* Reading tells absence from outage: only MLflow's RESOURCE_DOES_NOT_EXIST means "not there"; any other
  failure of the tracking server is a `ComponentFault` (exit 1), so nothing is ever decided on a read
  that failed (a 503 on `@champion` is not "no champion yet").

Crash-safe moves (why an intent, and why this one)
---------------------------------------------------
A move is several writes to a server that can die between any two of them. MLflow has no transaction
across an alias and a tag, so the history is written around the alias move instead: the event is first
written as an *intent* (`"state": "pending"`, under its own new key), then the alias moves, then the same
key is rewritten as `"state": "done"` (the version tags are annotations after that). Whatever the crash
point, the registry says what happened:

* before the intent: nothing was written;
* between the intent and the alias move: a pending event whose version is not the champion;
* between the alias move and the confirmation: a pending event whose version *is* the champion.

`recover()` runs first in every registry command (promote, rollback, status, retrain's promote), under
the lock: a pending event whose version is @champion is completed (confirmed, the versions annotated,
`recovered` saying when and by whom); any other pending event is marked `abandoned` (the alias never
moved, or moved elsewhere since). The alias is the truth that decides, never the history; `status` lists
each recovery. Rewriting the pending key is no read-modify-write race: the key is new and only the
lock's holder (the mover, or later the recoverer) writes it, and every other event keeps its own key.
Only `done` events count in the lineage that `rollback` follows. A pending event seen while the lock is
held is a move in flight, not an interrupted one, which is why recovery takes the lock.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from infra.tracking import TrackingSettings
from registry.resolve import load_version
from tagger.errors import SotagError
from tagger.model import Tagger
from tagger.store_errors import TRACKING, fault, is_absent

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_PREFIX = "sotag.history."


class RegistryError(SotagError):
    """The registry is not in a state the command can act on."""


class RegistryConflict(RegistryError):
    """Another writer moved the champion while this command was deciding."""


class BrokenChampion(RegistryError):
    """@champion's files are there but fail their sha256 or do not load: it cannot be compared against.

    Nothing is promoted over it on the floor alone unless the operator asks (`--replace-broken-champion`);
    the command ends as a kept champion does (exit 3)."""

    exit_code = 3


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
    state: str = "done"  # "pending" (intent written, alias move not confirmed), "done", "abandoned"
    recovered: str = ""  # set when `Registry.recover` completed or abandoned an interrupted move
    key: str = ""

    def to_json(self) -> str:
        body = {k: v for k, v in self.__dict__.items() if k != "key"}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_tag(cls, key: str, value: str) -> Event:
        """An event from its tag; RegistryError naming the tag when the value is not one."""
        try:
            body = json.loads(value)
            return cls(key=key, **body)
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"registered model tag {key}: not a sotag history event ({exc})") from None


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
    def model(self) -> RegisteredModel | None:
        """The registered model (aliases and tags in one read); None only when the registry says it does not
        exist. Any other failure is a ComponentFault naming the tracking server."""
        try:
            return self.client.get_registered_model(self.name)
        except (MlflowException, OSError) as exc:
            if is_absent(exc):
                return None
            raise fault(TRACKING, f"reading registered model {self.name}", exc) from exc

    def alias(self, alias: str) -> str | None:
        """The version `alias` points at; None when the model or the alias does not exist.

        Read from the registered model's alias table rather than `get_model_version_by_alias`, whose
        missing alias MLflow reports as INVALID_PARAMETER_VALUE, indistinguishable from a bad request."""
        model = self.model()
        version = (model.aliases or {}).get(alias) if model is not None else None
        return None if version is None else str(version)

    def version(self, version: str) -> ModelVersion:
        try:
            return self.client.get_model_version(self.name, str(version))
        except (MlflowException, OSError) as exc:
            if is_absent(exc):
                raise RegistryError(f"{self.name} version {version}: not found in the registry") from exc
            raise fault(TRACKING, f"reading {self.name} version {version}", exc) from exc

    def versions(self) -> list[ModelVersion]:
        try:
            found = self.client.search_model_versions(f"name = '{self.name}'", max_results=10_000)
        except (MlflowException, OSError) as exc:
            raise fault(TRACKING, f"listing the versions of {self.name}", exc) from exc
        return sorted(found, key=lambda v: int(v.version))

    def load_tagger(self, version: str) -> Tagger:
        """Version `version` of this model, loaded from this registry's store through its client.

        Raises ComponentFault (could not fetch), ArtifactError (not there), BrokenModel (fetched, does not load)."""
        return load_version(self.client, self.name, str(version)).tagger

    def aliases(self) -> dict[str, list[str]]:
        """version -> aliases pointing at it."""
        model = self.model()
        if model is None:
            raise RegistryError(f"no registered model {self.name!r}: train one first (sotag train)")
        out: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            out.setdefault(str(version), []).append(alias)
        return out

    def history(self, model: RegisteredModel | None = None) -> list[Event]:
        """Every champion move, oldest first, pending and abandoned ones included (see `Event.state`)."""
        model = model or self.model()
        tags = (model.tags or {}) if model is not None else {}
        events = [Event.from_tag(k, v) for k, v in tags.items() if k.startswith(HISTORY_PREFIX)]
        return sorted(events, key=lambda e: (e.at, e.key))

    def lineage(self) -> list[str]:
        """The champions still to roll back to, oldest first; the last one is the champion by history.

        Promotions push, rollbacks pop: rolling back twice goes two champions back.
        """
        stack: list[str] = []
        for event in self.history():
            if event.state != "done":
                continue
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
            self._recover(by=action)
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
                state="pending",
                # Tag keys allow no '+': a compact UTC stamp keeps the keys sortable by time.
                key=f"{HISTORY_PREFIX}{moved_at.strftime('%Y%m%dT%H%M%S%f')}.{uuid.uuid4().hex[:8]}",
            )
            # Intent, move, confirmation: a crash between any two is repaired by `recover` (module docstring).
            self._write_event(event, f"recording the intent to move @{CHAMPION} to v{version}")
            try:
                self.client.set_registered_model_alias(self.name, CHAMPION, str(version))
            except (MlflowException, OSError) as exc:
                raise fault(TRACKING, f"moving @{CHAMPION} to v{version}", exc) from exc
            event = replace(event, state="done")
            self._write_event(event, f"confirming the move of @{CHAMPION} to v{version}")
        self._annotate(event)
        if mirror_stages:
            self.mirror_stages(str(version))
        return event

    def _write_event(self, event: Event, doing: str) -> None:
        try:
            self.client.set_registered_model_tag(self.name, event.key, event.to_json())
        except (MlflowException, OSError) as exc:
            raise fault(TRACKING, doing, exc) from exc

    def recover(self, by: str) -> list[Event]:
        """Complete or abandon every interrupted champion move (see the module docstring); return them as
        recorded now. `by` names the command that found them. Takes the lock: a move in flight is waited for."""
        with self.locked():
            return self._recover(by)

    def _recover(self, by: str) -> list[Event]:
        model = self.model()
        if model is None:
            return []
        champion = (model.aliases or {}).get(CHAMPION)
        champion = None if champion is None else str(champion)
        repaired = []
        for event in self.history(model):
            if event.state != "pending":
                continue
            now = datetime.now(UTC).isoformat(timespec="milliseconds")
            if event.version == champion:
                note = f"interrupted after the alias move; completed by sotag {by} at {now}"
                event = replace(event, state="done", recovered=note)
            else:
                where = f"v{champion}" if champion else "no version"
                note = f"interrupted before the alias move (@{CHAMPION} is {where}); abandoned by sotag {by} at {now}"
                event = replace(event, state="abandoned", recovered=note)
            self._write_event(event, f"recording the recovery of the interrupted move {event.key}")
            if event.state == "done":
                self._annotate(event)
            repaired.append(event)
        return repaired

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
