"""The prediction log across versions and writers: an older log reads and is upgraded in place; several writers
replay a spool once."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import sqlalchemy as sa

from sotag.infra.prediction_log import (
    PredictionLog,
    PredictionRecord,
    new_prediction_id,
    prediction_time,
    read_predictions,
)

OLD_COLUMNS = "id INTEGER PRIMARY KEY, ts DATETIME NOT NULL, model_name VARCHAR(200) NOT NULL, model_version " \
    "VARCHAR(50), route VARCHAR(50) NOT NULL, input_digest VARCHAR(64) NOT NULL, title TEXT, body TEXT, " \
    "tags TEXT NOT NULL, scores TEXT NOT NULL, latency_ms FLOAT"  # fmt: skip


def _record(i: int) -> PredictionRecord:
    return PredictionRecord(
        datetime(2026, 12, 1, tzinfo=UTC), "m", "1", "/predict", f"t{i}", "", ["python"], [0.9], 1.0,
        new_prediction_id(), "champion",
    )  # fmt: skip


def test_a_log_written_before_prediction_ids_reads_and_is_upgraded_in_place(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE predictions ({OLD_COLUMNS})"))
        insert = "INSERT INTO predictions (ts, model_name, model_version, route, input_digest, tags, scores) VALUES "
        conn.execute(sa.text(insert + "('2026-11-30 10:00:00', 'm', '1', '/predict', 'x', :tags, '[0.9]')"),
                     {"tags": '["python"]'})  # fmt: skip
    old = read_predictions(url)  # reading alters nothing
    assert len(old) == 1 and old["prediction_id"].isna().all() and old["tags"][0] == ["python"]
    assert "prediction_id" not in {c["name"] for c in sa.inspect(engine).get_columns("predictions")}
    plog = PredictionLog(url, flush_s=0.05)  # a gateway starting on it adds the new columns
    plog.append(_record(1))
    plog.close()
    both = read_predictions(url)
    assert len(both) == 2 and both["prediction_id"].notna().sum() == 1 and set(both["arm"].dropna()) == {"champion"}


def test_a_spool_file_is_replayed_once_by_the_writer_that_claims_it(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    rows = [{"ts": "2026-12-01T00:00:00+00:00", "model_name": "m", "model_version": "1", "route": "/predict",
             "input_digest": "d", "title": None, "body": None, "tags": "[]", "scores": "[]",
             "latency_ms": 1.0}]  # fmt: skip
    (spool / "predictions-1-a.jsonl").write_text("\n".join(json.dumps(r) for r in rows * 3))
    # A claim left by a writer that died (no such process) is taken over; one held by a live process is left.
    (spool / "predictions-2-b.jsonl.claimed-999999999").write_text(json.dumps(rows[0]))
    (spool / f"predictions-3-c.jsonl.claimed-{os.getppid()}").write_text(json.dumps(rows[0]))
    url = f"sqlite:///{tmp_path / 'p.db'}"
    first, second = PredictionLog(url, spool_dir=spool), PredictionLog(url, spool_dir=spool)
    first.close()
    second.close()
    assert first.replayed + second.replayed == 4
    assert len(read_predictions(url)) == 4
    assert [p.name for p in spool.iterdir()] == [f"predictions-3-c.jsonl.claimed-{os.getppid()}"]


def test_prediction_ids_carry_their_time_and_nothing_else_passes_for_one():
    pid = new_prediction_id()
    assert len(pid) == 32 and abs(prediction_time(pid) - datetime.now(UTC).timestamp()) < 5
    assert prediction_time("z" * 32) is None and prediction_time("abc") is None
