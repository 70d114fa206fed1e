"""Start a server process for a test, wait until it answers, stop it with its children."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence

import requests


def start_server(args: Sequence[str], env: dict[str, str], ready_url: str, timeout_s: float = 120) -> subprocess.Popen:
    """Run `args` in its own session; return once `ready_url` answers 200 (fail with its output otherwise)."""
    proc = subprocess.Popen(
        list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{list(args)[:3]} exited: {proc.stdout.read().decode()[-3000:]}")
        try:
            if requests.get(ready_url, timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise AssertionError(f"{list(args)[:3]} not ready at {ready_url} in {timeout_s} s")


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


def venv_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    """`base` plus `extra`, with this interpreter's bin first on PATH (mlflow models serve needs it)."""
    import sys

    env = {**base, **extra}
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env.get('PATH', '')}"
    return env
