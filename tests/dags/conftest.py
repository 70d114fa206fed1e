"""The DAG tests: Airflow's own python (.venv-airflow, `make test-dags`, which passes --confcutdir so sotag's conftests
above are not loaded), Airflow on a throwaway AIRFLOW_HOME (SQLite), and sotag's real CLI (.venv/bin/sotag) on an
embedded store of the tests' own: a temporary sotag home with a settings file, the bundled sample in its inbox.

Airflow reads its configuration when first imported, so the environment is set here, before any test imports it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOTAG = REPO / ".venv" / "bin" / "sotag"
SAMPLE = REPO / "data" / "questions-sample.parquet"
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="sotag-airflow-home-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        "SOTAG_BIN": str(SOTAG),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
)
for _name in ("SOTAG_CONFIG", "SOTAG_HOME", "SOTAG_DATA", "MLFLOW_TRACKING_URI"):
    os.environ.pop(_name, None)

# Small and fast: the serving tests' model (tests/serving/conftest.py SMALL); the gate judges the metrics only (no
# behavioural cases or latency budget on a loaded 2-core machine), and the floor comes from the DAG run's param.
SETTINGS = """\
home = "{home}"

[train]
kind = "tfidf"
top_n_tags = 8
max_features = 2000
min_df = 1
C = 10.0
threshold = 0.2
n_jobs = 1

[promote]
run_behaviour_cases = false
max_latency_ms = 1000000.0

[gateway]
log_text = true  # the daily drift check embeds the logged questions
"""


@dataclass
class SotagHome:
    root: Path
    config: Path  # the settings file every DAG run is given

    def write_config(self, name: str, extra: str = "") -> Path:
        path = self.root / name
        path.write_text(SETTINGS.format(home=self.root) + extra)
        return path

    def sotag(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
        """sotag's CLI, as the DAGs run it."""
        command = [str(SOTAG), *args, "--config", str(config or self.config)]
        return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """Airflow's metadata database on the throwaway AIRFLOW_HOME, migrated once (removed at the end)."""
    if not SOTAG.is_file():
        raise AssertionError(f"{SOTAG} is missing: `make setup` builds sotag's virtualenv")
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    yield AIRFLOW_HOME
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def sotag_home(tmp_path_factory) -> SotagHome:
    root = tmp_path_factory.mktemp("sotag-home")
    (root / "inbox").mkdir()
    shutil.copy(SAMPLE, root / "inbox" / "questions-sample.parquet")
    home = SotagHome(root, root / "sotag.toml")
    home.write_config("sotag.toml")
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: Sequence[str], ready_url: str, env: dict[str, str] | None = None, timeout_s: float = 180):
    """Run `args` in a session of its own; return once `ready_url` answers 200 (fail with its output otherwise)."""
    import requests

    with tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False) as log:
        proc = subprocess.Popen(list(args), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def output() -> str:
        return Path(log.name).read_bytes().decode(errors="replace")[-3000:]

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{list(args)[:3]} exited {proc.returncode}: {output()}")
        try:
            if requests.get(ready_url, timeout=5).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise AssertionError(f"{list(args)[:3]} not ready at {ready_url} in {timeout_s} s: {output()}")


def stop_server(proc: subprocess.Popen, first: int = 15) -> None:
    """Signal the whole session (`first`: SIGTERM; SIGINT for airflow standalone), then SIGKILL what is left."""
    import signal

    try:
        os.killpg(proc.pid, first)
        proc.wait(timeout=60)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@dataclass
class Webhook:
    url: str
    received: list[dict]  # the JSON bodies POSTed, in order


@pytest.fixture()
def webhook() -> Iterator[Webhook]:
    """A webhook receiver on 127.0.0.1 (the standard library's http.server)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Webhook(f"http://127.0.0.1:{server.server_address[1]}/hook", received)
    finally:
        server.shutdown()
        server.server_close()
