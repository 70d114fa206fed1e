"""How sotag's DAGs run sotag: its own command line, in a subprocess, with a settings file and nothing else.

sotag is never installed in Airflow's virtualenv (Airflow caps FastAPI, SQLAlchemy, ...): every task runs
`<repo>/.venv/bin/sotag` (or the Airflow Variable `sotag_bin`, or `$SOTAG_BIN`), passing `--config` with the
settings file the run's `config` param, the Variable `sotag_config` or `$SOTAG_CONFIG` names. A command's exit code
says how it went (docs/operations.md: exit codes); a code the task does not accept fails it with the command's
own last lines.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pendulum
from airflow.exceptions import AirflowException
from airflow.sdk import Param, Variable

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)
TAIL_LINES = 8
# What both DAGs share: no catch-up of missed intervals, one run at a time, and the run's settings file as a param.
DAG_DEFAULTS: dict[str, Any] = {
    "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
    "catchup": False,
    "max_active_runs": 1,
    "tags": ["sotag"],
}
CONFIG_PARAM = Param(None, type=["null", "string"], description="sotag settings file (else Variable sotag_config)")


def setting(params: Mapping[str, Any], name: str, variable: str, env: str | None = None) -> Any:
    """The run's param `name`, else the Airflow Variable `variable`, else `$env`; None when none is set ("" too)."""
    value = params.get(name)
    if value in (None, ""):
        value = Variable.get(variable, default=None)
    if value in (None, "") and env:
        value = os.environ.get(env)
    return None if value in (None, "") else value


def sotag_bin() -> str:
    return Variable.get("sotag_bin", default=None) or os.environ.get("SOTAG_BIN") or str(REPO / ".venv/bin/sotag")


def config_args(params: Mapping[str, Any]) -> list[str]:
    config = setting(params, "config", "sotag_config", "SOTAG_CONFIG")
    return ["--config", str(config)] if config else []


def run_sotag(args: Sequence[str], accept: Sequence[int] = (0,)) -> tuple[int, str]:
    """Run `sotag ARGS`; its output goes to the task's log. (exit code, stdout and then stderr) when the code is in
    `accept`, else AirflowException with the command's last stderr lines (stdout's when stderr is empty)."""
    command = [sotag_bin(), *args]
    log.info("running: %s", " ".join(command))
    try:
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise AirflowException(f"cannot run {command[0]} ({exc.strerror}): set the Variable sotag_bin") from None
    for line in proc.stdout.splitlines():
        log.info("%s", line)
    for line in proc.stderr.splitlines():
        log.warning("%s", line)
    if proc.returncode not in accept:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()][-TAIL_LINES:]
        raise AirflowException(f"sotag {args[0]} exited {proc.returncode}: " + " | ".join(lines))
    return proc.returncode, proc.stdout + proc.stderr


def post_json(url: str, payload: Mapping[str, Any]) -> None:
    """POST `payload` as JSON to `url` (a failing webhook fails the task: nobody would hear of the outcome)."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode("utf-8"), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        log.info("webhook %s answered %s", url, response.status)
