"""Every shell line of the README and the getting-started page, run as written from a bare copy of the checkout.

The copy holds what `git clone` gives (the files git tracks, plus the untracked ones it would not ignore, so a local
edit is what runs): no `mlflow.db`, no `mlartifacts/`, no `../shared` beside it (so the bundled sample is the data),
and a `.venv` whose contents are this checkout's (linked, not reinstalled: `make setup` finds it up to date). The
lines run in page order (the README first) through bash in that folder with a user's bare PATH and no MLflow or
sotag setting, each distinct line once. A line that starts a server (`make ui`, `serve`, `gateway`, `app`) is
started on a free port (its port variable set, or replaced where the page names a port), asked a question once it
answers, then stopped as a terminal's Ctrl-C does: the whole process group must be gone and the output must hold
no traceback. Every other line must exit 0, or with the code the page documents as an answer (promote 3 = kept,
drift 4 = alert). `make test` is the one line not run: it is the command this suite runs inside.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient

from sotag.infra.tracking import MODEL_NAME
from sotag.mlruns_config.servers import free_port
from tests.docs.shell_blocks import COMMAND_PAGES, shell_lines
from tests.processes import bare_env, wait_until_ready
from tests.support.settings import REPO

pytestmark = pytest.mark.integration

NOT_RUN = {"make test": "the command this suite runs inside (CI runs it on a clean clone)"}
# The exit codes a sotag command documents as an answer rather than a failure.
ANSWER_CODES = {"promote": {0, 3}, "drift": {0, 4}}
COMMAND_TIMEOUT_S = 1500
READY_TIMEOUT_S = 600
STOP_TIMEOUT_S = 90
QUESTION = {"title": "How to merge two pandas DataFrames?", "body": ""}


@dataclass(frozen=True)
class Server:
    """A make target that stays up: the variable naming its port, where it answers once ready, what to ask."""

    port_variable: str
    ready_path: str
    ask: Callable[[str, Path], None]


def _ask_ui(url: str, log: Path) -> None:
    answer = requests.get(f"{url}/ajax-api/2.0/mlflow/registered-models/get", params={"name": MODEL_NAME}, timeout=60)
    assert answer.status_code == 200, answer.text[:500]
    _wait_for_line(log, "registered model", f"{url}/#/models/{MODEL_NAME}")


def _ask_serve(url: str, log: Path) -> None:
    body = {"dataframe_records": [QUESTION], "params": {"top_k": 3}}
    answer = requests.post(f"{url}/invocations", json=body, timeout=120)
    assert answer.status_code == 200, answer.text[:500]
    assert "pandas" in answer.text, answer.text[:500]


def _ask_gateway(url: str, log: Path) -> None:
    answer = requests.post(f"{url}/predict", json=QUESTION, timeout=120)
    assert answer.status_code == 200, answer.text[:500]
    # getting-started: trained on the bundled sample, the demo's champion answers this with pandas and python.
    assert {"pandas", "python"} <= set(answer.json()["tags"]), answer.json()
    assert answer.json()["model"]["alias"] == "champion", answer.json()


def _ask_app(url: str, log: Path) -> None:
    assert requests.get(url, timeout=60).status_code == 200


SERVERS = {
    "ui": Server("PORT", "/health", _ask_ui),
    "serve": Server("SERVE_PORT", "/ping", _ask_serve),
    "gateway": Server("GATEWAY_PORT", "/health", _ask_gateway),
    "app": Server("APP_PORT", "/_stcore/health", _ask_app),
}


# --- the bare copy ------------------------------------------------------------------------------------------------


def _bare_copy(destination: Path) -> Path:
    """The checkout as a clone would have it, with this checkout's virtualenv linked in (made up to date for make)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is not in a clone of it either
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name, follow_symlinks=False)
    venv = destination / ".venv"
    venv.mkdir()
    for entry in (REPO / ".venv").iterdir():
        if entry.name != ".installed":
            (venv / entry.name).symlink_to(entry)
    (venv / ".installed").touch()  # newer than the copied requirements: `make setup` has nothing to do
    return destination


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout to copy what a clone holds")
    return _bare_copy(tmp_path_factory.mktemp("bare") / "sotag")


# --- running one line ---------------------------------------------------------------------------------------------


def _target(line: str) -> str | None:
    words = shlex.split(line)
    names = [w for w in words[1:] if "=" not in w and not w.startswith("-")] if words[:1] == ["make"] else []
    return names[0] if len(names) == 1 else None


def _sotag_sub(line: str) -> str | None:
    words = shlex.split(line)
    if words[:1] == ["make"]:
        return _target(line)
    return words[1] if len(words) > 1 and words[0].endswith("sotag") else None


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-chars:]


