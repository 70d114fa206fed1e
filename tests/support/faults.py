"""Fault injection with the real components on 127.0.0.1: `make bench-faults` and tests/faults.

A `Lab` starts PostgreSQL, moto's S3 behind a TCP switch (`TcpSwitch`: the endpoint goes down and comes
back while the objects stay), and `mlflow server` on them; the sotag commands run as subprocesses with
the environment a user would set. Each scenario injects one fault and returns an `Outcome`: whether the
outcome the reliability issue asks for held (`survived`) and how many log rows or registry records went
missing (`lost`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from mlruns_config.servers import MlflowServer, MotoS3, PostgresCluster, free_port

MODEL = "stackoverflow-tagger"
BUCKET = "sotag-faults"
TOKEN = "faults-admin-token"
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "questions-sample.parquet"
# Small and quick: the faults are the point, not the model.
TRAIN_ARGS = ["--top-n-tags", "20", "--max-features", "5000", "--C", "10"]
GATE_ARGS = ["--floor", "0", "--no-behaviour-cases", "--max-latency-ms", "1000"]


@dataclass
class Outcome:
    name: str
    survived: bool
    lost: int
    detail: str

    def line(self) -> str:
        return f"{'survived' if self.survived else 'FAILED  '} {self.name}: {self.detail} (lost={self.lost})"


class TcpSwitch:
    """A TCP forwarder to `target_port` that can be switched off (connections refused) and on again."""

    def __init__(self, target_port: int, port: int | None = None):
        self.target_port, self.port = target_port, port or free_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpSwitch:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        """The endpoint goes away: the listener closes and every open connection is cut."""
        if self._server is not None:
            self._server.close()
            self._server = None
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns = []


@dataclass
class Lab:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sotag-faults-")))
    pg: PostgresCluster | None = None
    s3: MotoS3 | None = None
    switch: TcpSwitch | None = None
    server: MlflowServer | None = None
    backend: str = ""
    champion: str | None = None

    def start(self) -> Lab:
        self.pg = PostgresCluster().start()
        self.s3 = MotoS3().start()
        self.s3.create_bucket(BUCKET)
        self.switch = TcpSwitch(self.s3.port).start()
        self.backend = self.pg.create_database("mlflow")
        self.start_server()
        return self

    def start_server(self) -> None:
        env = {**MotoS3.credentials(), "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.switch.port}"}
        port = self.server.port if self.server else free_port()
        if self.server is not None:
            shutil.rmtree(self.server.workdir, ignore_errors=True)
        self.server = MlflowServer(self.backend, f"s3://{BUCKET}/mlartifacts", env=env, port=port).start()

    def kill_server(self) -> None:
        os.killpg(self.server.proc.pid, signal.SIGKILL)
        self.server.proc.wait(timeout=10)

    def stop(self) -> None:
        for stop in (
            lambda: self.server and self.server.stop(),
            lambda: self.switch and self.switch.stop(),
            lambda: self.s3 and self.s3.stop(),
            lambda: self.pg and self.pg.stop(),
        ):
            with contextlib.suppress(Exception):
                stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def env(self, **extra: str) -> dict[str, str]:
        """What a user's shell holds: the tracking server's URL (it proxies the artifacts), quick failure."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SOTAG_"))}
        env.update(
            MLFLOW_TRACKING_URI=self.server.url,
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="1",
            MLFLOW_HTTP_REQUEST_TIMEOUT="10",
            SOTAG_LOCK_DIR=str(self.root / "locks"),
            SOTAG_HOME=str(self.root),
            SOTAG_CACHE=str(self.root / "cache"),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        env.update(extra)
        return env

    def sotag(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "sotag", *args], env=env or self.env(), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "sotag", *args], env=env or self.env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip

    def retrain_args(self) -> list[str]:
        return ["retrain", "--data", str(SAMPLE), *TRAIN_ARGS, *GATE_ARGS]

    def seed_champion(self) -> str:
        if self.champion is None:
            result = self.sotag(*self.retrain_args())
            if result.returncode not in (0, 3):
                raise RuntimeError(f"seeding the champion failed: {result.stderr[-2000:]}")
            self.champion = self.registry_state()["aliases"].get("champion")
        return self.champion

    def sql(self, query: str, args: tuple = ()) -> list[tuple]:
        import psycopg2

        conn = psycopg2.connect(self.pg.dsn("mlflow"))
        try:
            with conn, conn.cursor() as cur:
                cur.execute(query, args)
                return cur.fetchall()
        finally:
            conn.close()

    def registry_state(self) -> dict:
        """Versions with their storage location, aliases, history events: straight from PostgreSQL."""
        versions = self.sql("SELECT version, storage_location, status FROM model_versions WHERE name = %s", (MODEL,))
        aliases = dict(self.sql("SELECT alias, version FROM registered_model_aliases WHERE name = %s", (MODEL,)))
        history = self.sql(
            "SELECT key, value FROM registered_model_tags WHERE name = %s AND key LIKE 'sotag.history.%%'", (MODEL,)
        )
        return {
            "versions": {str(v): (loc, status) for v, loc, status in versions},
            "aliases": {k: str(v) for k, v in aliases.items()},
            "history": sorted((json.loads(v) for _, v in history), key=lambda e: e.get("at", "")),
        }

    def runs(self, status: str | None = None) -> list[tuple[str, str]]:
        rows = self.sql("SELECT run_uuid, status FROM runs ORDER BY start_time")
        return [r for r in rows if status is None or r[1] == status]

    def missing_artifacts(self) -> list[str]:
        """Registered versions whose MLmodel is not in the bucket (mlflow-artifacts:/X is s3://BUCKET/mlartifacts/X)."""
        client = self.s3.client()
        keys = {o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                for o in page.get("Contents", [])}  # fmt: skip
        missing = []
        for version, (location, _) in self.registry_state()["versions"].items():
            relative = re.sub(r"^mlflow-artifacts:/+", "", location or "")
            if f"mlartifacts/{relative}/MLmodel" not in keys:
                missing.append(version)
        return missing


