"""`mlflow run . -e train|compare --env-manager local` through the MLproject file."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sotag.infra.tracking import use_fluent
from tests.support.settings import REPO


def _mlflow_run(
    entry: str, params: dict[str, str], tmp_path: Path, experiment: str = "stackoverflow-tagger"
) -> subprocess.CompletedProcess:
    # A fresh launcher, as a user's shell would be: no run or experiment inherited from this process.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"}
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    args = [
        sys.executable,
        "-m",
        "mlflow",
        "run",
        str(REPO),
        "-e",
        entry,
        "--env-manager",
        "local",
        "--experiment-name",
        experiment,
    ]
    for key, value in params.items():
        args += ["-P", f"{key}={value}"]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.integration
def test_mlflow_run_train_and_compare(tracking, questions_parquet, tmp_path):
    # Created here, with its artifacts in the test's folder: an experiment that `mlflow run` creates itself
    # on a SQLite store puts its artifacts in ./mlruns of the working directory (the project).
    use_fluent(tracking, "stackoverflow-tagger")
    common = {"data": str(questions_parquet), "split_date": "2018-03-01", "top_n_tags": "8"}
    done = _mlflow_run("train", common, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "quality: P@1=" in done.stdout
    client = MlflowClient()
    version = client.get_model_version_by_alias("stackoverflow-tagger", "challenger")
    run = client.get_run(version.run_id)
    assert run.data.tags["mlflow.project.entryPoint"] == "train"
    assert run.data.params["vectorizer"] == "plt"  # the default, logged by sotag: the launcher passed nothing for it
    assert run.data.params["split_date"] == "2018-03-01" and run.data.params["top_n_tags"] == "8"
    # No param holds the launcher's quoted empty default: a parameter left out is not passed, nor logged as ''.
    assert [k for k, v in run.data.params.items() if v == "''" and k != "data"] == []

    done = _mlflow_run("compare", {**common, "vectorizers": "bow,tfidf"}, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "compare: grid_wall_s=" in done.stdout

    # The evaluate entry point: the version on the later window, in the launcher's run (its experiment).
    params = {"data": str(questions_parquet), "model_uri": f"models:/stackoverflow-tagger/{version.version}"}
    done = _mlflow_run("evaluate", {**params, "start": "2018-03-01"}, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"evaluate: P@1=\d\.\d{4} R@5=\d\.\d{4} P@1_all=\d\.\d{4} R@5_all=\d\.\d{4} "
                        r"coverage=\d\.\d{4} n=\d+ no_tag_share=\d\.\d{4} ece=\d\.\d{4}", last), last  # fmt: skip
    [evaluated] = client.search_runs([run.info.experiment_id], "tags.`sotag.stage` = 'evaluate'")
    assert evaluated.data.tags["mlflow.project.entryPoint"] == "evaluate"
    assert evaluated.data.tags["model_version"] == str(version.version)
    assert f"n={int(evaluated.data.metrics['n_all'])}" in last
    assert "evaluate runs belong in 'evaluation': pass --experiment-name evaluation" in done.stderr

    # A promote run is no training run: launched among them, it says where it belongs, and its run is never
    # metric-less: it records the decision and the gate's figures.
    gate = {"data": str(questions_parquet), "eval_start": "2018-03-01", "floor": "0"}
    done = _mlflow_run("promote", gate, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        "note:  `mlflow run` put this promote run in 'stackoverflow-tagger'; promote runs belong in "
        "'stackoverflow-tagger-promotions': pass --experiment-name stackoverflow-tagger-promotions"
    ) in done.stderr.splitlines()
    [promoted] = client.search_runs([run.info.experiment_id], "tags.`mlflow.project.entryPoint` = 'promote'")
    assert promoted.data.tags["sotag.stage"] == "promote" and promoted.data.tags["sotag.exit_code"] == "0"
    assert promoted.data.tags["sotag.promote.decision"] == "promoted"
    assert promoted.data.tags["sotag.promote.version"] == str(version.version)
    done = _mlflow_run("promote", gate, tmp_path, experiment="stackoverflow-tagger-promotions")
    assert done.returncode == 0 and "note:" not in done.stdout + done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("entry", ["main", "train", "compare", "evaluate", "promote", "retrain", "drift"])
def test_every_entry_point_takes_several_data_paths_in_one_parameter(entry):
    """Issue 23: `-P data="a.parquet extra/"` gives the command both paths (the shell splits the value on spaces);
    the default "" passes no --data at all (the data setting, else the default data set)."""
    from mlflow.projects._project_spec import load_project

    from sotag.cli import build_parser

    point = load_project(str(REPO)).get_entry_point(entry)
    for value, expected in (("a.parquet extra/", ["a.parquet", "extra/"]), ("", [])):
        command = point.compute_command({"data": value} if value else {}, None)
        sotag_args = command.split(" -m sotag ", 1)[1]
        printed = f"printf '%s\\0' {sotag_args}"
        shown = subprocess.run(["bash", "-c", printed], capture_output=True, text=True, check=True)
        argv = shown.stdout.split("\0")[:-1]
        assert getattr(build_parser().parse_args(argv), "data", []) == expected, argv
        assert value or "--data" not in argv


@pytest.mark.parametrize("entry", ["main", "train", "compare", "evaluate", "promote", "retrain", "drift", "score"])
def test_an_entry_point_passes_only_the_parameters_the_user_set(entry):
    """No default is restated in MLproject: an unset parameter is no flag, so the settings' default (or the
    user's sotag.toml, or the environment) applies."""
    from mlflow.projects._project_spec import load_project

    point = load_project(str(REPO)).get_entry_point(entry)
    required = {name: "x" for name, p in point.parameters.items() if p.default is None}
    assert all(p.default in (None, "") for p in point.parameters.values())
    command = point.compute_command(required, None)
    argv = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {command.split(' -m sotag ', 1)[1]}"], capture_output=True, text=True
    ).stdout.split("\0")[:-1]
    assert [a for a in argv if a.startswith("--") and a != "--out"] == [], argv
    if entry in ("train", "main", "retrain"):  # a parameter the user sets reaches the command as its flag
        from sotag.cli import build_parser, dashed_options
        from sotag.infra.argtypes import settings_flags

        command = point.compute_command({"split_date": "2018-03-01", "top_n_tags": "8"}, None)
        argv = subprocess.run(
            ["bash", "-c", f"printf '%s\\0' {command.split(' -m sotag ', 1)[1]}"], capture_output=True, text=True
        ).stdout.split("\0")[:-1]
        flags = settings_flags(build_parser().parse_args(dashed_options(argv)))
        assert flags == {"train.split_date": "2018-03-01", "train.top_n_tags": 8}
