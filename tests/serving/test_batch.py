"""`sotag score`: both engines, the partition layout, reruns, bad rows and malformed files, on real questions.

Real StackOverflow questions: the shared data when it is beside the checkout ($SOTAG_DATA), else the bundled
sample; the champion is trained on them. The Spark tests start a real `local[2]` session and skip, saying
why, where Java or pyspark is missing (CI installs Java).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from sotag.cli import main as sotag_main
from sotag.data import default_data_path
from sotag.infra.scored import COLUMNS, read_scored
from sotag.infra.spark import spark_available
from sotag.infra.tracking import MODEL_NAME
from sotag.serving.batch import run_score
from sotag.serving.score_job import ScoreConfig
from tests.serving.conftest import throwaway_store
from tests.support.scored_outputs import equal_outputs
from tests.support.settings import REPO, tracking_settings

ROWS = 2500

needs_spark = pytest.mark.skipif(spark_available() is not None, reason=f"Spark tests: {spark_available()}")


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROWS real questions of the newest months, as a folder of two parquet parts (ids unique)."""
    frame = pd.read_parquet(default_data_path(REPO))
    frame = frame.sort_values("creation_date").tail(ROWS).reset_index(drop=True)
    folder = tmp_path_factory.mktemp("backlog") / "questions"
    folder.mkdir()
    frame.iloc[: ROWS // 2].to_parquet(folder / "part-0.parquet")
    frame.iloc[ROWS // 2 :].to_parquet(folder / "part-1.parquet")
    return folder


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory):
    """A champion of the default kind (plt) trained on real questions (small configuration), in a throwaway store."""
    with throwaway_store(tmp_path_factory.mktemp("batch-store"), default_data_path(REPO)) as store:
        version = store.train_and_promote(
            vectorizer="plt", split_date="2018-03-01", top_n_tags=30, max_features=8000, C=10.0
        )
        yield version


def score(real: Path, out: Path, engine: str, **overrides) -> object:
    config = ScoreConfig(input=real, output=out, engine=engine, progress=False, **overrides)
    return run_score(config, tracking_settings())  # the throwaway store's environment


def months_of(path: Path) -> pd.Series:
    frame = pd.read_parquet(path, columns=["creation_date"]) if path.is_file() else None
    if frame is None:
        frame = pd.concat(pd.read_parquet(p, columns=["creation_date"]) for p in sorted(path.glob("*.parquet")))
    return pd.to_datetime(frame["creation_date"]).dt.strftime("%Y-%m")


def test_local_engine_writes_every_row_partitioned_by_month(champion, real, tmp_path):
    result = score(real, tmp_path / "out", "local", batch_rows=700)
    assert result.rows_read == result.rows_scored == ROWS
    assert result.model_version == champion
    expected_months = sorted(months_of(real).unique())
    assert result.months == expected_months
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"creation_month={m}" for m in expected_months]

    dataset = ds.dataset(tmp_path / "out", format="parquet", partitioning="hive")
    assert [f.name for f in dataset.schema][: len(COLUMNS)] == list(COLUMNS)
    assert str(dataset.schema.field("tags").type) == "list<element: string>"
    assert str(dataset.schema.field("scores").type) == "list<element: double>"
    out = read_scored(tmp_path / "out")
    assert len(out) == ROWS and out["id"].is_unique
    assert set(out["model_name"]) == {MODEL_NAME} and set(out["model_version"]) == {champion}
    assert (out["creation_month"] == out["creation_date"].dt.strftime("%Y-%m")).all()
    # Ranked best first, within the model's top-k, and most questions get a tag.
    assert all(list(s) == sorted(s, reverse=True) and len(s) <= 5 for s in out["scores"])
    assert (out["tags"].map(len) > 0).mean() > 0.5


