"""The champion history: one MLflow run per move of @champion, in the experiment `<model>-registry-history`.

Why runs (and not the registered model's tags, one tag, or an artifact)
----------------------------------------------------------------------
The history used to be one registered-model tag per event (`sotag.history.<time>.<id>`, the event's JSON):
race-safe, but the MLflow UI draws a registered model's tags as a table of raw JSON above the versions, so
the page an operator promotes from was mostly history. A single tag holding a list would be a
read-modify-write race between two writers; an artifact needs a download to read and the UI shows it only
inside a run. A run per move keeps every property of the tag per event and is what MLflow's UI shows best:

* creating a run is atomic and its id unique, so two writers never lose each other's events, and only the
  writer that created a run (or the recoverer, under the lock) ever updates it;
* the experiment's run table is the history, newest first, filterable (`params.version = '3'`,
  `params.action = 'rollback'`): run name `promote v3 (was v2)`, the reason as the run's description,
  the gate's figures as metrics (`challenger.f1_at_3_all`), who and what as params;
* the state reads as the run's status: pending = RUNNING, done = FINISHED, abandoned = KILLED.

The record is the event's JSON in the run tag `sotag.event` (the status mirrors it; `recover` puts a status
that a crash left behind back in line). The event's key (`sotag.history.<time>.<id>`, as before) is the run
tag `sotag.event_key`: registries written before keep reading, since the events still held as model tags are
read alongside the runs, and `migrate` moves each into a run (created only when no run has its key yet, then
the model tag deleted: run twice, or interrupted, it leaves one run per event).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.entities.model_registry import RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sotag.infra.store_errors import TRACKING, fault, is_absent
from sotag.tagger.errors import SotagError

HISTORY_PREFIX = "sotag.history."  # the event keys, and the registered-model tags of registries written before
EXPERIMENT_SUFFIX = "-registry-history"
EVENT_TAG = "sotag.event"
KEY_TAG = "sotag.event_key"
MODEL_TAG = "sotag.model"
NOTE_TAG = "mlflow.note.content"  # the run's description in the MLflow UI
RUN_STATUS = {"pending": "RUNNING", "done": "FINISHED", "abandoned": "KILLED"}


class HistoryError(SotagError):
    """A history record that does not read as an event."""


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
    key: str = ""  # sotag.history.<time>.<id>
    run_id: str = ""  # the history run holding it ("" while it is still a model tag of an older registry)
    run_status: str = ""  # that run's status when it was read (RUNNING, FINISHED, KILLED)

    def to_json(self) -> str:
        body = {k: v for k, v in self.__dict__.items() if k not in ("key", "run_id", "run_status")}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, key: str, value: str, where: str, run_id: str = "", run_status: str = "") -> Event:
        """An event from its JSON; HistoryError naming `where` it was read when the value is not one."""
        try:
            body = json.loads(value)
            return cls(key=key, run_id=run_id, run_status=run_status, **body)
        except (ValueError, TypeError) as exc:
            raise HistoryError(f"{where}: not a sotag history event ({exc})") from None

    def run_name(self) -> str:
        was = f"was v{self.previous}" if self.previous else "first champion"
        return f"{self.action} v{self.version} ({was})"


class HistoryLog:
    """The history runs of one registered model, read and written through `client` (its tracking store)."""

    def __init__(self, client: MlflowClient, model_name: str, artifact_root: str | None = None):
        self.client = client
        self.model_name = model_name
        self.experiment = f"{model_name}{EXPERIMENT_SUFFIX}"
        self._artifact_root = artifact_root

    def _experiment_id(self, create: bool) -> str | None:
        """The history experiment's id; created (or restored from the bin) when `create`, else None when absent."""
        try:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is not None and found.lifecycle_stage == "deleted" and create:
                self.client.restore_experiment(found.experiment_id)
            if found is not None or not create:
                return None if found is None else found.experiment_id
            root = self._artifact_root
            location = f"{root.rstrip('/')}/{self.experiment}" if root else None
            try:
                return self.client.create_experiment(self.experiment, artifact_location=location)
            except MlflowException:  # created meanwhile by another writer
                again = self.client.get_experiment_by_name(self.experiment)
                if again is None:
                    raise
                return again.experiment_id
        except (MlflowException, OSError) as exc:
            raise fault(TRACKING, f"opening the history experiment {self.experiment}", exc) from exc

    def read(self, model: RegisteredModel | None) -> list[Event]:
        """Every event, oldest first: the history runs, and the events an older registry still holds as `model`'s
        tags (a key found in both is read from its run)."""
        events = {e.key: e for e in self.legacy(model)}
        events |= {e.key: e for e in self._runs()}
        return sorted(events.values(), key=lambda e: (e.at, e.key))

    def legacy(self, model: RegisteredModel | None) -> list[Event]:
        tags = (model.tags or {}) if model is not None else {}
        return [
            Event.from_json(k, v, f"registered model tag {k}") for k, v in tags.items() if k.startswith(HISTORY_PREFIX)
        ]

    def _runs(self) -> list[Event]:
        experiment_id = self._experiment_id(create=False)
        if experiment_id is None:
            return []
        events, token = [], None
        try:
            while True:
                page = self.client.search_runs(
                    [experiment_id], run_view_type=ViewType.ALL, max_results=1000, page_token=token
                )
                for run in page:
                    tags = run.data.tags
                    if EVENT_TAG in tags:
                        where = f"history run {run.info.run_id} tag {EVENT_TAG}"
                        key = tags.get(KEY_TAG, "")
                        events.append(Event.from_json(key, tags[EVENT_TAG], where, run.info.run_id, run.info.status))
                token = page.token
                if not token:
                    return events
        except (MlflowException, OSError) as exc:
            if is_absent(exc):
                return events
            raise fault(TRACKING, f"reading the history runs of {self.model_name}", exc) from exc

    def append(self, event: Event, doing: str) -> Event:
        """Create the event's run (its status from its state); the event with its run id."""
        experiment_id = self._experiment_id(create=True)
        moved = int(datetime.fromisoformat(event.at).timestamp() * 1000)
        try:
            run = self.client.create_run(
                experiment_id,
                start_time=moved,
                run_name=event.run_name(),
                tags={
                    EVENT_TAG: event.to_json(),
                    KEY_TAG: event.key,
                    MODEL_TAG: self.model_name,
                    "state": event.state,
                    NOTE_TAG: event.reason,
                },
            )
            self.client.log_batch(run.info.run_id, metrics=_metrics(event, moved), params=_params(event))
        except (MlflowException, OSError) as exc:
            raise fault(TRACKING, doing, exc) from exc
        event = replace(event, run_id=run.info.run_id)
        if event.state != "pending":
            self._terminate(event, doing)
        return event

    def update(self, event: Event, doing: str) -> None:
        """Rewrite the event's record (its own run, written only by the lock holder), then its status."""
        tags = {EVENT_TAG: event.to_json(), "state": event.state}
        if event.recovered:
            tags["recovered"] = event.recovered
        try:
            self.client.log_batch(event.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        except (MlflowException, OSError) as exc:
            raise fault(TRACKING, doing, exc) from exc
        self._terminate(event, doing)

    def _terminate(self, event: Event, doing: str) -> None:
        try:
            self.client.set_terminated(event.run_id, status=RUN_STATUS[event.state])
        except (MlflowException, OSError) as exc:
            raise fault(TRACKING, doing, exc) from exc

    def align_status(self, events: Iterable[Event]) -> None:
        """Finish the runs whose record says done or abandoned but whose status a crash left RUNNING (the record is
        the truth; the status mirrors it)."""
        for event in events:
            if event.run_id and event.run_status == "RUNNING" and event.state != "pending":
                self._terminate(event, f"finishing the history run of {event.key}")

    def migrate(self, model: RegisteredModel | None) -> int:
        """Move the events an older registry holds as `model`'s tags into runs (run first, tag deleted after);
        the number moved. Call under the registry lock."""
        old = self.legacy(model)
        if not old:
            return 0
        have = {e.key for e in self._runs()}
        for event in old:
            doing = f"moving the history event {event.key} into a run"
            if event.key not in have:
                self.append(event, doing)
            try:
                self.client.delete_registered_model_tag(self.model_name, event.key)
            except (MlflowException, OSError) as exc:
                raise fault(TRACKING, doing, exc) from exc
        return len(old)


def _params(event: Event) -> list[Param]:
    values = {"action": event.action, "version": event.version, "previous": event.previous or "none", "by": event.by}
    return [Param(k, v) for k, v in values.items()]


def _metrics(event: Event, at_ms: int) -> list[Metric]:
    """The gate's figures of the move: `challenger.f1_at_3_all`, `champion.f1_at_3_all`, …"""
    return [
        Metric(f"{role}.{name}", float(value), at_ms, 0)
        for role, figures in sorted(event.metrics.items())
        for name, value in sorted(figures.items())
    ]
