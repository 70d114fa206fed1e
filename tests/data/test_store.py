"""The question store: `sotag ingest` upserts by id in one transaction per load, records each load with the store's
snapshot digest, refuses a mostly-bad file whole, and every command reads it as an input (`--data store`)."""

from __future__ import annotations

import sqlite3

import mlflow
import pandas as pd
import pytest

from sotag.cli import main
from sotag.data import load_questions
from sotag.data.ingest import ingest
from sotag.data.store import describe_loads, engine_for
from sotag.tagger.errors import DataError


def _csv(path, rows: list[tuple]) -> None:
    frame = pd.DataFrame(rows, columns=["Id", "CreationDate", "Title", "Body", "Tags"])
    frame.to_csv(path, index=False)


def _url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'questions.db'}"


def test_upsert_by_id_a_later_copy_with_tags_or_a_body_wins_and_the_digest_follows_content(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    _csv(first, [(1, "2018-01-02", "pandas merge", "<p>x</p>", "<python><pandas>"), (2, "2018-01-03", "css", "", "")])
    # id 1 again without tags or body (never erases), id 2 with tags now (wins), id 3 new; id 3 twice in the file:
    # the later copy with tags wins.
    _csv(
        second,
        [
            (1, "2018-01-02", "pandas merge", "", ""),
            (2, "2018-01-03", "css flexbox", "", "<css>"),
            (3, "2018-01-04", "java", "", ""),
            (3, "2018-01-04", "java streams", "", "<java>"),
        ],
    )
    url = _url(tmp_path)
    one = ingest(url, [first])
    assert (one.added, one.updated, one.unchanged) == (2, 0, 0) and one.previous_digest is None
    two = ingest(url, [second])
    assert (two.added, two.updated, two.unchanged, two.rows_read) == (1, 1, 1, 4)
    assert two.previous_digest == one.digest != two.digest
    frame, _ = load_questions(tmp_path / "questions.db")  # the store is an input like any file
    by_id = frame.set_index("id")
    assert by_id.loc[1, "tags"] == ["python", "pandas"] and by_id.loc[1, "body"] == "<p>x</p>"
    assert by_id.loc[2, "tags"] == ["css"] and by_id.loc[2, "title"] == "css flexbox"
    assert by_id.loc[3, "title"] == "java streams"
    again = ingest(url, [second])  # the same questions again: nothing changes, the snapshot neither
    assert (again.added, again.updated) == (0, 0) and again.digest == two.digest
    # The digest is of content, not of how many times it arrived: another store with the same loads, the same digest.
    other = tmp_path / "other"
    other.mkdir()
    ingest(_url(other), [first])
    assert ingest(_url(other), [second]).digest == two.digest
    with engine_for(url).connect() as connection:
        loads = describe_loads(connection)
    assert [load["added"] for load in loads] == [2, 1, 0]
    assert loads[1]["files"] == [str(second)] and loads[1]["digest"] == two.digest


def test_a_mostly_bad_file_is_refused_whole_and_a_few_bad_rows_are_counted(tmp_path):
    url = _url(tmp_path)
    good = tmp_path / "good.csv"
    _csv(good, [(1, "2018-01-02", "pandas", "", "<python>")])
    ingest(url, [good])
    half_bad = tmp_path / "half-bad.csv"
    _csv(
        half_bad,
        [
            (10, "2018-01-02", "a", "", "<x>"),
            ("x11", "2018-01-02", "b", "", "<x>"),
            (12, "2018-01-02", "", "", "<x>"),
            (13, "not a date", "d", "", "<x>"),
        ],
    )
    with pytest.raises(DataError, match=r"3 of 4 rows refused \(bad_id=1, empty_title=1, bad_date=1\).*refused whole"):
        ingest(url, [half_bad])
    with sqlite3.connect(tmp_path / "questions.db") as connection:  # nothing of it was written, no load recorded
        assert connection.execute("select count(*) from questions").fetchone() == (1,)
        assert connection.execute("select count(*) from loads").fetchone() == (1,)
    few_bad = tmp_path / "few-bad.csv"
    _csv(few_bad, [(20, "2018-01-02", "a", "", "<x>"), (21, "2018-01-03", "b", "", "<y>"), (22, "never", "c", "", "")])
    result = ingest(url, [few_bad])
    assert result.added == 2 and result.refused == {"bad_id": 0, "empty_title": 0, "bad_date": 1}


def test_a_failure_midway_writes_nothing(tmp_path, monkeypatch):
    from sotag.data import ingest as ingest_module

    url = _url(tmp_path)
    first = tmp_path / "a.csv"
    _csv(first, [(1, "2018-01-02", "pandas", "", "<python>")])
    ingest(url, [first])
    second = tmp_path / "b.csv"
    _csv(second, [(2, "2018-01-02", "css", "", "<css>"), (3, "2018-01-03", "java", "", "<java>")])

    def broken(connection):
        raise OSError("disk full")

    monkeypatch.setattr(ingest_module, "snapshot_digest", broken)
    with pytest.raises(OSError):
        ingest(url, [second])
    with sqlite3.connect(tmp_path / "questions.db") as connection:
        assert connection.execute("select count(*) from questions").fetchone() == (1,)
        assert connection.execute("select count(*) from loads").fetchone() == (1,)


def test_sotag_ingest_then_train_on_data_store_names_the_store_and_its_snapshot(
    tracking, questions, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOTAG_DATA", raising=False)
    monkeypatch.delenv("SOTAG_HOME", raising=False)
    older, newer = tmp_path / "older.parquet", tmp_path / "newer.parquet"
    questions.iloc[:250].to_parquet(older)
    questions.iloc[200:].to_parquet(newer)
    assert main(["ingest", str(older)]) == 0
    assert main(["ingest", str(newer)]) == 0
    out = capsys.readouterr().out
    assert "ingest: load 2: read=160 added=110 updated=0 unchanged=50" in out
    tiny = ["--vectorizer", "tfidf", "--split-date", "2018-03-01", "--top-n-tags", "8", "--min-df", "1"]
    assert main(["train", "--data", "store", *tiny, "--no-register"]) == 0
    run = mlflow.search_runs(experiment_names=["stackoverflow-tagger"], max_results=1).iloc[0]
    assert run["tags.data_store"] == str(tmp_path / "questions.db")
    assert run["tags.data_store_load"] == "2" and len(run["tags.data_store_snapshot"]) == 64
    assert main(["ingest", str(tmp_path / "missing.csv")]) == 2
    assert main(["train", "--data", "store", *tiny, "--no-register", "--config", "nowhere.toml"]) == 2