def test_local_engine_equals_the_pyfunc_in_process(champion, real, tmp_path):
    score(real, tmp_path / "out", "local")
    out = read_scored(tmp_path / "out").set_index("id")
    questions = pd.concat(pd.read_parquet(p) for p in sorted(real.glob("*.parquet"))).head(300)
    predictions = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{champion}").predict(questions[["title", "body"]])
    for qid, expected in zip(questions["id"], predictions, strict=True):
        assert list(out.loc[qid, "tags"]) == expected["tags"]
        np.testing.assert_allclose(out.loc[qid, "scores"], expected["scores"], atol=1e-6)


def test_a_rerun_replaces_the_months_it_writes_and_keeps_the_others(champion, real, tmp_path):
    out = tmp_path / "out"
    first = score(real, out, "local")
    (out / "creation_month=2001-01").mkdir()  # a month this input does not touch
    some_part = next((out / f"creation_month={first.months[0]}").glob("*.parquet"))
    shutil.copy(some_part, out / "creation_month=2001-01" / "old.parquet")
    second = score(real, out, "local")
    assert second.months == first.months
    assert len(read_scored(out, first.months)) == ROWS  # replaced, not duplicated
    assert (out / "creation_month=2001-01" / "old.parquet").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith("_")]


def test_an_interrupted_run_leaves_the_previous_output_whole(champion, real, tmp_path, monkeypatch):
    import sotag.infra.scored as scored_module

    out = tmp_path / "out"
    score(real, out, "local")
    before = read_scored(out)
    calls = {"n": 0}
    original = scored_module.write_months

    def fail_midway(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(scored_module, "write_months", fail_midway)
    with pytest.raises(KeyboardInterrupt):
        score(real, out, "local", batch_rows=500)
    after = read_scored(out)
    assert len(after) == len(before) == ROWS
    assert (after["scored_at"] == before["scored_at"]).all()
    assert not [p for p in out.iterdir() if p.name.startswith("_")]


def test_bad_rows_are_counted_and_skipped(champion, tmp_path):
    frame = pd.DataFrame(
        {
            "Id": ["1", "x", "3", "4", "5"],
            "CreationDate": ["2018-04-01", "2018-04-02", "not a date", "2018-04-03", "2018-05-09"],
            "Title": ["How to merge dicts in python", "t", "t", "   ", "Flexbox centering in css"],
            "Body": ["<p>x</p>", "", "", "", "<p>y</p>"],
            "Tags": ["<python>", "", "", "", ""],
        }
    )
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False)
    result = score(path, tmp_path / "out", "local")
    assert (result.rows_read, result.rows_scored) == (5, 2)
    assert (result.unusable.bad_id, result.unusable.bad_date, result.unusable.empty_title) == (1, 1, 1)
    assert sorted(read_scored(tmp_path / "out")["id"]) == [1, 5]


@pytest.mark.parametrize(
    "rows, line",
    [
        ("1,2018-04-01,a,b,<x>\n2,2018-04-01,a,b,<x>,oops\n", 3),
        # pandas read a first row with a field too many as an index and every column shifted: scored=0, exit 0.
        ("1,2018-04-01,a,b,<x>,oops\n2,2018-04-01,a,b,<x>\n", 2),
        # The first row of the second batch (--batch-rows 1): pandas dropped its extra field silently.
        ("1,2018-04-01,a,b,<x>\n2,2018-04-01,a,b,<x>,oops\n3,2018-04-01,a,b,<x>\n", 3),
    ],
)
@pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=[needs_spark, pytest.mark.integration])])
def test_a_malformed_file_exits_2_naming_the_file_and_line(champion, tmp_path, capsys, engine, rows, line):
    path = tmp_path / "broken.csv"
    path.write_text("Id,CreationDate,Title,Body,Tags\n" + rows)
    code = sotag_main(
        ["score", str(path), "--out", str(tmp_path / "out"), "--engine", engine, "--no-progress", "--batch-rows", "1"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"broken.csv: malformed CSV at line {line}: 6 fields where the header has 5" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=[needs_spark, pytest.mark.integration])])
