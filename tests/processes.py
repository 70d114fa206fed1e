"""Start a server process for a test, wait until it answers, stop it with its children."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence

import requests

# The deadline of one request to a server the test started and saw ready. Generous on purpose: on a loaded
# machine (load 9 on 2 cores) a first request can take tens of seconds (password hashing, lazy imports, a cold
# model); a deadline is not a wait, so a request that answers in 5 ms returns in 5 ms.
REQUEST_TIMEOUT_S = 300


def start_server(
    args: Sequence[str], env: dict[str, str], ready_url: str, timeout_s: float = 120, cwd: str | None = None
) -> subprocess.Popen:
    """Run `args` in its own session (in `cwd`); return once `ready_url` answers 200 (fail with its output
    otherwise)."""
    proc = subprocess.Popen(
        list(args), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_until_ready(proc, ready_url, timeout_s, str(list(args)[:3]), lambda: proc.stdout.read().decode()[-3000:])
    except AssertionError:
        stop_server(proc)
        raise
    return proc


def wait_until_ready(
    proc: subprocess.Popen, ready_url: str, timeout_s: float, label: str, output: Callable[[], str]
) -> None:
    """Return once `ready_url` answers 200; AssertionError naming `label` if `proc` exits first (with `output()`,
    read only then) or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{label} exited {proc.returncode}: {output()}")
        try:
            # A probe: its own short deadline, repeated until the overall one (a slow answer is retried).
            if requests.get(ready_url, timeout=max(1.0, min(10.0, deadline - time.monotonic()))).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{label} not ready at {ready_url} in {timeout_s} s")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the whole session (uvicorn and mlflow fork workers), then wait."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


BARE_PATH = "/usr/local/bin:/usr/bin:/bin"


def bare_env() -> dict[str, str]:
    """A user's shell: no virtualenv on PATH, no MLflow or sotag setting (this process's other variables kept)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SOTAG_")) and k != "VIRTUAL_ENV"}
    env["PATH"] = BARE_PATH
    return env


def venv_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    """`base` plus `extra`, with this interpreter's bin first on PATH (mlflow models serve needs it)."""
    import sys

    env = {**base, **extra}
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env.get('PATH', '')}"
    return env


def needs_postgres() -> None:
    """Skip the calling test, saying why, where Debian's PostgreSQL binaries are absent (scripts/system-deps.sh
    installs them when it can)."""
    import pytest

    from sotag.mlruns_config.servers import ServerError, pg_binary

    try:
        pg_binary("initdb")
    except ServerError as exc:
        pytest.skip(f"PostgreSQL tests: {exc}")
