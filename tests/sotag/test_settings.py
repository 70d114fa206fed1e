"""One settings object: defaults < config file < environment < flags, shown with its sources by `sotag config`,
and used by the commands at each step."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import mlflow
import pytest

from sotag.cli import main
from sotag.settings import ENVIRONMENT, FIELDS, Settings, describe, load_settings
from sotag.tagger.errors import InputError
from tests.support.settings import REPO

PRODUCT = ("sotag", "tagger", "data", "infra", "registry", "training", "serving", "monitoring", "mlruns_config")


def _config_line(capsys, *argv: str) -> dict[str, tuple[str, str]]:
    assert main(["config", *argv]) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        match = re.match(r"^(\S+)\s+= (.*?)\s+\((.*)\)$", line)
        if match:
            rows[match[1]] = (match[2], match[3])
    return rows


def _train_param(questions_parquet: Path, *flags: str) -> str:
    """Train a small model, logged only (no version), and return its logged `top_n_tags` param."""
    tiny = ["--vectorizer", "tfidf", "--max-features", "2000", "--min-df", "1", "--no-register"]
    assert main(["train", "--data", str(questions_parquet), *tiny, *flags]) == 0
    runs = mlflow.search_runs(experiment_names=["stackoverflow-tagger"], order_by=["start_time DESC"], max_results=1)
    return runs.iloc[0]["params.top_n_tags"]


def test_file_then_environment_then_flag_are_shown_and_used_at_each_step(
    tracking, questions_parquet, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    for name in ("PORT", "SOTAG_CONFIG", "SOTAG_TRAIN__TOP_N_TAGS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "sotag.toml").write_text("[train]\ntop_n_tags = 7\n\n[gateway]\nport = 9100\n")

    rows = _config_line(capsys)
    assert rows["train.top_n_tags"] == ("7", f"file {tmp_path / 'sotag.toml'}")
    assert rows["gateway.port"][1].startswith("file ")
    assert rows["train.split_date"] == ("2018-04-20", "default")
    assert _train_param(questions_parquet) == "7"

    monkeypatch.setenv("SOTAG_TRAIN__TOP_N_TAGS", "6")
    monkeypatch.setenv("PORT", "9200")  # the documented flat name of gateway.port
    rows = _config_line(capsys)
    assert rows["train.top_n_tags"] == ("6", "env SOTAG_TRAIN__TOP_N_TAGS")
    assert rows["gateway.port"] == ("9200", "env PORT")
    assert _train_param(questions_parquet) == "6"

    rows = _config_line(capsys, "train", "--top-n-tags", "5", "--data", str(questions_parquet))
    assert rows["train.top_n_tags"] == ("5", "flag")
    assert rows["data"] == (str(questions_parquet), "flag")
    assert _train_param(questions_parquet, "--top-n-tags", "5") == "5"


def test_a_config_file_named_by_flag_or_environment_and_yaml_read_the_same(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "team.yaml").write_text("promote:\n  floor: 0.5\ndata: [a.parquet, b.parquet]\n")
    by_flag = load_settings(config="team.yaml", environ={}, cwd=tmp_path)
    by_env = load_settings(environ={"SOTAG_CONFIG": str(tmp_path / "team.yaml")}, cwd=tmp_path)
    for loaded in (by_flag, by_env):
        assert loaded.settings.promote.floor == 0.5
        assert loaded.settings.data == (tmp_path / "a.parquet", tmp_path / "b.parquet")
        assert loaded.sources["promote.floor"] == f"file {tmp_path / 'team.yaml'}"
    with pytest.raises(InputError, match=r"--config: no config file at .*nowhere\.toml"):
        load_settings(config="nowhere.toml", environ={}, cwd=tmp_path)


def test_bad_values_name_where_they_came_from(tmp_path):
    (tmp_path / "sotag.toml").write_text("[gateway]\nmax_batch = 0\n")
    with pytest.raises(InputError, match=r"sotag\.toml: gateway\.max_batch"):
        load_settings(environ={}, cwd=tmp_path)
    with pytest.raises(InputError, match=r"SOTAG_RELOAD_POLL_S \(gateway\.reload_poll_s\)"):
        load_settings(environ={"SOTAG_RELOAD_POLL_S": "-1"}, cwd=tmp_path / "elsewhere")
    (tmp_path / "sotag.toml").write_text("[gateway]\nmax_batch = 5\n")
    with pytest.raises(InputError, match=r"^SOTAG_TRAIN__TOP_N_TAG: no setting 'train\.top_n_tag'") as raised:
        load_settings(environ={"SOTAG_TRAIN__TOP_N_TAG": "5"}, cwd=tmp_path)  # the variable, not the file, is named
    assert "config file" not in str(raised.value)
    (tmp_path / "sotag.toml").write_text("[gateway]\nmax_bach = 5\n")
    with pytest.raises(InputError, match=r"gateway\.max_bach"):
        load_settings(environ={}, cwd=tmp_path)


def test_a_bad_setting_is_exit_2_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOTAG_MAX_BATCH", "many")
    assert main(["config"]) == 2
    err = capsys.readouterr().err
    assert "SOTAG_MAX_BATCH (gateway.max_batch)" in err and "Traceback" not in err


def test_state_lives_under_home_the_working_folder_unless_moved(tmp_path):
    here = load_settings(environ={}, cwd=tmp_path).settings
    assert here.home == tmp_path
    assert here.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert here.artifact_root == (tmp_path / "mlartifacts").as_uri()
    for where in (here.lock_dir, here.spool_dir, here.fetched_model_dir, here.reports_dir, here.cache):
        assert tmp_path in where.parents
    assert here.prediction_log_url == f"sqlite:///{tmp_path / 'predictions.db'}"
    moved = load_settings(environ={"SOTAG_HOME": "state"}, cwd=tmp_path).settings
    assert moved.home == tmp_path / "state"
    assert all(str(tmp_path / "state") in where for where in moved.state_paths().values())


def test_every_documented_variable_names_a_field_and_secrets_are_masked(tmp_path):
    leaves = {dotted for dotted, section in FIELDS.items() if section is None}
    assert set(ENVIRONMENT.values()) <= leaves
    loaded = load_settings(environ={"SOTAG_ADMIN_TOKEN": "s3cret"}, cwd=tmp_path)
    text = "\n".join(describe(loaded))
    assert "s3cret" not in text and re.search(r"gateway\.admin_token\s+= \*\*\*\s+\(env SOTAG_ADMIN_TOKEN\)", text)
    assert Settings().gateway.admin_token is None  # built outside load_settings: nothing read
    typo = load_settings(environ={"SOTAG_ADMIN_TOKN": "x"}, cwd=tmp_path)
    assert "ignored (name no setting): SOTAG_ADMIN_TOKN" in describe(typo)


def test_product_code_reads_the_environment_only_in_the_settings_module():
    """No product module but sotag/settings.py touches os.environ or getenv, or resolves state off the checkout."""
    found = subprocess.run(
        ["git", "grep", "-nE", r"os\.environ|getenv|PROJECT_ROOT|parents\[2\]", "--", *(f"{p}/*.py" for p in PRODUCT)],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert [line for line in found if not line.startswith("sotag/settings.py:")] == []


def test_the_docs_sotag_toml_is_a_valid_settings_file(tmp_path):
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(# sotag\.toml.*?)```", text, re.DOTALL)
    assert block, "the sotag.toml example of docs/operations.md"
    (tmp_path / "sotag.toml").write_text(block.group(1))
    loaded = load_settings(environ={}, cwd=tmp_path)
    assert loaded.settings.train.top_n_tags == 200 and loaded.settings.train.plt.min_tag_questions == 3
    assert loaded.sources["gateway.reload_poll_s"] == f"file {tmp_path / 'sotag.toml'}"