def test_an_error_met_mid_way_is_printed_on_its_own_line_after_the_progress_bar(champion, tmp_path, capsys, engine):
    """The bar was closed only after the loop: a malformed row in the third batch glued the error to its line."""
    path = tmp_path / "late.csv"
    rows = "".join(f"{i},2018-04-01,title {i},b,<x>\n" for i in range(1, 5))
    path.write_text("Id,CreationDate,Title,Body,Tags\n" + rows + "5,2018-04-01,a,b,<x>,oops\n")
    argv = ["score", str(path), "--out", str(tmp_path / "out"), "--engine", engine, "--batch-rows", "2"]
    assert sotag_main(argv) == 2
    err = capsys.readouterr().err
    assert "rows" in err, err  # the bar was drawn
    said = "sotag score: error: "
    line = next(line for line in err.splitlines() if said in line)
    assert line.startswith(said) and "late.csv: malformed CSV at line 6" in line, repr(err)


def test_bad_flags_exit_2(champion, real, tmp_path, capsys):
    assert sotag_main(["score", str(real), "--out", str(tmp_path / "o"), "--conf", "novalue", "--engine", "local"]) == 2
    assert "--conf: expected key=value" in capsys.readouterr().err
    assert sotag_main(["score", str(real), "--out", str(real / "inside"), "--engine", "local"]) == 2
    assert "must not be the input or inside it" in capsys.readouterr().err
    assert sotag_main(["score", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "o")]) == 2
    assert "data file not found" in capsys.readouterr().err


