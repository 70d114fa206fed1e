"""The model carries only itself: the code a version logs is `sotag.tagger` under an empty `sotag` package; a version
loads and answers in an environment built from its own requirements alone; versions logged before the `sotag`
namespace (their code a whole top-level `tagger/` package) still load and answer as they did."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from sotag.infra.tracking import MODEL_NAME
from sotag.registry.resolve import resolve
from sotag.serving.app import create_app
from tests.support.settings import gateway_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BEFORE = FIXTURES / "model-before-sotag-namespace"


def _train_version(questions_parquet: Path) -> str:
    from sotag.cli import main

    tiny = ["--split-date", "2018-03-01", "--top-n-tags", "8", "--min-df", "1", "--max-features", "2000"]
    assert main(["train", "--data", str(questions_parquet), *tiny]) == 0
    return MlflowClient().get_model_version_by_alias(MODEL_NAME, "challenger").version


def _code_files(model_dir: Path) -> list[str]:
    code = model_dir / "code"
    return sorted(str(p.relative_to(code)) for p in code.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_a_new_version_carries_the_model_code_and_nothing_else(tracking, questions_parquet, tmp_path):
    version = _train_version(questions_parquet)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{version}", dst_path=str(tmp_path)))
    files = _code_files(local)
    assert "sotag/__init__.py" in files and "sotag/tagger/pyfunc.py" in files
    assert [f for f in files if f != "sotag/__init__.py" and not f.startswith("sotag/tagger/")] == []
    assert not any(re.search(r"loading|store_errors|/data/|settings", f) for f in files), files
    for path in (local / "code").rglob("*.py"):  # the model code imports nothing of sotag's but itself
        for line in path.read_text().splitlines():
            if re.match(r"\s*(from|import) sotag\b", line):
                assert re.match(r"\s*(from|import) sotag\.tagger\b", line), f"{path}: {line}"
    lines = sum(len(p.read_text().splitlines()) for p in (local / "code").rglob("*.py"))
    repository_tagger = sum(len(p.read_text().splitlines()) for p in (BEFORE / "code").rglob("*.py"))
    assert lines < repository_tagger  # smaller than what a version carried before (the whole tagger/ package)
    # It loads through the one loading path and answers.
    resolved = resolve(f"models:/{MODEL_NAME}/{version}", tracking)
    assert resolved.loaded.pyfunc.predict(pd.DataFrame({"title": ["pandas dataframe join"]}))[0]["tags"]


def _register_folder(client: MlflowClient, folder: Path, artifact_root: str) -> str:
    """Log `folder` (a model as an earlier sotag logged it) in a run and register it, as that sotag did."""
    experiment = client.create_experiment("before-the-namespace", artifact_location=f"{artifact_root}/before")
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(folder), "model")
    client.set_terminated(run.info.run_id)
    if not [m for m in client.search_registered_models() if m.name == MODEL_NAME]:
        client.create_registered_model(MODEL_NAME)
    return client.create_model_version(MODEL_NAME, f"runs:/{run.info.run_id}/model", run.info.run_id).version


def test_a_version_registered_before_the_namespace_still_loads_and_answers_as_before(tracking, tmp_path):
    expected = json.loads((FIXTURES / f"{BEFORE.name}.expected.json").read_text())
    questions = pd.DataFrame(expected["questions"])
    version = _register_folder(tracking.client(), BEFORE, tracking.artifact_root)
    uri = f"models:/{MODEL_NAME}/{version}"

    resolved = resolve(uri, tracking)  # what promotion, monitoring and the gateway load through
    assert resolved.loaded.pyfunc.predict(questions) == expected["answers"]

    config = gateway_config(model_uri=uri, prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}")
    with TestClient(create_app(config)) as client:
        batch = client.post("/predict/batch", json={"questions": expected["questions"]})
    assert batch.status_code == 200, batch.text
    assert [r["tags"] for r in batch.json()["results"]] == [a["tags"] for a in expected["answers"]]


def _fresh_env_answers(model_dir: Path, questions: pd.DataFrame, venv: Path) -> list[dict]:
    """Build a virtualenv from the model's own requirements.txt alone and score `questions` there."""
    requirements = mlflow.pyfunc.get_model_dependencies(str(model_dir))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", requirements], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr[-3000:]
    script = (
        "import json, sys, importlib.util, mlflow.pyfunc, pandas as pd\n"
        "assert importlib.util.find_spec('sotag') is None, 'sotag must not be installed here'\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "answers = model.predict(pd.read_json(sys.argv[2], orient='records'))\n"
        "import sotag\n"
        "shipped = sorted(m for m in sys.modules if m.startswith('sotag.'))\n"
        "print(json.dumps({'answers': answers, 'modules': shipped}))\n"
    )
    data = model_dir.parent / "questions.json"
    questions.to_json(data, orient="records")
    run = subprocess.run(
        [str(python), "-c", script, str(model_dir), str(data)],
        capture_output=True,
        text=True,
        cwd=model_dir.parent,
        env={"PATH": "/usr/bin:/bin", "HOME": str(venv)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert all(m.startswith("sotag.tagger") for m in out["modules"]), out["modules"]
    return out["answers"]


@pytest.mark.integration
def test_a_version_answers_the_same_in_a_virtualenv_built_from_its_own_requirements(
    tracking, questions_parquet, questions, tmp_path
):
    """What `mlflow models serve --env-manager virtualenv` does: only the version's logged requirements installed
    (from the package registry), sotag absent; the 20 questions get the same tags as in the project's environment."""
    version = _train_version(questions_parquet)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{version}", dst_path=str(tmp_path / "m")))
    sample = questions[questions["creation_date"] >= "2018-03-01"].head(20)[["title", "body"]].reset_index(drop=True)
    here = mlflow.pyfunc.load_model(str(local)).predict(sample)
    there = _fresh_env_answers(local, sample, tmp_path / "venv")
    assert [a["tags"] for a in there] == [a["tags"] for a in here]
    assert all(
        abs(x - y) < 1e-9
        for a, b in zip(there, here, strict=True)
        for x, y in zip(a["scores"], b["scores"], strict=True)
    )
    shutil.rmtree(tmp_path / "venv", ignore_errors=True)


def test_every_module_level_import_of_the_model_code_is_a_logged_requirement():
    """A version's requirements.txt must name every package its code imports when it loads (the default kind's):
    what a fresh environment built from it alone needs."""
    import ast
    from importlib.metadata import packages_distributions

    from sotag.registry.publish import model_code_dir, pip_requirements

    required = {re.split(r"[=<>\[]", r)[0].lower().replace("_", "-") for r in pip_requirements("plt")}
    distributions = packages_distributions()
    imported: dict[str, str] = {}
    for path in model_code_dir().rglob("*.py"):
        for node in ast.parse(path.read_text()).body:  # module level only: a kind's lazy imports are its own
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("sotag", "__future__"):
                    continue
                imported[top] = path.name
    missing = {
        top: where
        for top, where in imported.items()
        if not {d.lower().replace("_", "-") for d in distributions.get(top, [top])} & required
    }
    assert missing == {}, f"imported by the model code but not in its requirements: {missing}"
