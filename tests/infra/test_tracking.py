"""The embedded store: a reader of the SQLite file never makes a training run's write fail."""

from __future__ import annotations

import sqlite3
import time

from sotag.infra.tracking import TrackingSettings


def test_a_write_goes_through_while_another_process_holds_a_read_on_the_embedded_store(tmp_path):
    settings = TrackingSettings(f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri())
    client = settings.client()
    experiment_id = client.create_experiment("reading-while-writing")
    assert sqlite3.connect(tmp_path / "mlflow.db").execute("PRAGMA journal_mode").fetchone() == ("wal",)

    # A reader in the middle of a read transaction (what `mlflow ui`, a poll or a second command do).
    reader = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM experiments").fetchone()[0] >= 1
    try:
        start = time.monotonic()
        run = client.create_run(experiment_id, run_name="written-during-the-read")
        client.set_terminated(run.info.run_id)
        # In the rollback-journal mode the commit waits for the reader (MLflow's 20 s busy timeout) and fails.
        assert time.monotonic() - start < 15
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