@needs_spark
@pytest.mark.integration
def test_spark_engine_equals_the_local_engine_and_reruns_replace(champion, real, tmp_path, capsys):
    code = sotag_main(
        ["score", str(real), "--out", str(tmp_path / "spark"), "--engine", "spark", "--master", "local[2]",
         "--conf", "spark.sql.shuffle.partitions=4", "--no-progress"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"score: rows={ROWS} scored={ROWS}" in printed and f"version={champion} engine=spark" in printed
    score(real, tmp_path / "local", "local")
    spark_out, local_out = read_scored(tmp_path / "spark"), read_scored(tmp_path / "local")
    equal, detail = equal_outputs(spark_out, local_out)
    assert equal, detail
    assert sorted(p.name for p in (tmp_path / "spark").iterdir()) == sorted(
        p.name for p in (tmp_path / "local").iterdir()
    )
    assert set(spark_out["model_version"]) == {champion}
    assert (
        str(ds.dataset(tmp_path / "spark", format="parquet").schema.field("scored_at").type) == "timestamp[us, tz=UTC]"
    )

    # A rerun (CSV input this time, through the loader's staging) replaces every month instead of adding rows.
    csv = tmp_path / "backlog.csv"
    questions = pd.concat(pd.read_parquet(p) for p in sorted(real.glob("*.parquet")))
    questions.rename(columns={"id": "Id", "creation_date": "CreationDate", "title": "Title", "body": "Body"}).assign(
        Tags=""
    )[["Id", "CreationDate", "Title", "Body", "Tags"]].to_csv(csv, index=False)
    result = score(csv, tmp_path / "spark", "spark", master="local[2]")
    assert result.rows_read == ROWS
    again = read_scored(tmp_path / "spark")
    assert len(again) == ROWS
    equal, detail = equal_outputs(again, local_out)
    assert equal, detail
    assert not [p for p in (tmp_path / "spark").iterdir() if p.name.startswith("_")]


# Issue 20: the closing lines, and the StackSample and BigQuery layouts through `sotag score`.
def test_rates_of_small_runs_are_not_rounded_to_zero():
    from sotag.serving.score_job import ScoreResult, UnusableRows, rate

    assert [rate(x) for x in (0.0, 0.5, 0.04, 12.345, 99.94, 150.4, 6687.2)] == [
        "0", "0.5", "0.04", "12.3", "99.9", "150", "6687"
    ]  # fmt: skip
    result = ScoreResult(10, 10, UnusableRows(), 0, ["2018-05"], 20.0, "m", "1", "spark")
    assert "rows=10 scored=10 rows_per_s=0.5 " in result.summary()


def test_a_model_folder_is_named_as_unregistered_not_version_none():
    from sotag.serving.score_job import ScoreResult, UnusableRows

    registered = ScoreResult(10, 10, UnusableRows(), 0, ["2018-05"], 2.0, "stackoverflow-tagger", "3", "local")
    folder = ScoreResult(10, 10, UnusableRows(), 0, ["2018-05"], 2.0, "/models/tagger", None, "local")
    assert " model=stackoverflow-tagger version=3 " in registered.summary()
    assert " model=/models/tagger version=unregistered " in folder.summary()
    assert "None" not in folder.summary()


def test_the_closing_line_names_the_partitions_written(champion, tmp_path, capsys):
    path = tmp_path / "posts_questions.csv"
    pd.DataFrame(
        {
            "id": [1, 2, 3],
            "title": ["How to merge dicts in python", "Flexbox centering in css", "java stream to list"],
            "body": ["<p>x</p>", "<p>y</p>", ""],
            "creation_date": ["2018-04-02 16:16:31.123 UTC", "2018-05-01 00:00:00 UTC", "2018-06-30 23:59:59 UTC"],
            "tags": ["", "", ""],
        }
    ).to_csv(path, index=False)
    out = tmp_path / "out"
    assert sotag_main(["score", str(path), "--out", str(out), "--engine", "local", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "YYYY-MM" not in printed
    assert f"score: wrote {out}/creation_month=2018-04 … {out}/creation_month=2018-06 (3 months)" in printed
    assert sotag_main(["score", str(path), "--out", str(out), "--engine", "local", "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"creation_month=2018-0{m}" for m in (4, 5, 6)]


def test_stacksample_with_a_cp1252_line_and_bigquery_exports_score_through_the_cli(champion, tmp_path, capsys, caplog):
    """Issue 20 kind 2: never a traceback or exit 1 for an encoding; StackSample and BigQuery are formats."""
    folder = tmp_path / "stacksample"
    folder.mkdir()
    (folder / "Questions.csv").write_bytes(
        b",Id,OwnerUserId,CreationDate,ClosedDate,Score,Title,Body\n"
        + "0,11,4000000.0,2018-04-02T16:16:31Z,NA,0,How to merge dicts in python \u201cfast\u201d,<p>x</p>\n".encode()
        + b"1,12,4000001.0,2018-04-03T10:00:00Z,NA,2,r\xe9ponse \x93Flexbox\x94 centering in css,<p>y</p>\n"
    )
    (folder / "Tags.csv").write_text("Id,Tag\n11,python\n12,css\n")
    for data in (folder, folder / "Questions.csv"):
        code = sotag_main(["score", str(data), "--out", str(tmp_path / "ss"), "--engine", "local", "--no-progress"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert "score: rows=2 scored=2 " in captured.out and "Traceback" not in captured.err
        assert "Questions.csv: 1 line(s) not UTF-8, read as cp1252 (lines 3)" in caplog.text
        assert captured.out.rstrip().splitlines()[-2].endswith(" repaired: not_utf8_lines=1")  # the repair counted
        caplog.clear()
    assert sorted(read_scored(tmp_path / "ss")["id"]) == [11, 12]

    bigquery = tmp_path / "bq.csv"
    bigquery.write_text(
        "id,title,body,accepted_answer_id,creation_date,tags,view_count\n"
        "21,python list comprehension,<p>a</p>,,2018-05-02 16:16:31.123 UTC,python|list,3\n"
        "22,css grid,,,2018-05-03 01:00:00 UTC,css,4\n"
    )
    code = sotag_main(["score", str(bigquery), "--out", str(tmp_path / "bq"), "--engine", "local", "--no-progress"])
    assert code == 0 and "score: rows=2 scored=2 " in capsys.readouterr().out
    assert read_scored(tmp_path / "bq")["creation_date"].min() == pd.Timestamp("2018-05-02 16:16:31.123")


def test_a_folder_of_question_files_scores_as_train_and_evaluate_read_it(champion, tmp_path, capsys):
    """A folder holding a BigQuery CSV (field case bigquery-posts-questions) and a parquet part: `score` reads every
    question file in it, as `train` and `evaluate` do, on both engines; a folder with none is refused up front."""
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "posts_questions.csv").write_text(
        "id,title,body,accepted_answer_id,creation_date,tags,view_count\n"
        "21,python list comprehension,<p>a</p>,,2018-05-02 16:16:31.123 UTC,python|list,3\n"
        "22,css grid,,,2018-05-03 01:00:00 UTC,css,4\n"
    )
    pd.DataFrame(
        {"id": [31], "title": ["java stream to list"], "body": [""], "creation_date": [pd.Timestamp("2018-06-01")]}
    ).to_parquet(folder / "part-0.parquet")
    for engine in ("local", "spark"):
        out = tmp_path / engine
        code = sotag_main(["score", str(folder), "--out", str(out), "--engine", engine, "--no-progress"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert "score: rows=3 scored=3 " in captured.out
        assert sorted(read_scored(out)["id"]) == [21, 22, 31]
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no questions here")
    code = sotag_main(["score", str(empty), "--out", str(tmp_path / "none"), "--engine", "spark", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and f"{empty}: a folder with no question file" in captured.err
    assert "Traceback" not in captured.err and not (tmp_path / "none").exists()  # refused before any work


@needs_spark
@pytest.mark.integration
def test_parts_that_disagree_on_a_columns_type_score_on_spark_as_on_the_local_engine(champion, real, tmp_path):
    """Field case spark-mismatched-parts: a folder Spark wrote (id bigint, timestamps), then pandas appended to (id
    int32, creation_date as text): both engines score every row, the same way."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.concat(pd.read_parquet(p) for p in sorted(real.glob("*.parquet"))).head(400).reset_index(drop=True)
    folder = tmp_path / "backlog"
    folder.mkdir()
    (folder / "_SUCCESS").write_text("")
    frame.iloc[:200].to_parquet(folder / "part-00000.snappy.parquet")
    appended = frame.iloc[200:].assign(
        id=frame["id"].iloc[200:].astype("int32"), creation_date=frame["creation_date"].iloc[200:].astype(str)
    )
    pq.write_table(pa.Table.from_pandas(appended, preserve_index=False), folder / "part-00001-appended.parquet")
    local = score(folder, tmp_path / "local", "local")
    spark = score(folder, tmp_path / "spark", "spark", master="local[2]")
    assert local.rows_scored == spark.rows_scored == 400
    equal, detail = equal_outputs(read_scored(tmp_path / "spark"), read_scored(tmp_path / "local"))
    assert equal, detail


def test_without_engine_a_small_input_scores_in_process_and_says_why(champion, real, tmp_path, capsys, monkeypatch):
    """On the bundled sample Spark ran at 0.14x the in-process rate (its start-up): below score.spark_min_rows the
    default is the local engine, whether Java is here or not, and the command says which and why."""
    monkeypatch.delenv("SOTAG_SCORE__SPARK_MIN_ROWS", raising=False)
    assert sotag_main(["score", str(real), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"score: engine local ({ROWS:,} rows, under score.spark_min_rows=700000" in printed  # exact: footers
    assert "engine=local" in printed


@needs_spark
@pytest.mark.integration
def test_without_engine_an_input_over_the_size_scores_on_spark(champion, real, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOTAG_SCORE__SPARK_MIN_ROWS", "1000")
    assert sotag_main(["score", str(real), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"score: engine spark ({ROWS:,} rows, at least score.spark_min_rows=1000)" in printed
    assert "engine=spark" in printed


def test_without_engine_a_small_text_input_says_its_size_not_about_0_rows(champion, tmp_path, capsys, monkeypatch):
    """A CSV's rows are estimated from its size (1,500 bytes a question): a 2-question file read "about 0 rows"."""
    monkeypatch.delenv("SOTAG_SCORE__SPARK_MIN_ROWS", raising=False)
    path = tmp_path / "two.csv"
    path.write_text("Id,CreationDate,Title,Body\n1,2018-04-02,How to merge dicts in python,\n2,2018-04-03,css grid,\n")
    assert sotag_main(["score", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == (
        f"score: engine local ({path.stat().st_size} bytes of text, fewer than 1,000 rows, "
        "under score.spark_min_rows=700000; --engine spark to use Spark)"
    )
    assert "score: rows=2 scored=2 " in printed


def test_the_row_count_behind_the_engine_is_exact_for_parquet_and_estimated_by_size_for_text(real, tmp_path):
    from sotag.serving.batch import default_engine, estimated_rows

    big = tmp_path / "big" / "QueryResults.csv"
    big.parent.mkdir()
    with open(big, "wb") as handle:  # sparse: only its size is read
        handle.truncate(3_000_000)
    assert str(estimated_rows(big)) == "3.0 MB of text, about 2,000 rows"
    assert str(estimated_rows(real)) == f"{ROWS:,} rows"
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(real / "part-0.parquet", mixed / "part-0.parquet")
    (mixed / "more.csv").write_text("Id,CreationDate,Title\n1,2018-04-02,a question\n")
    size = (mixed / "more.csv").stat().st_size
    assert (
        str(estimated_rows(mixed)) == f"{ROWS // 2:,} parquet rows and {size} bytes of text, about {ROWS // 2:,} rows"
    )
    assert default_engine(big, 1000, tmp_path / "no-java")[1].startswith("3.0 MB of text, about 2,000 rows, ")


AMBIGUOUS_DATES = ["05/03/2016 09:00", "04/02/2016 10:00"]  # May 3 or March 5? April 2 or February 4?


def _ambiguous_input(folder: Path, suffix: str) -> Path:
    frame = pd.DataFrame(
        {
            "Id": [1, 2],
            "CreationDate": AMBIGUOUS_DATES,
            "Title": ["How to merge pandas frames", "java list sort"],
            "Body": ["<p>x</p>", "<p>y</p>"],
        }
    )
    path = folder / f"ambiguous{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:  # dates kept as text, as a CSV read with dtype=str and written back
        frame.rename(columns=str.lower).rename(columns={"creationdate": "creation_date"}).to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=[needs_spark, pytest.mark.integration])])
def test_ambiguous_dates_are_read_month_first_and_said_by_score_as_by_train_and_evaluate(
    champion, tmp_path, capsys, caplog, engine, suffix
):
    """The loader's one date order, and its warning, on both engines; parquet's text dates were read value by
    value (dateutil), month-first silently where ambiguous and day-first where a day was above 12."""
    path = _ambiguous_input(tmp_path, suffix)
    out = tmp_path / "out"
    assert sotag_main(["score", str(path), "--out", str(out), "--engine", engine, "--no-progress"]) == 0
    warning = (
        f"{path}: creation dates such as '05/03/2016 09:00' could be day-first or month-first and none has a field "
        "above 12: read month-first (write them as YYYY-MM-DD to be sure)"
    )
    assert warning in caplog.messages
    assert warning in capsys.readouterr().err.splitlines()  # on a line of its own
    assert sorted(p.name for p in out.iterdir()) == ["creation_month=2016-04", "creation_month=2016-05"]
    scored = read_scored(out).sort_values("id")
    assert scored["creation_date"].dt.strftime("%Y-%m-%d %H:%M").tolist() == ["2016-05-03 09:00", "2016-04-02 10:00"]
