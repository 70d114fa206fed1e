"""docs/serving.md "Use it with MLflow's own tools", run as written from another folder against a store with a champion.

The section's shell lines run through bash in a temporary folder, starting from a bare PATH (no venv) and no
MLflow setting: the `cd` / `export` lines as the prefix of every command, `/path/to/sotag` and `/any/folder`
standing for the checkout and the temporary folder, and the store's URI for the checkout's own `mlflow.db`.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from mlflow.tracking import MlflowClient

from sotag.infra.tracking import MODEL_NAME
from sotag.mlruns_config.servers import free_port
from tests.processes import bare_env, start_server, stop_server
from tests.support.settings import REPO

pytestmark = pytest.mark.integration
SECTION = "## Use it with MLflow's own tools"


def _section_blocks() -> dict[str, list[str]]:
    text = (REPO / "docs" / "serving.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(bash|python)\n(.*?)```", section, flags=re.S)
    return {kind: body.splitlines() for kind, body in blocks}


def _shell_lines(store_uri: str, folder: Path) -> tuple[str, list[str]]:
    """(prefix, commands): the section's bash block with the checkout, the folder and the store filled in."""
    prefix, commands = [], []
    for line in _section_blocks()["bash"]:
        line = line.split("  #", 1)[0].strip()
        if not line:
            continue
        line = line.replace("/path/to/sotag", str(REPO)).replace("/any/folder", str(folder))
        line = line.replace('"sqlite:///$PWD/mlflow.db"', f'"{store_uri}"')
        (prefix if line.startswith(("cd ", "export ")) else commands).append(line)
    return " && ".join(prefix), commands


def _bash(prefix: str, command: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f"{prefix} && {command}"],
        env=bare_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _one(commands: list[str], start: str) -> str:
    found = [c for c in commands if c.startswith(start)]
    assert len(found) == 1, f"the docs section has no single line starting {start!r}: {commands}"
    return found[0]


def test_mlflow_tools_from_another_folder(store, tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    uri = store.env["MLFLOW_TRACKING_URI"]
    prefix, commands = _shell_lines(uri, folder)

    # Before the export lines, MLflow's scoring server finds no uvicorn (what the docs warn about).
    port = free_port()
    serve = _one(commands, "mlflow models serve").replace("-p 5001", f"-p {port}")
    bare = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), *serve.split()[1:]],
        cwd=folder,
        env={**bare_env(), "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bare.returncode != 0 and "uvicorn" in bare.stdout + bare.stderr

    # mlflow models serve, as written (its port made free).
    proc = start_server(
        ["bash", "-c", f"{prefix} && exec {serve}"],
        bare_env(),
        f"http://127.0.0.1:{port}/ping",
        timeout_s=180,
    )
    try:
        echo = _one(commands, "echo ")
        assert _bash(prefix, echo).returncode == 0
        payload = json.loads((folder / "question.json").read_text(encoding="utf-8"))
        served = requests.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=30)
        assert served.status_code == 200, served.text
        answer = served.json()["predictions"][0]
        assert answer["tags"][0] == "python" and 1 <= len(answer["tags"]) <= 3
    finally:
        stop_server(proc)

    # mlflow models predict, as written: the same answer.
    predicted = _bash(prefix, _one(commands, "mlflow models predict"))
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert json.loads(predicted.stdout.strip().splitlines()[-1]) == {"predictions": [answer]}

    # validate_serving_input on the saved serving example, as written.
    script = "\n".join(_section_blocks()["python"])
    validated = _bash(prefix, f"python -c {shlex.quote(script)}")
    assert validated.returncode == 0, validated.stderr[-2000:]
    assert "'tags': [" in validated.stdout

    # mlflow run, as written (with a small configuration): the run lands in experiment stackoverflow-tagger.
    run = _one(commands, "mlflow run")
    params = f"-P data={store.data} -P split_date=2018-03-01 -P top_n_tags=8"
    launched = _bash(prefix, f"{run} {params}", timeout_s=600)
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert "(experiment 'stackoverflow-tagger')" in launched.stdout
    client = MlflowClient(uri, uri)
    version = client.get_model_version_by_alias(MODEL_NAME, "challenger")
    trained = client.get_run(version.run_id)
    assert trained.data.tags["mlflow.project.entryPoint"] == "train"
    assert client.get_experiment(trained.info.experiment_id).name == "stackoverflow-tagger"

    # The entry points do not depend on PATH: mlflow run with the venv nowhere on it.
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    promote_args = [*run.replace("-e train", "-e promote").split()[1:], "-P", f"data={store.data}", "-P", "floor=0.999"]
    no_path = subprocess.run(
        [mlflow_bin, *promote_args],
        cwd=folder,
        env={**bare_env(), "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = no_path.stdout + no_path.stderr
    assert "command not found" not in output
    assert "promote: KEPT" in output, output[-3000:]

    # Nothing was created in the folder the tools ran from but the question file.
    assert sorted(p.name for p in folder.iterdir()) == ["question.json"]
