"""The registry as sotag uses it: aliases are the truth, every alias move is an event.

* `challenger` points at the newest trained version, `champion` at the served one.
* Each move of `champion` appends one event to the history: its own MLflow run in the experiment
  `<model>-registry-history` (registry/history.py says why a run). No writer rewrites another's event (only
  its own intent, once: see below), so two writers cannot lose each other's history (a single JSON list
  would be a read-modify-write race). The registered model's own tag table stays empty for people.
* Each move also rewrites the description of the versions involved, one sentence stating the decision
  ("Champion since … UTC, promoted over v2 by …: <reason>", "Champion until … UTC, replaced by v3 …", "Rolled
  back on …"; a refused challenger's is "Kept out of @champion …", written by `lifecycle.record_verdict`),
  which the MLflow UI shows beside each version.
* Moves are guarded by a compare-and-set on the champion alias, made atomic by a lock held only for the
  check, the alias write and the history event: the move is refused when the champion changed since the
  decision was made (the decision itself runs unlocked). On the server profile the lock is a PostgreSQL
  advisory lock every promoting host sees (`promote.lock_url`, by default the backend store); on the embedded
  profile a lock file on this machine (registry/locks.py).
* Reading tells absence from outage: only MLflow's RESOURCE_DOES_NOT_EXIST means "not there"; any other
  failure of the tracking server is a `ComponentFault` (exit 1), so nothing is ever decided on a read
  that failed (a 503 on `@champion` is not "no champion yet").

Crash-safe moves (why an intent, and why this one)
---------------------------------------------------
A move is several writes to a server that can die between any two of them. MLflow has no transaction
across an alias and a tag, so the history is written around the alias move instead: the event is first
written as an *intent* (`"state": "pending"`, a new run, RUNNING), then the alias moves, then the same
run's record is rewritten as `"state": "done"` (FINISHED; the version descriptions are annotations after
that). Whatever the crash point, the registry says what happened:

* before the intent: nothing was written;
* between the intent and the alias move: a pending event whose version is not the champion;
* between the alias move and the confirmation: a pending event whose version *is* the champion.

`recover()` runs first in every registry command (promote, rollback, status, retrain's promote), under
the lock: a pending event whose version is @champion is completed (confirmed, the versions described,
`recovered` saying when and by whom); any other pending event is marked `abandoned` (the alias never
moved, or moved elsewhere since). The alias is the truth that decides, never the history; `status` lists
each recovery. Rewriting the pending run is no read-modify-write race: the run is new and only the
lock's holder (the mover, or later the recoverer) writes it, and every other event keeps its own run.
Recovery also moves the events a registry written before still holds as `sotag.history.*` model tags into
runs (`HistoryLog.migrate`), and finishes a run whose record says done but whose status a crash left RUNNING.
Only `done` events count in the lineage that `rollback` follows. A pending event seen while the lock is
held is a move in flight, not an interrupted one, which is why recovery takes the lock.
"""

from __future__ import annotations

import getpass
import uuid
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sotag.infra.store_errors import TRACKING, fault, is_absent
from sotag.infra.tracking import TrackingSettings
from sotag.registry.card import read_card, write_card
from sotag.registry.history import HISTORY_PREFIX, Event, HistoryLog
from sotag.registry.locks import AdvisoryRegistryLock, FileRegistryLock, LockTimeout
from sotag.registry.resolve import load_version
from sotag.tagger.errors import SotagError
from sotag.tagger.model import Tagger

CHAMPION = "champion"
CHALLENGER = "challenger"
__all__ = ["CHALLENGER", "CHAMPION", "Event", "Registry", "RegistryConflict", "RegistryError", "open_registry"]


class RegistryError(SotagError):
    """The registry is not in a state the command can act on."""


class RegistryConflict(RegistryError):
    """Another writer moved the champion while this command was deciding."""


