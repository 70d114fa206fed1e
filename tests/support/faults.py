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

from sotag.mlruns_config.servers import MlflowServer, MotoS3, PostgresCluster, free_port

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
    # What was observed (exit codes, lines, registry states): the tests assert these, not only `survived`.
    facts: dict = field(default_factory=dict)

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
        """Listen (again); a no-op when already listening, so a scenario's `finally` never hides its own error."""
        if self._server is not None:
            return self
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
class Rule:
    """What `HttpFaultProxy` does to the requests whose method is `method` and whose path starts with `path`:
    `answer` 503 (a plain body, as a load balancer gives) or `drop` the connection unanswered; `before` runs
    `hook` and then forwards; `after` forwards, runs `hook` and drops the answer (the server did the work, the
    client never hears). `times`: how many requests it applies to (None: all); `hits` counts them."""

    method: str
    path: str
    action: str  # "503", "drop", "before", "after"
    hook: Callable[[], object] | None = None
    times: int | None = None
    hits: int = 0


class HttpFaultProxy:
    """An HTTP proxy in front of the tracking server (which also proxies the artifact store), so a scenario can
    fail one kind of request at the moment it matters: the alias read, the alias move, the champion's download.
    Requests no rule matches are forwarded as they are."""

    def __init__(self, target: Callable[[], str]):
        import http.server

        self.target = target
        self.rules: list[Rule] = []
        self.seen: list[str] = []  # "METHOD path" of every request, in order
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rule = proxy._match(self.command, self.path)
                action = rule.action if rule else "forward"
                if action == "503":
                    return self._send(503, b"injected: upstream unavailable", {"Content-Type": "text/plain"})
                if action == "drop":
                    self.close_connection = True
                    return None
                if action == "before" and rule.hook:
                    rule.hook()
                try:
                    upstream = requests.request(
                        self.command, proxy.target() + self.path, data=body or None, timeout=120,
                        headers={k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")},
                    )  # fmt: skip
                except requests.RequestException:
                    self.close_connection = True  # the server is gone: so is the client's connection
                    return None
                if action == "after":
                    if rule.hook:
                        rule.hook()
                    self.close_connection = True
                    return None
                skip = ("content-length", "content-encoding", "transfer-encoding", "connection")
                headers = {k: v for k, v in upstream.headers.items() if k.lower() not in skip}
                return self._send(upstream.status_code, upstream.content, headers)

            def _send(self, status: int, content: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _match(self, method: str, path: str) -> Rule | None:
        with self._lock:
            self.seen.append(f"{method} {path}")
            for rule in self.rules:
                if (
                    rule.method == method
                    and path.startswith(rule.path)
                    and (rule.times is None or rule.hits < rule.times)
                ):
                    rule.hits += 1
                    return rule
        return None

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Lab:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sotag-faults-")))
    pg: PostgresCluster | None = None
    s3: MotoS3 | None = None
    switch: TcpSwitch | None = None
    server: MlflowServer | None = None
    backend: str = ""
    champion: str | None = None
    proxy: HttpFaultProxy | None = None

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
            lambda: self.proxy and self.proxy.stop(),
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

    def history_events(self) -> dict[str, str]:
        """Event key -> the event's JSON, as written: the runs of the history experiment (registry/history.py), and
        any event a registry written before still holds as a registered-model tag."""
        runs = self.sql(
            "SELECT k.value, e.value FROM tags e JOIN tags k ON k.run_uuid = e.run_uuid AND k.key = 'sotag.event_key' "
            "JOIN runs r ON r.run_uuid = e.run_uuid JOIN experiments x ON x.experiment_id = r.experiment_id "
            "WHERE e.key = 'sotag.event' AND x.name = %s",
            (f"{MODEL}-registry-history",),
        )
        tags = self.sql(
            "SELECT key, value FROM registered_model_tags WHERE name = %s AND key LIKE 'sotag.history.%%'", (MODEL,)
        )
        return dict(tags) | dict(runs)

    def registry_state(self) -> dict:
        """Versions with their storage location, aliases, history events: straight from PostgreSQL."""
        versions = self.sql("SELECT version, storage_location, status FROM model_versions WHERE name = %s", (MODEL,))
        aliases = dict(self.sql("SELECT alias, version FROM registered_model_aliases WHERE name = %s", (MODEL,)))
        return {
            "versions": {str(v): (loc, status) for v, loc, status in versions},
            "aliases": {k: str(v) for k, v in aliases.items()},
            "history": sorted((json.loads(v) for v in self.history_events().values()), key=lambda e: e.get("at", "")),
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


def held_outcome(name: str, held: dict[str, bool], lost: int, detail: str, facts: dict | None = None) -> Outcome:
    """Survived when every condition in `held` is true; the detail names the ones that are not."""
    failed = [condition for condition, ok in held.items() if not ok]
    return Outcome(name, not failed, lost, detail + (f"; not held: {', '.join(failed)}" if failed else ""), facts or {})


PAYLOADS = [
    {"title": "How to merge two pandas dataframes", "body": "<p>pd.merge on id</p>"},
    {"title": "React useEffect runs twice", "body": "<p>javascript hooks</p>"},
    {"title": "Docker container cannot reach the host", "body": ""},
    {"title": "SQL join returns duplicates", "body": "<p>select * from a join b</p>"},
]


def _gateway(lab: Lab, log_url: str, workers: int | None = None, **env: str) -> tuple[subprocess.Popen, str]:
    """The gateway with its default workers (one per core), or `workers`."""
    port = free_port()
    proc = lab.popen(
        "gateway", "--port", str(port), *(["--workers", str(workers)] if workers else []),
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
    """Until no worker holds a pending row (the pending gauge is summed over the live workers) and the worker
    answering says its database is healthy."""
    deadline = time.monotonic() + timeout_s
    status = {}
    while time.monotonic() < deadline:
        status = requests.get(f"{base}/health", timeout=5).json()["prediction_log"]
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        pending = re.search(r"^sotag_prediction_log_pending (\S+)", metrics, re.M)
        status["pending"] = float(pending.group(1)) if pending else status["pending"]
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
    # One worker: the scenario reads the refused reload from the worker that was asked (/health is per worker).
    proc, base = _gateway(lab, f"sqlite:///{lab.root / 'reload-predictions.db'}", workers=1)
    try:
        trained = lab.sotag("train", "--data", str(SAMPLE), *TRAIN_ARGS, "--run-name", "reload-target")
        version = re.search(r"models:/[^/]+/(\d+)", trained.stdout)
        if trained.returncode != 0 or version is None:  # the set-up failed, not the fault: say how
            return Outcome("reload while the artifact store is down", False, 0,
                           f"set-up: train exit {trained.returncode}: {trained.stderr[-1500:]}")  # fmt: skip
        client = MlflowClient(lab.server.url, registry_uri=lab.server.url)
        versions = {v.version: v.run_id for v in client.search_model_versions(f"name = '{MODEL}'")}
        if version.group(1) not in versions:
            return Outcome("reload while the artifact store is down", False, 0,
                           f"set-up: train said v{version.group(1)}, the registry holds {versions}; "
                           f"train stdout: {trained.stdout[-800:]}; stderr: {trained.stderr[-800:]}")  # fmt: skip
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
        MlflowClient(lab.server.url, registry_uri=lab.server.url).set_registered_model_alias(
            MODEL, "champion", champion
        )
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


# -- issue 22: the registry never decides on a fault -------------------------------------------------------------


def _faulty(lab: Lab) -> HttpFaultProxy:
    """The lab's HTTP fault proxy in front of the tracking server, with no rule yet."""
    if lab.proxy is None:
        lab.proxy = HttpFaultProxy(lambda: lab.server.url)
    lab.proxy.rules = []
    return lab.proxy


def _switch_on(lab: Lab) -> None:
    if lab.switch._server is None:
        lab.switch.start()


def _snapshot(lab: Lab) -> dict:
    """What a fault must leave as it was: the aliases, every history event as written, every version's tags, with
    its description and its model card (its run's `sotag.card` tag) as two more."""
    aliases = dict(lab.sql("SELECT alias, version FROM registered_model_aliases WHERE name = %s", (MODEL,)))
    history = lab.history_events()
    version_tags: dict[str, dict[str, str]] = {}
    for version, description, card in lab.sql(
        "SELECT v.version, v.description, t.value FROM model_versions v "
        "LEFT JOIN tags t ON t.run_uuid = v.run_id AND t.key = 'sotag.card' WHERE v.name = %s",
        (MODEL,),
    ):
        version_tags[str(version)] = {"description": description or ""} | ({"card": card} if card else {})
    for version, key, value in lab.sql("SELECT version, key, value FROM model_version_tags WHERE name = %s", (MODEL,)):
        version_tags.setdefault(str(version), {})[key] = value
    return {"aliases": {k: str(v) for k, v in aliases.items()}, "history": history, "version_tags": version_tags}


def _changes(before: dict, after: dict) -> list[str]:
    """What changed in @champion, the history and the tags of every version `before` knew (new versions aside,
    and @challenger, which a retrain points at the version it trained before judging it)."""
    changes = []
    if after["aliases"].get("champion") != before["aliases"].get("champion"):
        changes.append(f"@champion {before['aliases'].get('champion')} -> {after['aliases'].get('champion')}")
    changes += [f"history {key}" for key in sorted(set(before["history"]) ^ set(after["history"]))]
    changes += [f"history {k} rewritten" for k, v in before["history"].items() if after["history"].get(k, v) != v]
    for version, tags in before["version_tags"].items():
        now = after["version_tags"].get(version, {})
        changes += [f"v{version} tag {k}" for k in sorted(set(tags) | set(now)) if tags.get(k) != now.get(k)]
    return changes


def _same_for(before: dict, after: dict) -> bool:
    return not _changes(before, after)


def _new_version(lab: Lab, run_name: str) -> str:
    trained = lab.sotag("train", "--data", str(SAMPLE), *TRAIN_ARGS, "--run-name", run_name)
    found = re.search(r"models:/[^/\s]+/(\d+)", trained.stdout)
    if trained.returncode != 0 or found is None:
        raise RuntimeError(f"training a challenger failed: {trained.stderr[-2000:]}")
    return found.group(1)


def _artifact_path(lab: Lab, version: str) -> str:
    """The version's files relative to the artifact root (mlflow-artifacts:/X is s3://BUCKET/mlartifacts/X)."""
    location = lab.registry_state()["versions"][version][0]
    return re.sub(r"^mlflow-artifacts:/+", "", location).rstrip("/")


def _said(stderr: str, command: str) -> str:
    return next((x for x in stderr.splitlines() if x.startswith(f"sotag {command}: ")), "no message")


def _promote_args(version: str, *extra: str) -> list[str]:
    return ["promote", "--version", version, "--data", str(SAMPLE), *GATE_ARGS, *extra]


def artifact_store_gone_while_the_champion_downloads(lab: Lab) -> Outcome:
    champion = lab.seed_champion()
    challenger = _new_version(lab, "artifact-store-gone")
    proxy = _faulty(lab)
    through = lab.env(MLFLOW_TRACKING_URI=proxy.url)
    # The moment the champion's first file is asked for (proxied, or presigned: then fetched from S3 itself),
    # the artifact store goes away, and stays away.
    path = _artifact_path(lab, champion)
    asks = [f"/api/2.0/mlflow-artifacts/{way}/{path}/" for way in ("artifacts", "presigned")]
    before = _snapshot(lab)
    try:
        proxy.rules = [Rule("GET", ask, "before", hook=lab.switch.stop) for ask in asks]
        promote = lab.sotag(*_promote_args(challenger), env=through)
        after_promote = _snapshot(lab)
        _switch_on(lab)
        proxy.rules = [Rule("GET", ask, "before", hook=lab.switch.stop) for ask in asks]
        retrain = lab.sotag(*lab.retrain_args(), env=through)
        after_retrain = _snapshot(lab)
    finally:
        proxy.rules = []
        _switch_on(lab)
    retrained = sorted(set(after_retrain["version_tags"]) - set(before["version_tags"]), key=int)
    rerun = lab.sotag(*_promote_args(challenger))
    lab.champion = lab.registry_state()["aliases"].get("champion")
    facts = {
        "champion": champion,
        "challenger": challenger,
        "promote_exit": promote.returncode,
        "promote_line": _said(promote.stderr, "promote"),
        "promote_traceback": "Traceback" in promote.stderr,
        "unchanged_after_promote": _same_for(before, after_promote),
        "changed_by_promote": _changes(before, after_promote),
        "challenger_stamped": after_promote["version_tags"].get(challenger, {}).get("gate_decision"),
        "retrain_exit": retrain.returncode,
        "retrain_line": _said(retrain.stderr, "retrain"),
        "unchanged_after_retrain": _same_for(before, after_retrain),
        "changed_by_retrain": _changes(before, after_retrain),
        "retrained_stamped": [after_retrain["version_tags"].get(v, {}).get("gate_decision") for v in retrained],
        "rerun_exit": rerun.returncode,
        "rerun_compared": f"champion v{champion}" in rerun.stdout,
    }
    held = {
        "promote exit 1": facts["promote_exit"] == 1,
        "names the artifact store": "artifact store" in facts["promote_line"] and not facts["promote_traceback"],
        "nothing changed by promote": facts["unchanged_after_promote"] and facts["challenger_stamped"] is None,
        "retrain exit 1 naming the artifact store": facts["retrain_exit"] == 1
        and "artifact store" in facts["retrain_line"],
        "nothing changed by retrain": facts["unchanged_after_retrain"] and facts["retrained_stamped"] in ([None], []),
        "rerun compares and decides": facts["rerun_exit"] in (0, 3) and facts["rerun_compared"],
    }
    return held_outcome(
        "artifact store gone while promote and retrain download the champion",
        held,
        0,
        f"promote exit {promote.returncode}, retrain exit {retrain.returncode}: '{facts['promote_line'][:110]}'; "
        f"registry unchanged; rerun exit {rerun.returncode} compared with champion v{champion}",
        facts,
    )


def tracking_unavailable_on_the_alias_read(lab: Lab) -> Outcome:
    champion = lab.seed_champion()
    challenger = _new_version(lab, "alias-read-503")
    proxy = _faulty(lab)
    through = lab.env(MLFLOW_TRACKING_URI=proxy.url)
    # Every read of an alias: sotag's (the registered model, aliases included) and MLflow's by-alias endpoint.
    reads = ("/api/2.0/mlflow/registered-models/get", "/api/2.0/mlflow/registered-models/alias")
    before = _snapshot(lab)
    try:
        proxy.rules = [Rule("GET", path, "503") for path in reads]
        promote = lab.sotag(*_promote_args(challenger), env=through)
        proxy.rules = [Rule("GET", path, "drop") for path in reads]
        rollback = lab.sotag("rollback", env=through)
    finally:
        proxy.rules = []
    after = _snapshot(lab)
    facts = {
        "champion": champion,
        "promote_exit": promote.returncode,
        "promote_line": _said(promote.stderr, "promote"),
        "rollback_exit": rollback.returncode,
        "rollback_line": _said(rollback.stderr, "rollback"),
        "traceback": "Traceback" in promote.stderr + rollback.stderr,
        "unchanged": _same_for(before, after) and after["aliases"] == before["aliases"],
        "champion_after": after["aliases"].get("champion"),
    }
    held = {
        "promote exit 1 naming the tracking server": facts["promote_exit"] == 1
        and "tracking server" in facts["promote_line"],
        "rollback exit 1 naming the tracking server": facts["rollback_exit"] == 1
        and "tracking server" in facts["rollback_line"],
        "no traceback": not facts["traceback"],
        "nothing moved": facts["unchanged"] and facts["champion_after"] == champion,
    }
    return held_outcome(
        "tracking server 503 / dropped connection on the alias read (promote, rollback)",
        held,
        0,
        f"promote exit {promote.returncode} '{facts['promote_line'][:100]}'; rollback exit {rollback.returncode}; "
        f"champion v{facts['champion_after']} unmoved",
        facts,
    )


def tracking_killed_between_alias_move_and_history(lab: Lab) -> Outcome:
    champion = lab.seed_champion()
    challenger = _new_version(lab, "killed-mid-move")
    proxy = _faulty(lab)
    through = lab.env(MLFLOW_TRACKING_URI=proxy.url)
    try:
        # The alias move reaches the server, which dies before the client hears back (or writes anything else).
        proxy.rules = [Rule("POST", "/api/2.0/mlflow/registered-models/alias", "after", hook=lab.kill_server, times=1)]
        promote = lab.sotag(*_promote_args(challenger), env=through)
    finally:
        proxy.rules = []
    crashed = lab.registry_state()  # straight from PostgreSQL: the server is down
    lab.start_server()
    status = lab.sotag("status")
    repaired = lab.registry_state()
    rollback = lab.sotag("rollback")
    final = lab.registry_state()
    lab.champion = final["aliases"].get("champion")
    new_events = [e for e in final["history"] if e.get("version") == challenger and e.get("previous") == champion]
    facts = {
        "champion": champion,
        "challenger": challenger,
        "promote_exit": promote.returncode,
        "promote_line": _said(promote.stderr, "promote"),
        "alias_after_crash": crashed["aliases"].get("champion"),
        "states_after_crash": [e.get("state", "done") for e in crashed["history"]],
        "status_exit": status.returncode,
        "status_interrupted": [x for x in status.stdout.splitlines() if x.startswith("INTERRUPTED MOVE")],
        "states_after_status": [e.get("state", "done") for e in repaired["history"]],
        "rollback_exit": rollback.returncode,
        "rollback_line": next((x for x in rollback.stdout.splitlines() if x.startswith("rollback:")), ""),
        "alias_after_rollback": final["aliases"].get("champion"),
        "move_recorded": len(new_events) == 1 and new_events[0].get("state") == "done",
    }
    held = {
        "promote exit 1 naming the tracking server": facts["promote_exit"] == 1
        and "tracking server" in facts["promote_line"],
        "the interrupted move is pending": facts["alias_after_crash"] == challenger
        and facts["states_after_crash"][-1:] == ["pending"],
        "status reports and completes it": facts["status_exit"] == 0
        and len(facts["status_interrupted"]) == 1
        and "pending" not in facts["states_after_status"],
        "rollback goes back to the previous champion": facts["rollback_exit"] == 0
        and facts["alias_after_rollback"] == champion,
        "the move is in the history": facts["move_recorded"],
    }
    return held_outcome(
        "tracking server killed between the alias move and the history write",
        held,
        0 if facts["move_recorded"] else 1,
        f"promote exit {promote.returncode}; @champion v{facts['alias_after_crash']} with a pending event; "
        f"status: '{(facts['status_interrupted'] or ['no report'])[0][:110]}'; "
        f"rollback to v{facts['alias_after_rollback']}",
        facts,
    )


def broken_champion_sha256(lab: Lab) -> Outcome:
    champion = lab.seed_champion()
    challenger = _new_version(lab, "over-a-broken-champion")
    s3 = lab.s3.client()
    prefix = f"mlartifacts/{_artifact_path(lab, champion)}/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    key = next(k for k in keys if k.endswith("/estimator.joblib"))
    original = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=original + b"altered")  # no longer its recorded sha256
    before = _snapshot(lab)
    try:
        kept = lab.sotag(*_promote_args(challenger))
        after_kept = _snapshot(lab)
        forced = lab.sotag(*_promote_args(challenger, "--replace-broken-champion"))
    finally:
        s3.put_object(Bucket=BUCKET, Key=key, Body=original)
    state = lab.registry_state()
    lab.champion = state["aliases"].get("champion")
    last = state["history"][-1] if state["history"] else {}
    facts = {
        "champion": champion,
        "challenger": challenger,
        "kept_exit": kept.returncode,
        "kept_line": _said(kept.stderr, "promote"),
        "unchanged_when_kept": _same_for(before, after_kept),
        "forced_exit": forced.returncode,
        "champion_after": state["aliases"].get("champion"),
        "last_event": last,
    }
    held = {
        "exit 3 naming the broken champion": facts["kept_exit"] == 3
        and f"champion v{champion} is broken" in facts["kept_line"],
        "nothing changed without the flag": facts["unchanged_when_kept"],
        "the flag promotes": facts["forced_exit"] == 0 and facts["champion_after"] == challenger,
        "the history says how": last.get("previous") == champion
        and "--replace-broken-champion" in last.get("reason", ""),
    }
    return held_outcome(
        "champion whose estimator.joblib fails its sha256",
        held,
        0,
        f"promote exit {kept.returncode} '{facts['kept_line'][:100]}'; with --replace-broken-champion exit "
        f"{forced.returncode}, v{facts['champion_after']} champion, history: '{last.get('reason', '')[:80]}'",
        facts,
    )


def drift_retrain_with_the_tracking_server_down(lab: Lab) -> Outcome:
    import mlflow.artifacts
    from mlflow.tracking import MlflowClient

    champion = lab.seed_champion()
    model_dir = lab.root / f"drift-champion-v{champion}"
    if not model_dir.exists():  # the drift job reads a local copy: only its retrain needs the tracking server
        source = MlflowClient(lab.server.url, lab.server.url).get_model_version_download_uri(MODEL, champion)
        mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(model_dir), tracking_uri=lab.server.url)
    model_dir = next(model_dir.rglob("MLmodel")).parent
    always = lab.root / "always-alert.json"
    always.write_text(json.dumps({"embedding_drift_auc": {"family": "embeddings", "direction": "above", "warn": 0.0,
                                                          "alert": 0.0}}))  # fmt: skip
    before, runs_before = _snapshot(lab), lab.runs()
    lab.kill_server()
    try:
        drift = lab.sotag(
            # A local copy records no training window: the reference months are named.
            "drift", "--data", str(SAMPLE), *DRIFT_ARGS, "--reference", "2018-01..2018-03", "--model-uri",
            str(model_dir), "--thresholds", str(always),
            "--reports-dir", str(lab.root / "drift-retrain-reports"), "--on-alert", "retrain",
        )  # fmt: skip
    finally:
        lab.start_server()
    after, runs_after = _snapshot(lab), lab.runs()
    facts = {
        "drift_exit": drift.returncode,
        "drift_line": _said(drift.stderr, "drift"),
        "alert": "drift: ALERT" in drift.stdout,
        "retrain_lines": [x for x in drift.stdout.splitlines() if x.startswith("drift: retrain")],
        "traceback": "Traceback" in drift.stderr,
        "unchanged": after == before,
        "new_runs": [r for r in runs_after if r not in runs_before],
    }
    line = facts["retrain_lines"][0] if facts["retrain_lines"] else ""
    held = {
        "drift exit 4 with its result": facts["drift_exit"] == 4 and facts["alert"],
        "failed retrain in one line naming the tracking server": len(facts["retrain_lines"]) == 1
        and line.startswith("drift: retrain FAILED (exit 1)")
        and "tracking server" in line,
        "no traceback": not facts["traceback"],
        "nothing half-done": facts["unchanged"] and not facts["new_runs"],
    }
    return held_outcome(
        "drift --on-alert retrain with the tracking server down",
        held,
        len(facts["new_runs"]),
        f"drift exit {drift.returncode}{'' if drift.returncode == 4 else ' ' + facts['drift_line'][:100]}; "
        f"'{line[:140]}'; registry unchanged, "
        f"{len(facts['new_runs'])} new runs",
        facts,
    )


def score_and_gateway_with_the_tracking_server_down(lab: Lab) -> Outcome:
    lab.seed_champion()
    lab.kill_server()
    try:
        score = lab.sotag("score", str(SAMPLE), "--out", str(lab.root / "score-down"), "--no-progress", timeout=300)
        gateway = lab.popen(
            "gateway", "--port", str(free_port()),
            env=lab.env(SOTAG_PREDICTION_LOG=f"sqlite:///{lab.root / 'down-predictions.db'}",
                        SOTAG_ADMIN_TOKEN=TOKEN, SOTAG_SPOOL_DIR=str(lab.root / "spool-down")),
        )  # fmt: skip
        try:
            _, gateway_err = gateway.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            _stop_gateway(gateway)
            gateway_err = "the gateway started without its model's registry"
    finally:
        lab.start_server()
    facts = {
        "score_exit": score.returncode,
        "score_line": _said(score.stderr, "score"),
        "gateway_exit": gateway.returncode,
        "gateway_line": _said(gateway_err, "gateway"),
        "traceback": "Traceback" in score.stderr + gateway_err,
    }
    held = {
        "score exit 1 naming the tracking server": facts["score_exit"] == 1
        and "tracking server" in facts["score_line"],
        "gateway exit 1 naming the tracking server": facts["gateway_exit"] == 1
        and "tracking server" in facts["gateway_line"],
        "not 'not in the registry'": "not in the registry" not in facts["score_line"] + facts["gateway_line"],
        "no traceback": not facts["traceback"],
    }
    return held_outcome(
        "score and the gateway's start with the tracking server down",
        held,
        0,
        f"score exit {score.returncode} '{facts['score_line'][:90]}'; gateway exit {gateway.returncode}",
        facts,
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
    artifact_store_gone_while_the_champion_downloads,
    tracking_unavailable_on_the_alias_read,
    tracking_killed_between_alias_move_and_history,
    drift_retrain_with_the_tracking_server_down,
    score_and_gateway_with_the_tracking_server_down,
    broken_champion_sha256,  # last: the champion it breaks is replaced
]
