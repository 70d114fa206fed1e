"""The gateway's OpenAPI document tells the truth: schemathesis, run against a live gateway with every check,
finds nothing. Plus the admin routes' guard: 429 after repeated failed attempts, and the token never logged."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sotag.mlruns_config.servers import free_port
from tests.processes import REQUEST_TIMEOUT_S, start_server, stop_server, venv_env

pytestmark = pytest.mark.integration
TOKEN = "fuzz-token-5f0c2a"  # a test token: the point is that it never shows up in a log


@pytest.fixture(scope="module")
def gateway(store) -> Iterator[tuple[str, subprocess.Popen]]:
    env = venv_env(
        {**os.environ, **store.env},
        SOTAG_ADMIN_TOKEN=TOKEN,
        SOTAG_PREDICTION_LOG=f"sqlite:///{store.root / 'fuzz-predictions.db'}",
        # The fuzzer sends many token-less requests on purpose; the limit has its own test below.
        SOTAG_ADMIN_MAX_FAILURES="100000",
    )
    port = free_port()
    proc = start_server(
        [sys.executable, "-m", "sotag", "gateway", "--port", str(port), "--access-log", "--log-level", "debug"],
        env,
        f"http://127.0.0.1:{port}/health",
    )
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop_server(proc)


def test_schemathesis_finds_nothing(gateway, tmp_path: Path):
    base, _ = gateway
    schemathesis = Path(sys.executable).parent / "schemathesis"
    args = [
        str(schemathesis), "run", f"{base}/openapi.json", "--checks", "all", "--max-examples", "25", "--seed", "7",
        "--header", f"Authorization: Bearer {TOKEN}", "--exclude-path", "/admin/retrain",
        "--request-timeout", "30", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    summary = result.stdout[result.stdout.rfind("SUMMARY") :]
    assert result.returncode == 0, result.stdout[-6000:]
    assert "No issues found" in summary or "passed" in summary, summary
    print(summary)


def test_405_names_the_allowed_methods(gateway):
    base, _ = gateway
    response = requests.get(f"{base}/predict", timeout=REQUEST_TIMEOUT_S)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    response = requests.delete(f"{base}/health", timeout=REQUEST_TIMEOUT_S)
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


def test_the_document_states_the_enforced_bounds_and_statuses(gateway):
    base, _ = gateway
    document = requests.get(f"{base}/openapi.json", timeout=REQUEST_TIMEOUT_S).json()
    schemas = document["components"]["schemas"]
    # /predict's threshold: a number (or, in the original API's vocabulary, a numeric string or null)
    threshold = schemas["PredictRequest"]["properties"]["threshold"]["anyOf"][0]
    assert (threshold["minimum"], threshold["maximum"]) == (0.0, 1.0)  # the served model scores probabilities
    threshold = schemas["BatchRequest"]["properties"]["threshold"]
    assert (threshold["type"], threshold["minimum"], threshold["maximum"]) == ("number", 0.0, 1.0)
    questions = document["components"]["schemas"]["BatchRequest"]["properties"]["questions"]
    assert questions["maxItems"] == 1000
    statuses = {path: set(ops[m]["responses"]) for path, ops in document["paths"].items() for m in ops}
    assert statuses["/predict"] == {"200", "400", "413", "500"}
    assert statuses["/predict/batch"] == {"200", "400", "413", "500", "504"}
    assert {"401", "403", "409", "429"} <= statuses["/reload"]
    assert all("422" not in codes for codes in statuses.values())
    # The body a 400 documents is the body a 400 has.
    bad = requests.post(f"{base}/predict", json={"title": "a", "threshold": 2}, timeout=REQUEST_TIMEOUT_S)
    assert bad.status_code == 400 and set(bad.json()) == {"error", "details"}


def test_failed_admin_attempts_are_limited_and_the_token_is_never_logged(store, tmp_path):
    env = venv_env(
        {**os.environ, **store.env},
        SOTAG_ADMIN_TOKEN=TOKEN,
        SOTAG_PREDICTION_LOG=f"sqlite:///{tmp_path / 'p.db'}",
        SOTAG_ADMIN_MAX_FAILURES="3",
        SOTAG_ADMIN_WINDOW_S="60",
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(
        [sys.executable, "-m", "sotag", "gateway", "--port", str(port), "--access-log", "--log-level", "debug"],
        env,
        f"{base}/health",
    )
    try:
        ok = requests.post(f"{base}/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=REQUEST_TIMEOUT_S)
        assert ok.status_code == 200, ok.text
        codes = [
            requests.post(
                f"{base}/reload", headers={"Authorization": f"Bearer wrong-{i}"}, timeout=REQUEST_TIMEOUT_S
            ).status_code
            for i in range(3)
        ]
        assert codes == [401, 401, 401]
        limited = requests.post(
            f"{base}/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=REQUEST_TIMEOUT_S
        )
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
        assert "retry in" in limited.json()["error"]
        # Non-admin routes are not affected.
        assert (
            requests.post(f"{base}/predict", json={"title": "pandas merge"}, timeout=REQUEST_TIMEOUT_S).status_code
            == 200
        )
        metrics = requests.get(f"{base}/metrics", timeout=REQUEST_TIMEOUT_S).text
        assert "sotag_admin_auth_failures_total 3.0" in metrics
    finally:
        stop_server(proc)
    output = proc.stdout.read().decode()
    assert "POST /reload" in output  # the access log is on, at debug level
    assert TOKEN not in output and "wrong-0" not in output
