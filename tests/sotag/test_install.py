"""sotag installed as a regular wheel, used from an empty folder: train -> promote -> gateway /predict -> drift ->
score, with every piece of state in that folder and nothing written under the virtualenv's site-packages."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import requests

from tests.processes import REQUEST_TIMEOUT_S, start_server, stop_server
from tests.support.settings import REPO

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the sotag wheel installed (not editable). Its dependencies are the project
    environment's, read through a .pth line (pip would otherwise fetch torch, Spark and MLflow again): sotag itself
    comes from the wheel alone."""
    root = tmp_path_factory.mktemp("install")
    # The working tree's files (committed or not, git-ignored ones left out) copied, so setuptools' in-tree build
    # folder cannot add a stale module to the wheel.
    source = root / "source"
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    wheels = root / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), "."],
        cwd=source,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = wheels.glob("sotag-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"sotag", wheel.name.split("-py3")[0] + ".dist-info"}, names[:20]
    assert "sotag/data/questions-sample.parquet" in names and "sotag/registry/behaviour_cases.json" in names
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    return venv


def test_the_wheel_runs_the_lifecycle_from_an_empty_folder_with_its_state_there(installed, questions_parquet, tmp_path):
    venv = installed
    site = next((venv / "lib").glob("python3*/site-packages"))
    before = _files(site)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "LANG": "C.UTF-8",
    }

    def sotag(*args: str, ok: tuple[int, ...] = (0,)) -> str:
        done = subprocess.run(
            [str(venv / "bin" / "sotag"), *args], cwd=work, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode in ok, (
            f"sotag {args[0]} exit {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
        return done.stdout

    data = str(questions_parquet)
    found = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sotag, sotag.tagger; print(sotag.__file__, sotag.tagger.__file__)",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert found.startswith(str(site)) and f"{site}/sotag/tagger/" in found  # the wheel's copy, not the checkout's

    assert f"home                            = {work}" in sotag("config").replace("  (default)", "")
    sotag("train", "--data", data, "--split-date", "2018-03-01", "--top-n-tags", "8", "--min-df", "1")
    dry = sotag("promote", "--data", data, "--dry-run", "--floor", "0.1", ok=(0, 3))
    assert "behavioural cases:" in dry  # the cases shipped as package data were read
    assert "PROMOTED v1" in sotag("promote", "--data", data, "--floor", "0.1", "--no-behaviour-cases")

    port = _free_port()
    gateway = start_server(
        [str(venv / "bin" / "sotag"), "gateway", "--port", str(port)],
        {**env, "SOTAG_RELOAD_POLL_S": "0"},
        f"http://127.0.0.1:{port}/health",
        timeout_s=300,
        cwd=str(work),
    )
    try:
        answer = requests.post(
            f"http://127.0.0.1:{port}/predict",
            json={"title": "pandas dataframe join in python", "body": "<p>list comprehension</p>"},
            timeout=REQUEST_TIMEOUT_S,
        )
    finally:
        stop_server(gateway)
    assert answer.status_code == 200, answer.text
    assert answer.json()["tags"] and answer.json()["model"]["version"] == "1"

    sotag("drift", "--data", data, "--months", "2018-05", ok=(0, 4))
    sotag("score", data, "--out", "scored", "--engine", "local")

    state = _files(work)
    assert "mlflow.db" in state and any(p.startswith("mlartifacts/") for p in state)
    assert any(p.startswith(".locks/") for p in state)  # promotion's compare-and-set lock
    assert "predictions.db" in state  # the gateway's prediction log
    assert any(p.startswith("reports/drift/") and p.endswith("summary.json") for p in state)
    assert any(p.startswith(".cache/") for p in state)  # the drift job's embedding cache
    assert any(p.startswith("scored/creation_month=") for p in state)
    assert _files(site) - before == set(), "files written under the virtualenv's site-packages"