class BrokenChampion(RegistryError):
    """@champion's files are there but fail their sha256 or do not load: it cannot be compared against.

    Nothing is promoted over it on the floor alone unless the operator asks (`--replace-broken-champion`);
    the command ends as a kept champion does (exit 3)."""

    exit_code = 3


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Registry:
    """Aliases, history and version tags of one registered model."""

    def __init__(
        self,
        client: MlflowClient,
        name: str,
        store_uri: str,
        lock_dir: Path,
        lock_timeout_s: float = 600.0,
        artifact_root: str | None = None,
        lock_url: str | None = None,
    ):
        self.client = client
        self.name = name
        self._artifact_root = artifact_root  # where the history experiment's (empty) artifact folder goes
        # One lock per registry store and model: promotions elsewhere do not wait on this one. On a database every
        # promoting host sees (the server profile's PostgreSQL), else a lock file on this machine (registry/locks.py).
        self._lock: FileRegistryLock | AdvisoryRegistryLock = (
            AdvisoryRegistryLock(lock_url, name, lock_timeout_s)
            if lock_url
            else FileRegistryLock(lock_dir, store_uri, name, lock_timeout_s)
        )

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

    @property
    def log(self) -> HistoryLog:
        """The history runs, through this registry's client."""
        return HistoryLog(self.client, self.name, self._artifact_root)

    def history(self, model: RegisteredModel | None = None) -> list[Event]:
        """Every champion move, oldest first, pending and abandoned ones included (see `Event.state`); none while
        the registered model does not exist."""
        model = model or self.model()
        return [] if model is None else self.log.read(model)

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
    def locked(self, action: str = "promote") -> Iterator[None]:
        """Serialise the compare-and-set of champion moves (the alias check covers the rest): across every host on
        the server profile (a PostgreSQL advisory lock), on this machine otherwise (a lock file). RegistryConflict
        saying who holds it when it stays taken past the timeout; ComponentFault when the lock database fails."""
        with ExitStack() as stack:
            try:
                stack.enter_context(self._lock.hold(action))
            except LockTimeout as exc:
                raise RegistryConflict(str(exc)) from None
            yield

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
        with self.locked(action):
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
            event = self.log.append(event, f"recording the intent to move @{CHAMPION} to v{version}")
            try:
                self.client.set_registered_model_alias(self.name, CHAMPION, str(version))
            except (MlflowException, OSError) as exc:
                self._abandon_if_unmoved(event, exc)
                raise fault(TRACKING, f"moving @{CHAMPION} to v{version}", exc) from exc
            event = replace(event, state="done")
            self.log.update(event, f"confirming the move of @{CHAMPION} to v{version}")
        self._annotate(event)
        if mirror_stages:
            self.mirror_stages(str(version))
        return event

    def _abandon_if_unmoved(self, event: Event, exc: BaseException) -> None:
        """The alias move failed: when the registry answers that @champion did not move (a 403, a refused write),
        the intent is abandoned now rather than left for the next command; when it cannot tell (the server died),
        the intent stays pending and `recover` decides. Best effort: its own failure is no news."""
        try:
            if self.alias(CHAMPION) == event.version:
                return
            note = f"the alias move failed ({str(exc).splitlines()[0][:200]}); abandoned by sotag {event.action}"
            self.log.update(replace(event, state="abandoned", recovered=note), f"abandoning {event.key}")
        except SotagError:
            pass

    def recover(self, by: str) -> list[Event]:
        """Complete or abandon every interrupted champion move (see the module docstring); return them as
        recorded now. `by` names the command that found them. Takes the lock: a move in flight is waited for."""
        with self.locked(by):
            return self._recover(by)

    def _recover(self, by: str) -> list[Event]:
        model = self.model()
        if model is None:
            return []
        if self.log.migrate(model):  # a registry written before: its history tags become runs
            model = self.model()
        champion = (model.aliases or {}).get(CHAMPION)
        champion = None if champion is None else str(champion)
        repaired = []
        history = self.history(model)
        self.log.align_status(history)
        for event in history:
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
            self.log.update(event, f"recording the recovery of the interrupted move {event.key}")
            if event.state == "done":
                self._annotate(event)
            repaired.append(event)
        return repaired

    def _annotate(self, event: Event) -> None:
        """The move in the versions' descriptions, one sentence each: the new champion's and the one it replaced."""
        when = f"{event.at[:16].replace('T', ' ')} UTC"
        if event.action == "promote":
            over = f"promoted over v{event.previous}" if event.previous else "promoted as the first champion"
            self.describe(event.version, f"Champion since {when}, {over} by {event.by}: {event.reason}")
        else:
            self.describe(
                event.version, f"Champion again since {when}, restored by a rollback from v{event.previous} by "
                f"{event.by}: {event.reason}",
            )  # fmt: skip
        if event.previous and event.previous != event.version:
            if event.action == "rollback":
                text = f"Rolled back on {when}: @{CHAMPION} back to v{event.version} by {event.by} ({event.reason})."
            else:
                text = f"Champion until {when}, replaced by v{event.version} (promoted by {event.by})."
            self.describe(event.previous, text)

    def describe(self, version: str, sentence: str) -> None:
        """Set the version's description (the MLflow UI shows it beside the version): one sentence of the decision."""
        try:
            self.client.update_model_version(self.name, str(version), description=sentence)
        except (MlflowException, OSError) as exc:
            raise fault(TRACKING, f"describing {self.name} version {version}", exc) from exc

    def record_gate(self, version: str, gate: dict[str, str]) -> None:
        """The gate's verdict on `version`: into its card and its `gate_decision` tag."""
        mv = self.version(version)
        write_card(self.client, mv, replace(read_card(self.client, mv), gate=gate))

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
    return Registry(
        settings.client(),
        model_name,
        settings.tracking_uri,
        settings.lock_dir,
        artifact_root=settings.artifact_root,
        lock_url=settings.promote_lock_url,
    )
