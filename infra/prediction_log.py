"""Every prediction the gateway makes, written to a database that monitoring reads.

SQLite by default, PostgreSQL (or any SQLAlchemy URL) by configuration. Requests only
append to an in-memory queue; one background thread writes batches, so logging adds
microseconds to a request, not a database round trip. `close()` drains the queue before
returning, so a clean shutdown loses no row.

Two tables: `predictions` (one row per answered question: its `prediction_id`, the version that answered and
its `arm`, champion or canary, and, when a shadow scored it too, the shadow's version and answer) and `feedback`
(the tags the asker kept for a prediction, at most one row per `prediction_id`, with precision@1 and recall@5
of each answer against them). Several gateway workers write the same database; each worker claims a spool
file (an atomic rename) before replaying it, so no row is written twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pandas as pd
import sqlalchemy as sa

log = logging.getLogger(__name__)

METADATA = sa.MetaData()
PREDICTIONS = sa.Table(
    "predictions",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(50)),
    sa.Column("route", sa.String(50), nullable=False),
    sa.Column("input_digest", sa.String(64), nullable=False),
    sa.Column("title", sa.Text),
    sa.Column("body", sa.Text),
    sa.Column("tags", sa.Text, nullable=False),  # JSON list
    sa.Column("scores", sa.Text, nullable=False),  # JSON list
    sa.Column("latency_ms", sa.Float),
    # Added with several workers, shadow and canary (older logs gain them, empty, at the first start):
    sa.Column("prediction_id", sa.String(32), index=True),
    sa.Column("arm", sa.String(16)),  # "champion", "canary" or "pinned" (no alias followed)
    sa.Column("shadow_version", sa.String(50)),  # the model that scored the question off the request path
    sa.Column("shadow_tags", sa.Text),  # JSON list
    sa.Column("shadow_scores", sa.Text),  # JSON list
    sa.Column("shadow_latency_ms", sa.Float),
)
FEEDBACK = sa.Table(
    "feedback",
    METADATA,
    sa.Column("prediction_id", sa.String(32), primary_key=True),  # one verdict per prediction: idempotent
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("tags", sa.Text, nullable=False),  # JSON list: the tags the asker kept
    sa.Column("model_name", sa.String(200)),
    sa.Column("model_version", sa.String(50)),
    sa.Column("precision_at_1", sa.Float),
    sa.Column("recall_at_5", sa.Float),
    sa.Column("shadow_version", sa.String(50)),
    sa.Column("shadow_precision_at_1", sa.Float),
    sa.Column("shadow_recall_at_5", sa.Float),
)
ADDED_COLUMNS = ("prediction_id", "arm", "shadow_version", "shadow_tags", "shadow_scores", "shadow_latency_ms")


def create_tables(engine: sa.Engine) -> None:
    """Create the tables, and add the columns a log written by an older sotag lacks (nullable: old rows stay)."""
    try:
        METADATA.create_all(engine)
    except sa.exc.OperationalError:  # another worker created a table between the check and the CREATE: check again
        METADATA.create_all(engine)
    present = {c["name"] for c in sa.inspect(engine).get_columns("predictions")}
    missing = [PREDICTIONS.c[name] for name in ADDED_COLUMNS if name not in present]
    if not missing:
        return
    with engine.begin() as conn:
        for column in missing:
            kind = column.type.compile(dialect=engine.dialect)
            try:
                conn.execute(sa.text(f'ALTER TABLE predictions ADD COLUMN "{column.name}" {kind}'))
            except sa.exc.SQLAlchemyError:  # another worker added it first
                if column.name not in {c["name"] for c in sa.inspect(conn).get_columns("predictions")}:
                    raise


def input_digest(title: str, body: str) -> str:
    return hashlib.sha256(f"{title}\x00{body}".encode()).hexdigest()


@dataclass(frozen=True)
class ShadowAnswer:
    """What the shadow model answered for the same question, off the request path."""

    version: str | None
    tags: Sequence[str]
    scores: Sequence[float]
    latency_ms: float


@dataclass(frozen=True)
class PredictionRecord:
    ts: datetime
    model_name: str
    model_version: str | None
    route: str
    title: str
    body: str
    tags: Sequence[str]
    scores: Sequence[float]
    latency_ms: float
    prediction_id: str | None = None
    arm: str | None = None
    shadow: ShadowAnswer | None = None


class LogObserver(Protocol):
    """Told of the writer's counts as they change (the gateway exports them to Prometheus)."""

    def rows(self, log: PredictionLog) -> None: ...


