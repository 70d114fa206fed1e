"""Issue 30 part 4: the question store on PostgreSQL (`store.url`), read by every command like the SQLite one, and
limited to a time window by the one loader (`--since` / `--until`, store.since / store.until)."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa

from sotag.cli import build_parser
from sotag.cli import main as sotag_main
from sotag.data import load_questions
from sotag.data.ingest import ingest
from sotag.data.store import StoreSource, engine_for, latest_load
from sotag.infra.argtypes import settings_flags
from sotag.settings import load_settings
from tests.processes import needs_postgres

SINCE, UNTIL = "2017-07-01", "2018-01-01"


def _settings(argv: list[str], environ: dict[str, str], cwd):
    args = build_parser().parse_args(argv)
    return load_settings(settings_flags(args), environ=environ, cwd=cwd).settings


def _in_window(questions: pd.DataFrame) -> pd.DataFrame:
    dates = questions["creation_date"]
    return questions[(dates >= pd.Timestamp(SINCE)) & (dates < pd.Timestamp(UNTIL))]


@pytest.mark.parametrize("command", ["train", "compare", "promote", "drift", "evaluate", "retrain"])
def test_every_command_that_reads_questions_takes_the_window_through_the_one_loader(command, questions, tmp_path):
    """`--since` / `--until` are the same two settings on every command with `--data`, applied to each store read."""
    ingest(f"sqlite:///{tmp_path / 'questions.db'}", [_parquet(questions, tmp_path)])
    argv = [command, "--data", "store", "--since", SINCE, "--until", UNTIL]
    settings = _settings(argv, {}, tmp_path)
    assert (settings.store.since, settings.store.until) == (SINCE, UNTIL)
    [source] = settings.data_paths()
    assert isinstance(source, StoreSource) and source.describe_window() == "2017-07-01..2018-01-01"
    frame, _ = load_questions(settings.data_paths())
    assert sorted(frame["id"]) == sorted(_in_window(questions)["id"])
    assert frame["creation_date"].min() >= pd.Timestamp(SINCE) and frame["creation_date"].max() < pd.Timestamp(UNTIL)


def test_a_window_without_a_store_or_upside_down_is_exit_2_naming_the_flag(questions, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _parquet(questions, tmp_path)
    assert sotag_main(["train", "--data", str(data), "--since", SINCE, "--no-register"]) == 2
    assert "sotag train: error: --since: limits a question store" in capsys.readouterr().err
    ingest(f"sqlite:///{tmp_path / 'questions.db'}", [data])
    assert sotag_main(["train", "--data", "store", "--since", UNTIL, "--until", SINCE, "--no-register"]) == 2
    assert "--until: 2017-07-01 00:00 is not after --since 2018-01-01 00:00" in capsys.readouterr().err
    assert sotag_main(["train", "--data", "store", "--since", "last week", "--no-register"]) == 2
    assert "--since: 'last week' is not a date" in capsys.readouterr().err


def _parquet(questions: pd.DataFrame, tmp_path):
    path = tmp_path / "questions.parquet"
    questions.to_parquet(path)
    return path


@pytest.fixture(scope="module")
def postgres():
    from sotag.mlruns_config.servers import PostgresCluster

    needs_postgres()
    pg = PostgresCluster().start()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.mark.integration
def test_ingest_into_postgresql_then_train_on_a_window_of_it_names_the_store_and_its_snapshot(
    postgres, tracking, questions, tmp_path, monkeypatch, capsys
):
    url = postgres.create_database("questions")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOTAG_DATA", raising=False)
    monkeypatch.setenv("SOTAG_STORE__URL", url)
    older, newer = tmp_path / "older.parquet", tmp_path / "newer.parquet"
    questions.iloc[:250].to_parquet(older)
    questions.iloc[200:].to_parquet(newer)
    assert sotag_main(["ingest", str(older)]) == 0
    assert sotag_main(["ingest", str(newer)]) == 0
    assert "ingest: load 2: read=160 added=110 updated=0 unchanged=50" in capsys.readouterr().out
    with engine_for(url).connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM questions")).scalar_one() == len(questions)
        snapshot = latest_load(connection)
    # The same content as a SQLite store holding the same questions: the digest is of content, not of the database.
    sqlite = f"sqlite:///{tmp_path / 'same.db'}"
    assert ingest(sqlite, [older, newer]).digest == snapshot["digest"]

    # Read as `--data store` and as `--data <url>`: every question, then the window only.
    for data in ("store", url):
        settings = _settings(["train", "--data", data], dict(SOTAG_STORE__URL=url), tmp_path)
        frame, _ = load_questions(settings.data_paths())
        assert len(frame) == len(questions) and frame["id"].is_unique
        windowed = _settings(["train", "--data", data, "--since", SINCE, "--until", UNTIL], {"SOTAG_STORE__URL": url},
                             tmp_path)  # fmt: skip
        frame, _ = load_questions(windowed.data_paths())
        assert sorted(frame["id"]) == sorted(_in_window(questions)["id"])

    tiny = ["--vectorizer", "tfidf", "--split-date", "2017-11-01", "--top-n-tags", "8", "--min-df", "1"]
    assert sotag_main(["train", "--data", "store", "--since", SINCE, "--until", UNTIL, *tiny, "--no-register"]) == 0
    out = capsys.readouterr().out
    assert "postgresql+psycopg2://sotag@127.0.0.1" in out and "[2017-07-01..2018-01-01]" in out
    run = mlflow.search_runs(experiment_names=["stackoverflow-tagger"], max_results=1).iloc[0]
    shown = url  # no password in the test's URL; StoreSource.shown hides one where there is
    assert run["tags.data_store"] == shown
    assert run["tags.data_store_load"] == "2" and run["tags.data_store_snapshot"] == snapshot["digest"]
    assert run["tags.data_store_window"] == "2017-07-01..2018-01-01"
    assert run["tags.data_source"] == f"{shown} [2017-07-01..2018-01-01]"
    inputs = mlflow.get_run(run["run_id"]).inputs.dataset_inputs
    assert {i.dataset.name for i in inputs} == {"questions:training", "questions:evaluation"}
    assert all(shown in i.dataset.source for i in inputs)

    # The database down: a component fault (exit 1), one line naming the database, no traceback.
    down = "postgresql+psycopg2://sotag@127.0.0.1:1/questions"
    assert sotag_main(["train", "--data", down, *tiny, "--no-register"]) == 1
    err = capsys.readouterr().err
    assert "sotag train: failed: database:" in err and "Traceback" not in err