def _one_clear_line(stderr: str, marker: str) -> bool:
    lines = [line for line in stderr.splitlines() if line.startswith(marker)]
    return len(lines) == 1 and "Traceback" not in stderr


class BackgroundLoad:
    """`clients` threads posting PAYLOADS to `url` from construction until `stop()`, which returns the counts:
    200s (`ok`), other statuses (`bad_status`) and connection errors (`refused`)."""

    def __init__(self, url: str, clients: int = 16):
        self.counts = {"ok": 0, "bad_status": 0, "refused": 0}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(url, i, clients), daemon=True) for i in range(clients)
        ]
        for thread in self._threads:
            thread.start()

    def _client(self, url: str, first: int, step: int) -> None:
        session = requests.Session()
        n = first
        while not self._stop.is_set():
            try:
                response = session.post(url, json=PAYLOADS[n % len(PAYLOADS)], timeout=30)
                key = "ok" if response.status_code == 200 else "bad_status"
            except requests.RequestException:
                key = "refused"
                time.sleep(0.05)
            with self._lock:
                self.counts[key] += 1
            n += step

    def stop(self) -> dict[str, int]:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        return self.counts


def held_outcome(name: str, held: dict[str, bool], lost: int, detail: str) -> Outcome:
    """Survived when every condition in `held` is true; the detail names the ones that are not."""
    failed = [condition for condition, ok in held.items() if not ok]
    return Outcome(name, not failed, lost, detail + (f"; not held: {', '.join(failed)}" if failed else ""))


PAYLOADS = [
    {"title": "How to merge two pandas dataframes", "body": "<p>pd.merge on id</p>"},
    {"title": "React useEffect runs twice", "body": "<p>javascript hooks</p>"},
    {"title": "Docker container cannot reach the host", "body": ""},
    {"title": "SQL join returns duplicates", "body": "<p>select * from a join b</p>"},
]