class PredictionLog:
    """Append-only writer: requests enqueue, one thread writes batches.

    When the database is away (a restart, a network cut) the batch in hand is retried with backoff and new
    rows wait in memory, up to `max_pending`; past that bound rows are dropped and counted (`dropped`,
    exported to /metrics), never silently. `close()` writes what it can within its timeout and spools
    the rest to a JSON-lines file in `spool_dir`, which the next start replays: a shutdown while the
    database is down loses nothing either.
    """

    def __init__(
        self,
        url: str,
        log_text: bool = False,
        flush_s: float = 0.5,
        batch_size: int = 500,
        max_pending: int = 100_000,
        spool_dir: str | Path | None = None,
        observer: LogObserver | None = None,
    ):
        self.url = url
        self.log_text = log_text
        self.flush_s = flush_s
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.observer = observer
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        self._queue: queue.SimpleQueue[PredictionRecord | None] = queue.SimpleQueue()
        self._pending = 0
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._table_ready = False
        try:  # now when the database is up (readers find the table); else at the first write
            create_tables(self.engine)
            self._table_ready = True
        except sa.exc.SQLAlchemyError as exc:
            log.warning("prediction log: database unavailable at start (%s)", str(exc).splitlines()[0])
        self.written = 0
        self.dropped = 0
        self.spooled = 0
        self.replayed = 0
        self.healthy = True
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._pending

    def append(self, record: PredictionRecord) -> None:
        with self._count_lock:
            if self._pending >= self.max_pending:
                self.dropped += 1
                self._observe()
                return
            self._pending += 1
        self._queue.put(record)

    def _observe(self) -> None:
        if self.observer is not None:
            self.observer.rows(self)

    def _row(self, r: PredictionRecord) -> dict:
        shadow = r.shadow
        return {
            "ts": r.ts,
            "model_name": r.model_name,
            "model_version": r.model_version,
            "route": r.route,
            "input_digest": input_digest(r.title, r.body),
            "title": r.title if self.log_text else None,
            "body": r.body if self.log_text else None,
            "tags": json.dumps(list(r.tags)),
            "scores": json.dumps([round(float(s), 6) for s in r.scores]),
            "latency_ms": r.latency_ms,
            "prediction_id": r.prediction_id,
            "arm": r.arm,
            "shadow_version": shadow.version if shadow else None,
            "shadow_tags": json.dumps(list(shadow.tags)) if shadow else None,
            "shadow_scores": json.dumps([round(float(s), 6) for s in shadow.scores]) if shadow else None,
            "shadow_latency_ms": shadow.latency_ms if shadow else None,
        }

    def _insert(self, rows: list[dict]) -> None:
        if not self._table_ready:
            create_tables(self.engine)
            self._table_ready = True
        with self.engine.begin() as conn:
            conn.execute(PREDICTIONS.insert(), rows)

    def _write(self, rows: list[dict]) -> bool:
        """Insert `rows`, retrying with backoff while the database is away; False if stopped past the deadline."""
        delay = 0.2
        while True:
            try:
                self._insert(rows)
                self.healthy, self.last_error = True, None
                return True
            except sa.exc.SQLAlchemyError as exc:
                if self.healthy:
                    log.warning("prediction log: database unavailable, buffering (%s)", str(exc).splitlines()[0])
                self.healthy, self.last_error = False, str(exc).splitlines()[0]
            if self._stop.is_set() and time.monotonic() >= self._deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _take(self, stop_seen: bool) -> tuple[list[PredictionRecord], bool]:
        batch: list[PredictionRecord] = []
        deadline = time.monotonic() + self.flush_s
        while len(batch) < self.batch_size:
            try:
                timeout = 0.0 if stop_seen else max(0.0, deadline - time.monotonic())
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop_seen = True
                continue
            batch.append(item)
        return batch, stop_seen

    def _run(self) -> None:
        self._replay_spool()
        stop_seen = False
        while True:
            batch, stop_seen = self._take(stop_seen)
            if batch:
                rows = [self._row(r) for r in batch]
                if self._write(rows):
                    self.written += len(rows)
                else:
                    self._spool(rows, self._drain_rows())
                    self._done(len(batch))
                    return
                self._done(len(batch))
            elif stop_seen:
                return

    def _done(self, n: int) -> None:
        with self._count_lock:
            self._pending -= n
        self._observe()

    def _drain_rows(self) -> list[dict]:
        rows = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return rows
            if item is not None:
                rows.append(self._row(item))
                self._done(1)

    def _spool(self, *parts: list[dict]) -> None:
        rows = [r for part in parts for r in part]
        if not rows:
            return
        if self.spool_dir is None:
            self.dropped += len(rows)
            log.error("prediction log: %d rows lost: the database is down and no spool folder is set", len(rows))
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"predictions-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.jsonl"
        tmp = path.with_suffix(".part")
        with open(tmp, "w") as handle:
            for row in rows:
                handle.write(json.dumps({**row, "ts": row["ts"].isoformat()}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        tmp.rename(path)  # a reader (the replay) sees whole files only
        self.spooled += len(rows)
        self._observe()
        log.warning("prediction log: database down at shutdown; %d rows spooled to %s", len(rows), path)

    def _replay_spool(self) -> None:
        """Write the rows spooled by earlier starts. Each file is first claimed by renaming it to
        `…jsonl.claimed-<pid>` (atomic: of several workers starting together, one gets it); a claim whose
        worker died before finishing is taken over. Written rows are then deleted with their file."""
        if self.spool_dir is None or not self.spool_dir.is_dir():
            return
        for path in sorted(self.spool_dir.glob("predictions-*.jsonl*")):
            claimed = _claim(path)
            if claimed is None:
                continue
            rows = [json.loads(line) for line in claimed.read_text().splitlines() if line.strip()]
            for row in rows:
                row["ts"] = datetime.fromisoformat(row["ts"])
            if rows and not self._write(rows):
                _unclaim(claimed)
                return  # still down and stopping: the file stays for the next start
            claimed.unlink()
            self.written += len(rows)
            self.replayed += len(rows)
            self._observe()
            log.info("prediction log: replayed %d spooled rows from %s", len(rows), path.name)

    def close(self, timeout_s: float = 30.0) -> None:
        """Write every queued row (spooling what the database does not take within `timeout_s`), then stop."""
        if self._thread.is_alive():
            self._deadline = time.monotonic() + timeout_s
            self._stop.set()
            self._queue.put(None)
            self._thread.join(timeout_s + 10)
        self.engine.dispose()

    def status(self) -> dict:
        return {
            "healthy": self.healthy,
            "written": self.written,
            "pending": self.pending,
            "dropped": self.dropped,
            "spooled": self.spooled,
            "last_error": self.last_error,
        }


CLAIM = ".claimed-"


def _claim(path: Path) -> Path | None:
    """Rename a spool file to this process's claim; None when another live process holds it (or took it)."""
    name = path.name
    if CLAIM in name:
        owner = name.rsplit(CLAIM, 1)[1]
        if not owner.isdigit() or process_alive(int(owner)):
            return None
        name = name.split(CLAIM, 1)[0]
    claimed = path.with_name(f"{name}{CLAIM}{os.getpid()}")
    try:
        path.rename(claimed)
    except FileNotFoundError:  # another worker claimed it first
        return None
    return claimed


def _unclaim(claimed: Path) -> None:
    claimed.rename(claimed.with_name(claimed.name.split(CLAIM, 1)[0]))


def log_summary(status: dict, spool_dir: Path | str) -> str:
    """What a stopping gateway (or worker) says of its prediction log."""
    return (
        f"prediction log: {status['written']} written, {status['spooled']} spooled to {spool_dir}, "
        f"{status['dropped']} dropped"
    )


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie, exited and not yet reaped, does not): who holds a spool claim,
    whose Prometheus files are a live worker's (serving.metrics)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def new_prediction_id() -> str:
    """32 hex characters: the time in milliseconds (12), then 80 random bits: ids sort by time, and a
    feedback can tell a prediction too recent to be written yet from one that never was."""
    return f"{int(time.time() * 1000):012x}{uuid.uuid4().hex[:20]}"


def prediction_time(prediction_id: str) -> float | None:
    """The unix time an id was made (None: not an id this log hands out)."""
    if len(prediction_id) != 32:
        return None
    try:
        int(prediction_id, 16)
    except ValueError:
        return None
    return int(prediction_id[:12], 16) / 1000


def now() -> datetime:
    return datetime.now(UTC)


def read_predictions(url: str, start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """The logged predictions between two dates (monitoring's unsupervised input). A log written by an older sotag
    (no prediction ids, no shadow columns) reads the same, those columns empty: reading never alters the log."""
    engine = sa.create_engine(url)
    try:
        present = {c["name"] for c in sa.inspect(engine).get_columns("predictions")}
        query = sa.select(*(c for c in PREDICTIONS.c if c.name in present))
        if start:
            query = query.where(PREDICTIONS.c.ts >= pd.Timestamp(start, tz="UTC").to_pydatetime())
        if end:
            query = query.where(PREDICTIONS.c.ts < pd.Timestamp(end, tz="UTC").to_pydatetime())
        with engine.connect() as conn:
            frame = pd.read_sql(query.order_by(PREDICTIONS.c.ts), conn)
    finally:
        engine.dispose()
    for name in ADDED_COLUMNS:
        if name not in frame.columns:
            frame[name] = None
    for column in ("tags", "scores"):
        frame[column] = frame[column].map(json.loads)
    return frame


def find_prediction(engine: sa.Engine, prediction_id: str) -> dict | None:
    """The logged row of a prediction (tags and shadow tags decoded), or None when the log has none."""
    query = sa.select(
        PREDICTIONS.c.model_name,
        PREDICTIONS.c.model_version,
        PREDICTIONS.c.tags,
        PREDICTIONS.c.shadow_version,
        PREDICTIONS.c.shadow_tags,
    ).where(PREDICTIONS.c.prediction_id == prediction_id)
    with engine.connect() as conn:
        row = conn.execute(query.limit(1)).mappings().first()
    if row is None:
        return None
    found = dict(row)
    found["tags"] = json.loads(found["tags"])
    found["shadow_tags"] = json.loads(found["shadow_tags"]) if found["shadow_tags"] else None
    return found


def insert_feedback(engine: sa.Engine, row: dict) -> dict | None:
    """Insert one feedback row; when the prediction already has one, insert nothing and return that one."""
    try:
        with engine.begin() as conn:
            conn.execute(FEEDBACK.insert(), [row])
        return None
    except sa.exc.IntegrityError:
        with engine.connect() as conn:
            existing = (
                conn.execute(sa.select(FEEDBACK).where(FEEDBACK.c.prediction_id == row["prediction_id"]))
                .mappings()
                .first()
            )
        return dict(existing) if existing is not None else None


FEEDBACK_COLUMNS = (
    "prediction_id", "ts", "kept_tags", "model_version", "precision_at_1", "recall_at_5", "predicted_at", "title",
    "body", "tags",
)  # fmt: skip


def read_feedback(url: str, start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """Feedback joined with its prediction (the question's text when the log keeps it): labelled live questions."""
    engine = sa.create_engine(url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    except sa.exc.SQLAlchemyError:
        engine.dispose()
        raise
    if not {"feedback", "predictions"} <= tables:  # a log no feedback reached yet
        engine.dispose()
        return pd.DataFrame(columns=[*FEEDBACK_COLUMNS])
    query = sa.select(
        FEEDBACK.c.prediction_id,
        FEEDBACK.c.ts,
        FEEDBACK.c.tags.label("kept_tags"),
        FEEDBACK.c.model_version,
        FEEDBACK.c.precision_at_1,
        FEEDBACK.c.recall_at_5,
        PREDICTIONS.c.ts.label("predicted_at"),
        PREDICTIONS.c.title,
        PREDICTIONS.c.body,
        PREDICTIONS.c.tags,
    ).join(PREDICTIONS, PREDICTIONS.c.prediction_id == FEEDBACK.c.prediction_id)
    if start:
        query = query.where(FEEDBACK.c.ts >= pd.Timestamp(start, tz="UTC").to_pydatetime())
    if end:
        query = query.where(FEEDBACK.c.ts < pd.Timestamp(end, tz="UTC").to_pydatetime())
    try:
        with engine.connect() as conn:
            frame = pd.read_sql(query.order_by(FEEDBACK.c.ts), conn)
    finally:
        engine.dispose()
    for column in ("kept_tags", "tags"):
        frame[column] = frame[column].map(json.loads)
    return frame
