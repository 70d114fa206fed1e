"""Issue 30 part 3: champion moves serialised across machines on the server profile (a PostgreSQL advisory lock on
the backend store), and a lock that stays taken says who holds it (the file lock of the embedded profile too)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from sotag.infra.tracking import MODEL_NAME, use_fluent
from sotag.registry.locks import AdvisoryRegistryLock, FileRegistryLock, LockTimeout, advisory_key
from sotag.registry.store import CHAMPION, RegistryConflict, open_registry
from sotag.training.config import TrainConfig
from sotag.training.train import train
from tests.processes import needs_postgres
from tests.support.settings import settings_from, tracking_settings


def test_a_file_lock_left_taken_says_who_holds_it(tmp_path):
    first = FileRegistryLock(tmp_path / "locks", "sqlite:///x.db", MODEL_NAME, timeout_s=0.2)
    second = FileRegistryLock(tmp_path / "locks", "sqlite:///x.db", MODEL_NAME, timeout_s=0.2)
    with first.hold("rollback"), pytest.raises(LockTimeout) as taken, second.hold("promote"):
        pass
    assert f"holds {first.path} for over 0 s (held by sotag rollback " in str(taken.value)
    assert f"pid {os.getpid()} since " in str(taken.value)
    with second.hold("promote"):  # released: free again
        assert second.is_locked


def test_the_server_profile_locks_on_its_backend_store_unless_told_otherwise():
    server = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", "SOTAG_BACKEND_STORE_URI": "postgresql://u@db:5432/m"}
    assert settings_from(server).promotion_lock_url == "postgresql://u@db:5432/m"
    assert tracking_settings(server).promote_lock_url == "postgresql://u@db:5432/m"
    named = {**server, "SOTAG_PROMOTE_LOCK_URL": "postgresql://u@locks:5432/l"}
    assert settings_from(named).promotion_lock_url == "postgresql://u@locks:5432/l"
    # The embedded store (and a server whose backend sotag does not know): the lock file.
    assert settings_from({"SOTAG_BACKEND_STORE_URI": "postgresql://u@db/m"}).promotion_lock_url is None
    assert settings_from({"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}).promotion_lock_url is None


@pytest.fixture(scope="module")
def profile():
    """PostgreSQL + moto S3 + `mlflow server` on 127.0.0.1, as the server profile's tests start them."""
    from sotag.mlruns_config.servers import MlflowServer, MotoS3, PostgresCluster

    needs_postgres()
    pg = PostgresCluster().start()
    s3 = MotoS3().start()
    try:
        backend = pg.create_database("mlflow")
        destination = s3.create_bucket("sotag-lock-artifacts") + "/mlartifacts"
        env = {**MotoS3.credentials(), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint}
        server = MlflowServer(backend, destination, env=env).start()
        try:
            yield server, backend
        finally:
            server.stop()
    finally:
        s3.stop()
        pg.stop()


def _waiters(url: str, key: int) -> int:
    """Sessions waiting for the advisory lock `key` (not granted yet)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        n = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND classid::bigint = :hi AND objid::bigint = :lo"
            ),
            {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
        ).scalar_one()
    engine.dispose()
    return int(n)


@pytest.mark.integration
def test_two_promotes_on_two_machines_race_one_moves_the_champion_the_other_rejudges(
    profile, questions_parquet, tmp_path, monkeypatch
):
    server, backend = profile
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("SOTAG_BACKEND_STORE_URI", backend)  # the server profile's: the lock's default database
    for key in ("SOTAG_ARTIFACT_ROOT", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SOTAG_LOCK_DIR", str(tmp_path / "test-locks"))
    settings = tracking_settings()
    assert settings.promote_lock_url == backend

    small = dict(vectorizer="tfidf", data=questions_parquet, split_date="2018-03-01", top_n_tags=8, min_df=1, C=10.0,
                 threshold=0.2, cache_dir=tmp_path / "cache")  # fmt: skip
    runs = use_fluent(settings, "stackoverflow-tagger")
    weak = train(TrainConfig(max_features=30, **small), runs).version
    registry = open_registry(settings, MODEL_NAME)
    registry.move_champion(weak, None, "promote", "the first champion")  # through the advisory lock
    # Two equal challengers: whichever moves first, the other is no gain over it (--min-delta).
    left, right = (train(TrainConfig(max_features=2000, **small), runs).version for _ in range(2))

    lock = AdvisoryRegistryLock(backend, MODEL_NAME, timeout_s=60)
    key = advisory_key(MODEL_NAME)
    env = {k: v for k, v in os.environ.items() if k not in ("SOTAG_LOCK_DIR", "SOTAG_HOME", "SOTAG_CACHE")}
    procs = {}
    with lock.hold("test"):  # both start while the lock is taken: each must wait for it, on its own machine
        for version in (left, right):
            home = tmp_path / f"machine-{version}"  # separate working folders: their lock files differ
            home.mkdir()
            procs[version] = subprocess.Popen(
                [sys.executable, "-m", "sotag", "promote", "--version", version, "--data", str(questions_parquet),
                 "--floor", "0.3", "--min-delta", "0.001", "--no-behaviour-cases"],
                env={**env, "SOTAG_HOME": str(home)}, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while _waiters(backend, key) < 2:
            assert time.monotonic() < deadline, "the two promotes never waited for the advisory lock"
            assert all(p.poll() is None for p in procs.values()), {v: p.stdout.read() for v, p in procs.items()}
            time.sleep(0.1)
    outputs = {version: p.communicate(timeout=600)[0] for version, p in procs.items()}
    codes = {version: p.returncode for version, p in procs.items()}
    assert sorted(codes.values()) == [0, 3], outputs
    [winner] = [v for v, c in codes.items() if c == 0]
    [loser] = [v for v, c in codes.items() if c == 3]
    assert f"PROMOTED v{winner} to @{CHAMPION}" in outputs[winner]
    assert f"v{winner} stays @{CHAMPION}" in outputs[loser], outputs[loser]  # judged against the new champion
    assert not any((tmp_path / f"machine-{v}" / ".locks").exists() for v in procs)  # no file lock was taken

    assert registry.alias(CHAMPION) == winner
    moves = [(e.action, e.version, e.previous, e.state) for e in registry.history()]
    assert moves == [("promote", weak, None, "done"), ("promote", winner, weak, "done")]
    # Both decisions recorded: the winner's move in the history and its version, the loser's refusal (against the
    # new champion) in its own.
    assert registry.version(winner).tags["gate_decision"] == "promoted"
    assert registry.version(winner).description.startswith("Champion since ")
    kept = registry.version(loser)
    assert kept.tags["gate_decision"] == "rejected"
    assert kept.description.startswith(f"Kept out of @{CHAMPION} (champion v{winner} stays)"), kept.description

    # A lock left taken: the next mover waits its timeout, then says who holds it; nothing moved.
    with lock.hold("rollback"):
        short = AdvisoryRegistryLock(backend, MODEL_NAME, timeout_s=1)
        with pytest.raises(LockTimeout) as taken, short.hold("promote"):
            pass
        blocked = open_registry(settings, MODEL_NAME)
        blocked._lock = short
        with pytest.raises(RegistryConflict, match="held by sotag rollback"):
            blocked.move_champion(loser, winner, "promote", "should wait")
    assert "held by sotag rollback" in str(taken.value) and "PostgreSQL backend pid" in str(taken.value)
    assert f"advisory lock {key} on postgresql+psycopg2://sotag@127.0.0.1" in str(taken.value)
    assert registry.alias(CHAMPION) == winner
