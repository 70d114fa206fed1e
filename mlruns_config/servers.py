"""The real components of the server profile, started and stopped on 127.0.0.1.

* `PostgresCluster`: a throwaway cluster from Debian's PostgreSQL binaries (initdb, pg_ctl).
  PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user.
* `MotoS3`: moto's S3 server, an S3-compatible endpoint for tests and the sandbox.
* `MlflowServer`: `mlflow server` with a database backend store and an S3 artifact
  destination (artifacts proxied by the server, so clients need no S3 credentials),
  optionally behind MLflow's basic-auth app.

Used by the integration tests and by `make tracking-server` / `make tracking-server-sandbox`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from sotag.settings import child_environment

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class ServerError(RuntimeError):
    """A component did not start; the message says which and shows its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_binary(name: str) -> str:
    for directory in PG_BIN_DIRS:
        if (directory / name).is_file():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise ServerError(f"{name}: PostgreSQL binaries not found (apt-get install postgresql)")
    return found


def _wait(check, what: str, timeout_s: float, log: Path | None = None, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    state = f"exited with code {proc.returncode}" if proc is not None and proc.poll() is not None else "timed out"
    raise ServerError(f"{what} did not become ready ({state} after at most {timeout_s:.0f} s)\n{tail}")


def _stop(proc: subprocess.Popen | None, timeout_s: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    # Each server runs in its own session: stop its workers too (mlflow server forks uvicorn/gunicorn).
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout_s)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@dataclass
class PostgresCluster:
    """initdb + pg_ctl on a free port; `uri(db)` is a SQLAlchemy URL for a database in it."""

    port: int = field(default_factory=free_port)
    user: str = "sotag"
    datadir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sotag-pg-")))

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    def start(self) -> PostgresCluster:
        if os.geteuid() == 0:
            shutil.chown(self.datadir, "postgres", "postgres")
        pgdata = self.datadir / "data"
        result = self._run(pg_binary("initdb"), "-D", str(pgdata), "-U", self.user, "--auth=trust", "-E", "UTF8")
        if result.returncode != 0:
            raise ServerError(f"initdb failed: {result.stderr.strip()}")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.datadir}"
        log = self.datadir / "postgres.log"
        result = self._run(pg_binary("pg_ctl"), "-D", str(pgdata), "-l", str(log), "-o", options, "-w", "start")
        if result.returncode != 0:
            raise ServerError(f"pg_ctl start failed: {result.stderr.strip()} {result.stdout.strip()}")
        return self

    def restart(self) -> None:
        """pg_ctl restart -m fast: every connection is cut, the data stays."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.datadir}"
        result = self._run(pg_binary("pg_ctl"), "-D", str(self.datadir / "data"), "-m", "fast", "-w", "restart",
                           "-o", options, "-l", str(self.datadir / "postgres.log"))  # fmt: skip
        if result.returncode != 0:
            raise ServerError(f"pg_ctl restart failed: {result.stderr.strip()} {result.stdout.strip()}")

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(self.dsn("postgres"))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.uri(name)

    def uri(self, database: str) -> str:
        # Explicit driver: SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3, not psycopg2.
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str) -> str:
        """libpq connection string, for psycopg2 itself."""
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={database}"

    def stop(self) -> None:
        pgdata = self.datadir / "data"
        if pgdata.exists():
            self._run(pg_binary("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.datadir, ignore_errors=True)


@dataclass
class MotoS3:
    """moto's S3 server; credentials are dummies that only this endpoint accepts."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="sotag-moto-", suffix=".log")[1]))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def credentials() -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    def start(self) -> MotoS3:
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait(lambda: _http_ok(f"{self.endpoint}/moto-api/"), "moto S3 server", 30, self.log, self.proc)
        return self

    def client(self):
        import boto3

        creds = self.credentials()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            region_name=creds["AWS_DEFAULT_REGION"],
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def stop(self) -> None:
        _stop(self.proc)
        self.log.unlink(missing_ok=True)


def _http_ok(url: str, auth: tuple[str, str] | None = None) -> bool:
    try:
        return requests.get(url, timeout=1, auth=auth).status_code < 500
    except requests.RequestException:
        return False


@dataclass
class AuthSettings:
    """MLflow's basic-auth app: the admin account comes from the environment, never the repo."""

    admin_username: str
    admin_password: str
    database_uri: str
    default_permission: str = "READ"
    # Flask's CSRF key; several servers behind one load balancer must share it.
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def write_ini(self, directory: Path) -> Path:
        path = directory / "basic_auth.ini"
        path.write_text(
            "[mlflow]\n"
            f"default_permission = {self.default_permission}\n"
            f"database_uri = {self.database_uri}\n"
            f"admin_username = {self.admin_username}\n"
            f"admin_password = {self.admin_password}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        path.chmod(0o600)
        return path


@dataclass
class MlflowServer:
    """`mlflow server` on 127.0.0.1 with a backend store and a proxied S3 artifact destination."""

    backend_store_uri: str
    artifacts_destination: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    auth: AuthSettings | None = None
    workers: int = 1
    proc: subprocess.Popen | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sotag-mlflow-server-")))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        mlflow = str(Path(sys.executable).parent / "mlflow")
        cmd = [
            mlflow,
            "server",
            "--backend-store-uri",
            self.backend_store_uri,
            "--artifacts-destination",
            self.artifacts_destination,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        if self.auth is not None:
            cmd += ["--app-name", "basic-auth"]
        return cmd

    def start(self, timeout_s: float = 120) -> MlflowServer:
        env = child_environment(None, self.env)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        if self.auth is not None:
            env["MLFLOW_AUTH_CONFIG_PATH"] = str(self.auth.write_ini(self.workdir))
            env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = self.auth.secret_key
        log = self.workdir / "server.log"
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                self.command(), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True
            )
        _wait(lambda: _http_ok(f"{self.url}/health"), "mlflow server", timeout_s, log, self.proc)
        return self

    def log_text(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.workdir, ignore_errors=True)
