"""Every prediction the gateway makes, written to a database that monitoring reads.

SQLite by default, PostgreSQL (or any SQLAlchemy URL) by configuration. Requests only
append to an in-memory queue; one background thread writes batches, so logging adds
microseconds to a request, not a database round trip. `close()` drains the queue before
returning, so a clean shutdown loses no row.
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
)


def input_digest(title: str, body: str) -> str:
    return hashlib.sha256(f"{title}\x00{body}".encode()).hexdigest()


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
    ):
        self.url = url
        self.log_text = log_text
        self.flush_s = flush_s
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        self._queue: queue.SimpleQueue[PredictionRecord | None] = queue.SimpleQueue()
        self._pending = 0
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._table_ready = False
        try:  # now when the database is up (readers find the table); else at the first write
            METADATA.create_all(self.engine)
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
                return
            self._pending += 1
        self._queue.put(record)

    def _row(self, r: PredictionRecord) -> dict:
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
        }

    def _insert(self, rows: list[dict]) -> None:
        if not self._table_ready:
            METADATA.create_all(self.engine)
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
        log.warning("prediction log: database down at shutdown; %d rows spooled to %s", len(rows), path)

    def _replay_spool(self) -> None:
        if self.spool_dir is None or not self.spool_dir.is_dir():
            return
        for path in sorted(self.spool_dir.glob("predictions-*.jsonl")):
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            for row in rows:
                row["ts"] = datetime.fromisoformat(row["ts"])
            if rows and not self._write(rows):
                return  # still down and stopping: the file stays for the next start
            path.unlink()
            self.written += len(rows)
            self.replayed += len(rows)
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


def now() -> datetime:
    return datetime.now(UTC)


def read_predictions(url: str, start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """The logged predictions between two dates (monitoring's unsupervised input)."""
    engine = sa.create_engine(url)
    query = sa.select(PREDICTIONS)
    if start:
        query = query.where(PREDICTIONS.c.ts >= pd.Timestamp(start, tz="UTC").to_pydatetime())
    if end:
        query = query.where(PREDICTIONS.c.ts < pd.Timestamp(end, tz="UTC").to_pydatetime())
    with engine.connect() as conn:
        frame = pd.read_sql(query.order_by(PREDICTIONS.c.ts), conn)
    engine.dispose()
    for column in ("tags", "scores"):
        frame[column] = frame[column].map(json.loads)
    return frame