def _wait_for_line(log: Path, *needles: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if all(n in text for n in needles):
            return
        time.sleep(0.5)
    raise AssertionError(f"the output never showed {needles}: {_tail(log)}")


def _documented_exit(line: str, code: int, output: str) -> bool:
    """0, or a code the sotag command documents as an answer (through make, which exits 2, its own line says it)."""
    if code == 0:
        return True
    allowed = ANSWER_CODES.get(_sotag_sub(line) or "", set())
    if shlex.split(line)[:1] == ["make"]:
        said = re.search(r"sotag \S+ exited (\d+)", output)
        return code == 2 and said is not None and int(said.group(1)) in allowed
    return code in allowed


def _run_to_the_end(line: str, checkout: Path, log: Path) -> None:
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(
            ["bash", "-c", line], cwd=checkout, env=bare_env(), stdout=out, stderr=subprocess.STDOUT,
            timeout=COMMAND_TIMEOUT_S, check=False,
        )  # fmt: skip
    output = log.read_text(encoding="utf-8", errors="replace")
    assert _documented_exit(line, done.returncode, output), f"exit {done.returncode}: {_tail(log)}"
    assert "Traceback" not in output, _tail(log)
    assert _all_stopped(checkout, STOP_TIMEOUT_S) == [], f"still running after the command ended: {_tail(log)}"


def _on_a_free_port(line: str, variable: str) -> tuple[str, int]:
    """The line with its server's port variable set to a free port (replaced where the page names one)."""
    port = free_port()
    pattern = rf"\b{variable}=\S+"
    if re.search(pattern, line):
        return re.sub(pattern, f"{variable}={port}", line), port
    return f"{line} {variable}={port}", port


def _processes_in(folder: Path) -> list[int]:
    """The processes running in `folder` (their working directory): what a line started there and left behind,
    whatever session or group it moved to (`mlflow ui` and `mlflow models serve` run in their own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if cwd == folder or folder in cwd.parents:
                found.append(int(entry.name))
    return found


def _all_stopped(folder: Path, timeout_s: float) -> list[int]:
    """Wait until nothing runs in `folder`; what still runs after `timeout_s` (then killed)."""
    deadline = time.monotonic() + timeout_s
    while (left := _processes_in(folder)) and time.monotonic() < deadline:
        time.sleep(0.3)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def _as_a_terminal() -> None:
    """A terminal's foreground job takes Ctrl-C: undo the SIGINT / SIGQUIT an ignoring parent passed down (a
    background `cmd &` of a non-interactive shell, as CI runners start the suite, ignores both, and the exec'd
    children inherit it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def _serve_then_stop(line: str, server: Server, checkout: Path, log: Path) -> None:
    command, port = _on_a_free_port(line, server.port_variable)
    url = f"http://127.0.0.1:{port}"
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            ["bash", "-c", command], cwd=checkout, env=bare_env(), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_as_a_terminal,
        )  # fmt: skip
    try:
        wait_until_ready(proc, f"{url}{server.ready_path}", READY_TIMEOUT_S, f"`{command}`", lambda: _tail(log))
        server.ask(url, log)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole foreground group
        left = _all_stopped(checkout, STOP_TIMEOUT_S)
        proc.wait(timeout=30)
    assert left == [], f"`{command}`: processes {left} still ran {STOP_TIMEOUT_S} s after Ctrl-C: {_tail(log)}"
    assert "Traceback" not in log.read_text(encoding="utf-8", errors="replace"), _tail(log)


# --- what some lines leave behind ---------------------------------------------------------------------------------


def _client(checkout: Path) -> MlflowClient:
    uri = f"sqlite:///{checkout / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _left_behind(line: str, checkout: Path, before: dict[str, int]) -> None:
    """What the page says the line leaves: a champion after demo, a new @challenger after train, every question
    scored, a drift report."""
    target = _target(line)
    if target == "demo":
        assert (checkout / "mlartifacts").is_dir()
        assert _client(checkout).get_model_version_by_alias(MODEL_NAME, "champion")
    elif target == "train":
        versions = _client(checkout).search_model_versions(f"name='{MODEL_NAME}'")
        assert len(versions) == before["versions"] + 1
        newest = max(int(v.version) for v in versions)
        assert str(_client(checkout).get_model_version_by_alias(MODEL_NAME, "challenger").version) == str(newest)
    elif target == "score":
        words = dict(w.split("=", 1) for w in shlex.split(line)[1:] if "=" in w)
        scored = pd.read_parquet(checkout / words["OUT"])
        assert len(scored) == len(pd.read_parquet(checkout / words["IN"]))
    elif target == "drift":
        assert any((checkout / "reports" / "drift").rglob("*.html")), "no drift report written"


def _versions(checkout: Path) -> int:
    if not (checkout / "mlflow.db").exists():
        return 0
    return len(_client(checkout).search_model_versions(f"name='{MODEL_NAME}'"))


# --- the test ---------------------------------------------------------------------------------------------------


def test_the_readme_and_getting_started_shell_lines_run_as_written_from_a_bare_clone(checkout):
    lines = list(dict.fromkeys(line for page in COMMAND_PAGES for line in shell_lines(page)))
    assert lines[0] == "make demo", "the pages start with make demo (every later line needs its champion)"
    assert set(NOT_RUN) <= set(lines), f"lines this test skips are no longer on the pages: {set(NOT_RUN) - set(lines)}"
    logs = checkout.parent / "logs"
    logs.mkdir()
    failures, ran = [], []
    for number, line in enumerate(lines, 1):
        if line in NOT_RUN:
            continue
        log = logs / f"{number:02d}.log"
        server = SERVERS.get(_target(line) or "")
        before = {"versions": _versions(checkout)}
        started = time.monotonic()
        try:
            if server:
                _serve_then_stop(line, server, checkout, log)
            else:
                _run_to_the_end(line, checkout, log)
                _left_behind(line, checkout, before)
        except Exception as exc:  # every line runs; the test lists all that failed
            failures.append(f"`{line}`: {exc}")
        ran.append(f"{time.monotonic() - started:6.1f} s  {line}")
    print("\n".join(ran))
    assert failures == [], "\n\n".join(failures)
    assert len(ran) == len(lines) - len(NOT_RUN)