def _gateway(lab: Lab, log_url: str, **env: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = lab.popen(
        "gateway", "--port", str(port),
        env=lab.env(SOTAG_PREDICTION_LOG=log_url, SOTAG_ADMIN_TOKEN=TOKEN, SOTAG_SPOOL_DIR=str(lab.root / "spool"),
                    **env),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited: {proc.stderr.read()[-2000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        time.sleep(0.3)
    raise RuntimeError("gateway did not start")


def _stop_gateway(proc: subprocess.Popen) -> int:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=10)


def _rows(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar())
    finally:
        engine.dispose()


def _wait_drained(base: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    status = {}
    while time.monotonic() < deadline:
        status = requests.get(f"{base}/health", timeout=5).json()["prediction_log"]
        if status["pending"] == 0 and status["healthy"]:
            return status
        time.sleep(0.5)
    return status


# -- the scenarios -------------------------------------------------------------------------------------------


def tracking_killed_during_retrain(lab: Lab) -> Outcome:
    champion = lab.seed_champion()
    running_before = len(lab.runs("RUNNING"))
    proc = lab.popen(*lab.retrain_args())
    deadline = time.monotonic() + 120
    while len(lab.runs("RUNNING")) <= running_before and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    lab.kill_server()
    _, stderr = proc.communicate(timeout=300)
    code = proc.returncode
    lab.start_server()
    state = lab.registry_state()
    missing = lab.missing_artifacts()
    rerun = lab.sotag(*lab.retrain_args())
    lab.champion = lab.registry_state()["aliases"].get("champion")
    held = {
        "non-zero exit": code not in (0, 3),
        "one clear line": _one_clear_line(stderr, "sotag retrain: "),
        "champion unchanged": state["aliases"].get("champion") == champion,
        "no version without artifacts": not missing,
        "rerun succeeds": rerun.returncode in (0, 3),
    }
    line = next((x for x in stderr.splitlines() if x.startswith("sotag retrain: ")), "no message")
    return held_outcome(
        "tracking server killed during retrain",
        held,
        len(missing),
        f"exit {code}, '{line[:120]}'; champion v{state['aliases'].get('champion')} kept; rerun exit "
        f"{rerun.returncode}",
    )


def s3_down_while_logging(lab: Lab) -> Outcome:
    lab.seed_champion()
    versions_before = set(lab.registry_state()["versions"])
    runs_before = {r for r, _ in lab.runs()}
    proc = lab.popen("train", "--data", str(SAMPLE), *TRAIN_ARGS, "--run-name", "s3-down")
    deadline = time.monotonic() + 120
    while not ({r for r, _ in lab.runs()} - runs_before) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    lab.switch.stop()
    _, stderr = proc.communicate(timeout=300)
    new_runs = [(r, s) for r, s in lab.runs() if r not in runs_before]
    lab.switch.start()
    time.sleep(3)  # anything that would register late has had its chance
    versions_after = set(lab.registry_state()["versions"])
    held = {
        "non-zero exit": proc.returncode != 0,
        "names the artifact store": "artifact store" in stderr,
        "one clear line": _one_clear_line(stderr, "sotag train: "),
        "run FAILED": bool(new_runs) and all(s == "FAILED" for _, s in new_runs),
        "nothing registered": versions_after == versions_before,
    }
    line = next((x for x in stderr.splitlines() if x.startswith("sotag train: ")), "no message")
    return held_outcome(
        "S3 down while the model is logged",
        held,
        0,
        f"exit {proc.returncode}, '{line[:140]}'; run {new_runs[0][1] if new_runs else '?'}; "
        f"{len(versions_after - versions_before)} new versions",
    )


def log_database_restarted_under_load(lab: Lab) -> Outcome:
    lab.seed_champion()
    pg = PostgresCluster().start()
    try:
        url = pg.create_database("predictions")
        proc, base = _gateway(lab, url)
        load = BackgroundLoad(f"{base}/predict")
        time.sleep(3)
        pg.restart()
        time.sleep(4)
        result = load.stop()
        status = _wait_drained(base)
        rows = _rows(url)
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        code = _stop_gateway(proc)
    finally:
        pg.stop()
    answered = result.get("ok", 0)
    lost = max(0, answered - rows)
    dropped = re.search(r"^sotag_prediction_log_dropped (\S+)", metrics, re.M)
    held = {
        "every request 200": result.get("bad_status", 0) == 0 and result.get("refused", 0) == 0,
        "rows logged = requests answered": rows == answered,
        "dropped counter exported": dropped is not None,
        "clean exit": code == 0,
    }
    return held_outcome(
        "prediction-log PostgreSQL restarted under 16 clients",
        held,
        lost,
        f"{answered} answered 200, {result.get('bad_status', 0)} other, {rows} rows logged, "
        f"buffer peak drained (pending {status.get('pending')})",
    )


def sigterm_under_load(lab: Lab) -> Outcome:
    lab.seed_champion()
    url = f"sqlite:///{lab.root / 'sigterm-predictions.db'}"
    proc, base = _gateway(lab, url)
    load = BackgroundLoad(f"{base}/predict")
    time.sleep(3)
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        code = None
    seconds = time.monotonic() - start
    result = load.stop()
    if code is None:
        os.killpg(proc.pid, signal.SIGKILL)
    rows = _rows(url)
    answered = result.get("ok", 0)
    held = {
        "exit 0": code == 0,
        "within 30 s": seconds < 30,
        "no error status": result.get("bad_status", 0) == 0,
        "rows logged = requests answered": rows == answered,
    }
    return held_outcome(
        "gateway SIGTERM under 16 clients",
        held,
        max(0, answered - rows),
        f"exit {code} in {seconds:.1f} s; {answered} answered 200, {result.get('refused', 0)} refused after the "
        f"signal, {rows} rows logged",
    )


def reload_with_s3_down(lab: Lab) -> Outcome:
    from mlflow.tracking import MlflowClient

    champion = lab.seed_champion()
    proc, base = _gateway(lab, f"sqlite:///{lab.root / 'reload-predictions.db'}")
    try:
        trained = lab.sotag("train", "--data", str(SAMPLE), *TRAIN_ARGS, "--run-name", "reload-target")
        version = re.search(r"models:/[^/]+/(\d+)", trained.stdout)
        client = MlflowClient(lab.server.url)
        client.set_registered_model_alias(MODEL, "champion", version.group(1))
        lab.switch.stop()
        load = BackgroundLoad(f"{base}/predict")
        time.sleep(1)
        reload = requests.post(f"{base}/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300)
        time.sleep(1)
        result = load.stop()
        health = requests.get(f"{base}/health", timeout=5).json()
    finally:
        lab.switch.start()
        _stop_gateway(proc)
        MlflowClient(lab.server.url).set_registered_model_alias(MODEL, "champion", champion)
    held = {
        "reload refused": reload.status_code == 409 and reload.json()["ok"] is False,
        "old model serving": health["model"]["version"] == champion,
        "health reports the failed reload": health["last_reload"] is not None and not health["last_reload"]["ok"],
        "no request failed": result.get("bad_status", 0) == 0 and result.get("refused", 0) == 0,
    }
    return held_outcome(
        "reload while the artifact store is down",
        held,
        0,
        f"/reload {reload.status_code}: '{reload.json().get('message', '')[:100]}'; v{health['model']['version']} "
        f"kept serving {result.get('ok', 0)} requests",
    )


def _mount_small(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


DRIFT_ARGS = ["--months", "2018-04", "--max-per-month", "20", "--max-reference", "40", "--no-mlflow"]


def drift_with_a_full_disk(lab: Lab) -> Outcome:
    lab.seed_champion()
    full = lab.root / "full-disk"
    mounted = _mount_small(full, "64k")
    env = lab.env()
    try:
        if mounted:
            result = lab.sotag("drift", "--data", str(SAMPLE), *DRIFT_ARGS, "--reports-dir", str(full), env=env)
        else:  # no mount rights: a file-size limit stands in for the full disk
            script = (
                "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536)); from sotag.cli import main; "
                "sys.exit(main(sys.argv[1:]))"
            )
            result = subprocess.run(
                [sys.executable, "-c", script, "drift", "--data", str(SAMPLE), *DRIFT_ARGS, "--reports-dir", str(full)],
                env=env, capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
        left = sorted(p.name for p in full.iterdir())
        unwritable = lab.root / "not-a-folder"
        unwritable.write_text("a file where the reports folder should be")
        second = lab.sotag("drift", "--data", str(SAMPLE), *DRIFT_ARGS, "--reports-dir", str(unwritable), env=env)
    finally:
        if mounted:
            subprocess.run(["umount", str(full)], capture_output=True)
    held = {
        "non-zero exit": result.returncode != 0,
        "names the folder": str(full) in result.stderr,
        "nothing half-written left": left == [],
        "unwritable folder named": second.returncode != 0 and str(unwritable) in second.stderr,
        "no traceback": "Traceback" not in result.stderr + second.stderr,
    }
    line = next((x for x in result.stderr.splitlines() if x.startswith("sotag drift: ")), "no message")
    return held_outcome(
        f"drift job with a full disk ({'64 KB tmpfs' if mounted else 'file-size limit'}) and an unwritable folder",
        held,
        0,
        f"exit {result.returncode}, '{line[:140]}'; left behind: {left or 'nothing'}",
    )


def corrupted_embedding_cache(lab: Lab) -> Outcome:
    lab.seed_champion()
    cache_dir = lab.root / "corrupt-cache"
    cache_dir.mkdir()
    (cache_dir / "embeddings.sqlite").write_bytes(b"this is not a database" * 100)
    env = lab.env(SOTAG_CACHE=str(cache_dir))
    result = lab.sotag("drift", "--data", str(SAMPLE), *DRIFT_ARGS, "--reports-dir", str(lab.root / "r7"), env=env)
    aside = list(cache_dir.glob("embeddings.sqlite.corrupt-*"))
    import sqlite3

    with contextlib.closing(sqlite3.connect(cache_dir / "embeddings.sqlite")) as conn:
        cached = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    held = {
        "job completes": result.returncode in (0, 4),
        "says so": "embedding cache" in result.stdout and "rebuilt" in result.stdout,
        "corrupt file kept aside": len(aside) == 1,
        "cache rebuilt": cached >= 40,
    }
    return held_outcome(
        "corrupted embedding cache",
        held,
        0,
        f"exit {result.returncode}; moved aside as {aside[0].name if aside else '?'}; {cached} embeddings cached again",
    )


def two_retrains_at_once(lab: Lab) -> Outcome:
    lab.seed_champion()
    before = lab.registry_state()
    procs = [lab.popen(*lab.retrain_args()) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    codes = [p.returncode for p in procs]
    after = lab.registry_state()
    new_events = after["history"][len(before["history"]) :]
    promoted = [c for c in codes if c == 0]
    chain_ok = all(
        e.get("previous") == (new_events[i - 1]["version"] if i else before["aliases"].get("champion"))
        for i, e in enumerate(new_events)
    )
    conflict_clear = all(
        c in (0, 3) or ("conflict" in err.lower() or "another promote" in err.lower())
        for c, (_, err) in zip(codes, outputs, strict=True)
    )
    held = {
        "one champion": after["aliases"].get("champion") in after["versions"],
        "a move per promotion": len(new_events) == len(promoted),
        "history chains": chain_ok,
        "loser exits 3 or says conflict": conflict_clear,
    }
    lab.champion = after["aliases"].get("champion")
    return held_outcome(
        "two retrains at once on the server profile",
        held,
        abs(len(new_events) - len(promoted)),
        f"exit codes {codes}; champion v{lab.champion}; {len(new_events)} new history events",
    )


SCENARIOS: list[Callable[[Lab], Outcome]] = [
    tracking_killed_during_retrain,
    s3_down_while_logging,
    log_database_restarted_under_load,
    sigterm_under_load,
    reload_with_s3_down,
    drift_with_a_full_disk,
    corrupted_embedding_cache,
    two_retrains_at_once,
]
