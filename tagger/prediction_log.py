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
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

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
    def __init__(self, url: str, log_text: bool = False, flush_s: float = 0.5, batch_size: int = 500):
        self.url = url
        self.log_text = log_text
        self.flush_s = flush_s
        self.batch_size = batch_size
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        METADATA.create_all(self.engine)
        self._queue: queue.SimpleQueue[PredictionRecord | None] = queue.SimpleQueue()
        self.written = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, record: PredictionRecord) -> None:
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

    def _write(self, batch: list[PredictionRecord]) -> None:
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    conn.execute(PREDICTIONS.insert(), [self._row(r) for r in batch])
                self.written += len(batch)
                return
            except sa.exc.SQLAlchemyError as exc:
                log.warning("prediction log: write of %d rows failed (attempt %d): %s", len(batch), attempt + 1, exc)
                time.sleep(0.2 * (attempt + 1))
        self.failed += len(batch)

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[PredictionRecord] = []
            deadline = time.monotonic() + self.flush_s
            while len(batch) < self.batch_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            if batch:
                self._write(batch)
        # Whatever arrived after the stop marker is written too.
        rest = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                rest.append(item)
        if rest:
            self._write(rest)

    def close(self, timeout_s: float = 30.0) -> None:
        """Write every queued row, then stop the writer."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout_s)
        self.engine.dispose()


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
