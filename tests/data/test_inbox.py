"""`sotag ingest --inbox`: the weekly pipeline's first step loads only the files that landed in the inbox since the
store's earlier loads (by sha256, whatever their names), says so and exits 0 when there is none, and reads the loads
written before sha256s were recorded."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pandas as pd
import pytest

from sotag.cli import main
from sotag.data.ingest import file_sha256
from sotag.data.store import describe_loads, engine_for


def _csv(path, rows: list[tuple]) -> None:
    pd.DataFrame(rows, columns=["Id", "CreationDate", "Title", "Body", "Tags"]).to_csv(path, index=False)


def _loads(home) -> list[dict]:
    engine = engine_for(f"sqlite:///{home / 'questions.db'}")
    try:
        with engine.connect() as connection:
            return describe_loads(connection)
    finally:
        engine.dispose()


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A sotag home of the test's own (the store and the default inbox under it), nothing else set."""
    monkeypatch.chdir(tmp_path)
    for name in ("SOTAG_DATA", "SOTAG_CONFIG", "SOTAG_STORE__URL", "SOTAG_STORE__INBOX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOTAG_HOME", str(tmp_path))
    (tmp_path / "inbox").mkdir()
    return tmp_path


def test_only_files_no_earlier_load_read_are_loaded_by_content_not_name(home, capsys):
    inbox = home / "inbox"
    _csv(inbox / "week-1.csv", [(1, "2018-01-02", "pandas merge", "", "<python><pandas>")])
    assert main(["ingest", "--inbox"]) == 0  # the default inbox: <home>/inbox
    out = capsys.readouterr().out
    assert "ingest: load 1: read=1 added=1" in out
    # A new file, a renamed copy of the loaded one and a copy inside a sub-folder: only the new one is read.
    _csv(inbox / "week-2.csv", [(2, "2018-01-09", "css grid", "", "<css>"), (3, "2018-01-10", "java", "", "<java>")])
    shutil.copy(inbox / "week-1.csv", inbox / "week-1-again.csv")
    (inbox / "old").mkdir()
    shutil.copy(inbox / "week-2.csv", inbox / "old" / "week-2-copy.csv")
    assert main(["ingest", "--inbox"]) == 0
    out = capsys.readouterr().out
    assert "ingest: load 2: read=2 added=2 updated=0 unchanged=0" in out
    assert f"ingest: 3 file(s) in {inbox} skipped: read by an earlier load, or copies of a file read now" in out
    loads = _loads(home)
    assert [load["files"] for load in loads] == [[str(inbox / "week-1.csv")], [str(inbox / "old" / "week-2-copy.csv")]]
    assert loads[1]["sha256"] == {str(inbox / "old" / "week-2-copy.csv"): file_sha256(inbox / "week-2.csv")}
    # Nothing new: one line, exit 0, no load recorded, the store as it was.
    assert main(["ingest", "--inbox"]) == 0
    out = capsys.readouterr().out
    assert f"ingest: no new files in {inbox}" in out and "load 3" not in out
    assert len(_loads(home)) == 2
    # A file whose content changed is new, whatever its name.
    _csv(inbox / "week-1.csv", [(1, "2018-01-02", "pandas merge on index", "", "<python><pandas>")])
    assert main(["ingest", "--inbox"]) == 0
    assert "ingest: load 3: read=1 added=0 updated=1" in capsys.readouterr().out


def test_the_inbox_folder_from_the_flag_the_setting_and_a_missing_one(home, tmp_path_factory, monkeypatch, capsys):
    elsewhere = tmp_path_factory.mktemp("landing")
    _csv(elsewhere / "a.csv", [(7, "2018-02-01", "docker volume", "", "<docker>")])
    assert main(["ingest", "--inbox", str(elsewhere)]) == 0
    assert "ingest: load 1: read=1 added=1" in capsys.readouterr().out
    monkeypatch.setenv("SOTAG_STORE__INBOX", str(elsewhere))  # the setting: the same folder, nothing new there
    assert main(["ingest", "--inbox"]) == 0
    assert f"ingest: no new files in {elsewhere}" in capsys.readouterr().out
    # An empty inbox: nothing new, not an error.
    monkeypatch.delenv("SOTAG_STORE__INBOX")
    assert main(["ingest", "--inbox"]) == 0
    assert f"ingest: no new files in {home / 'inbox'}" in capsys.readouterr().out
    # Bad input names the field: a missing folder, files and --inbox together, nothing at all.
    assert main(["ingest", "--inbox", str(home / "missing")]) == 2
    assert f"store.inbox: {home / 'missing'} is not a folder" in capsys.readouterr().err
    assert main(["ingest", "--inbox", str(elsewhere), str(elsewhere / "a.csv")]) == 2
    assert "--inbox: give files and folders, or --inbox, not both" in capsys.readouterr().err
    assert main(["ingest"]) == 2
    assert len(_loads(home)) == 1


def test_loads_recorded_before_sha256s_stay_readable_and_their_files_count_as_unseen(home, capsys):
    inbox = home / "inbox"
    _csv(inbox / "a.csv", [(1, "2018-01-02", "pandas", "", "<python>")])
    assert main(["ingest", str(inbox / "a.csv")]) == 0  # a plain load records the sha256 too
    assert _loads(home)[0]["sha256"] == {str(inbox / "a.csv"): file_sha256(inbox / "a.csv")}
    with sqlite3.connect(home / "questions.db") as connection:  # as a store written before the inbox has it
        connection.execute("update loads set files = ?", (json.dumps([str(inbox / "a.csv")]),))
    loads = _loads(home)
    assert loads[0]["files"] == [str(inbox / "a.csv")] and loads[0]["sha256"] == {str(inbox / "a.csv"): None}
    capsys.readouterr()
    # No sha256 recorded: the file is read again, and the upsert finds nothing to change.
    assert main(["ingest", "--inbox"]) == 0
    assert "ingest: load 2: read=1 added=0 updated=0 unchanged=1" in capsys.readouterr().out
    assert main(["ingest", "--inbox"]) == 0
    assert "ingest: no new files in" in capsys.readouterr().out
