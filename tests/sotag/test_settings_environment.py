"""A `sotag` command started by another (the gateway's and the drift job's retrain) runs with its parent's
settings: every setting as a variable `load_settings` reads back to the same value (issue 30 part 2)."""

from __future__ import annotations

from sotag.settings import child_environment, load_settings, settings_environment


def test_every_setting_round_trips_through_the_environment(tmp_path):
    team = tmp_path / "team.toml"
    team.write_text('[train]\nC = 3.5\n[train.plt]\nmin_tag_questions = 3\n[store]\nsince = "2018-01-01"\n')
    flags = {"train.top_n_tags": 7, "data": ("a.parquet", "postgresql://u:pw@db:5432/q"), "promote.floor": 0.2}
    parent = load_settings(flags, config=team, environ={"SOTAG_ADMIN_TOKEN": "s3cret", "PORT": "9000"}, cwd=tmp_path)
    env = settings_environment(parent.settings)
    assert env["SOTAG_TRAIN__C"] == "3.5" and env["SOTAG_TRAIN__PLT__MIN_TAG_QUESTIONS"] == "3"
    assert env["SOTAG_DATA"] == f'["{tmp_path / "a.parquet"}", "postgresql://u:pw@db:5432/q"]'
    assert "SOTAG_GATEWAY__ADMIN_TOKEN" not in env  # secrets are not passed on
    child = load_settings(environ=env, cwd=tmp_path / "elsewhere").settings  # no file there: the variables only
    expected = parent.settings.model_copy(
        update={"gateway": parent.settings.gateway.model_copy(update={"admin_token": None})}
    )
    assert child == expected


def test_the_child_environment_drops_the_launchers_run_and_keeps_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_RUN_ID", "abc123")
    monkeypatch.setenv("SOTAG_UNRELATED_NOTE", "kept")
    settings = load_settings({"train.top_n_tags": 9}, cwd=tmp_path).settings
    env = child_environment(settings, every_setting=True)
    assert "MLFLOW_RUN_ID" not in env and env["SOTAG_UNRELATED_NOTE"] == "kept"
    assert env["SOTAG_TRAIN__TOP_N_TAGS"] == "9" and env["SOTAG_HOME"] == str(tmp_path)
    assert "MLFLOW_RUN_ID" in child_environment(settings)  # the scoring server and others: as before
