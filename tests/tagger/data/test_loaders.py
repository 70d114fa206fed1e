import pandas as pd
import pytest

from tagger.data import load_questions
from tagger.data.loaders import parse_tags
from tagger.errors import DataError


def test_parse_tags_formats():
    assert parse_tags("<python><pandas>") == ["python", "pandas"]
    assert parse_tags("|c#|.net|") == ["c#", ".net"]
    assert parse_tags(["a", "b"]) == ["a", "b"]
    assert parse_tags(None) == [] and parse_tags(float("nan")) == []


def test_parquet_roundtrip(questions_parquet, questions):
    frame, report = load_questions(questions_parquet)
    assert report.rows_read == len(questions) == report.rows_kept
    assert list(frame.columns) == ["id", "creation_date", "title", "body", "tags", "source"]
    assert frame["creation_date"].is_monotonic_increasing


def _sede_rows():
    return pd.DataFrame(
        {
            "Id": ["1", "2", "3", "4", "5", "2", "x"],
            "CreationDate": [
                "2018-01-01 10:00:00",
                "2018-01-02",
                "not a date",
                "2018-01-04",
                "2018-01-05",
                "2018-01-02",
                "2018-01-06",
            ],
            "Title": ["A", "B", "C", "", "E", "B", "G"],
            "Body": ["<p>a</p>", "", "<p>c</p>", "<p>d</p>", "<p>e</p>", "<p>b body</p>", "<p>g</p>"],
            "Tags": ["<python><pandas>", "<java>", "<sql>", "<css>", "", "<java>", "<go>"],
        }
    )


def test_sede_csv_validation_report(tmp_path):
    path = tmp_path / "QueryResults.csv"
    _sede_rows().to_csv(path, index=False)
    frame, report = load_questions(path)
    assert report.as_dict() == {
        "rows_read": 7,
        "dropped_bad_id": 1,
        "dropped_empty_title": 1,
        "dropped_bad_date": 1,
        "dropped_no_tag": 1,
        "dropped_duplicate_id": 1,
        "rows_kept": 2,
    }
    assert frame["id"].tolist() == [1, 2]
    # The duplicate with a body wins over the empty one.
    assert frame.loc[frame["id"] == 2, "body"].item() == "<p>b body</p>"
    assert frame.loc[0, "tags"] == ["python", "pandas"]


def test_kaggle_60k_csv_with_quality_column_and_cp1252(tmp_path):
    path = tmp_path / "data.csv"
    frame = pd.DataFrame(
        {
            "Id": [7],
            "Title": ["Café crème"],
            "Body": ["<p>x</p>"],
            "Tags": ["<java><jvm>"],
            "CreationDate": ["2016-01-01 00:00"],
            "Y": ["HQ"],
        }
    )
    frame.to_csv(path, index=False, encoding="cp1252")
    loaded, report = load_questions(path)
    assert report.rows_kept == 1
    assert loaded.loc[0, "title"] == "Café crème"
    assert loaded.loc[0, "tags"] == ["java", "jvm"]


def test_posts_xml_streams_questions_only(tmp_path):
    path = tmp_path / "Posts.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'
        '  <row Id="1" PostTypeId="1" CreationDate="2018-05-01T10:00:00.123" Title="Q one" '
        'Body="&lt;p&gt;hi&lt;/p&gt;" Tags="|python|numpy|" />\n'
        '  <row Id="2" PostTypeId="2" CreationDate="2018-05-01T11:00:00" Body="an answer" />\n'
        '  <row Id="3" PostTypeId="1" CreationDate="2018-05-02T10:00:00" Title="Q three" Body="" '
        'Tags="&lt;css&gt;&lt;html&gt;" />\n'
        "</posts>\n",
        encoding="utf-8",
    )
    frame, report = load_questions(path)
    assert frame["id"].tolist() == [1, 3]
    assert frame["tags"].tolist() == [["python", "numpy"], ["css", "html"]]
    assert frame.loc[0, "body"] == "<p>hi</p>"
    assert report.rows_read == 2


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "bad.csv"
    _sede_rows().drop(columns=["Tags"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing column.*Tags"):
        load_questions(path)


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "q.json").write_text("{}")
    with pytest.raises(DataError, match="unsupported format"):
        load_questions(tmp_path / "q.json")
    with pytest.raises(DataError, match="not found"):
        load_questions(tmp_path / "nope.parquet")


def test_batches_of_a_parquet_folder_in_name_order_skipping_hidden_parts(tmp_path, questions):
    from tagger.data.loaders import SCORING_COLUMNS, iter_raw

    folder = tmp_path / "parts"
    (folder / "sub").mkdir(parents=True)
    questions.iloc[:100].to_parquet(folder / "a.parquet")
    questions.iloc[100:250].to_parquet(folder / "sub" / "b.parquet")
    (folder / "_staging").mkdir()
    questions.iloc[:50].to_parquet(folder / "_staging" / "c.parquet")  # a writer's staging: not input
    batches = list(iter_raw(folder, 60, SCORING_COLUMNS))
    assert [len(b) for b in batches] == [60, 40, 60, 60, 30]
    assert pd.concat(batches)["id"].tolist() == questions["id"].iloc[:250].tolist()


def test_csv_batches_and_a_malformed_line_is_named(tmp_path):
    from tagger.data.loaders import iter_raw

    good = "Id,CreationDate,Title,Body,Tags\n" + "".join(f"{i},2018-01-02,t{i},b,<python>\n" for i in range(1, 8))
    path = tmp_path / "export.csv"
    path.write_text(good)
    assert [len(b) for b in iter_raw(path, 3)] == [3, 3, 1]
    path.write_text(good + "9,2018-01-02,t9,b,<python>,extra,fields\n")
    with pytest.raises(DataError, match=r"export\.csv: malformed CSV at line 9"):
        list(iter_raw(path, 3))


def test_malformed_posts_xml_names_the_line(tmp_path):
    from tagger.data.loaders import iter_raw

    path = tmp_path / "Posts.xml"
    path.write_text(
        '<posts>\n<row Id="1" PostTypeId="1" Title="a" CreationDate="2018-01-01" Tags="&lt;x&gt;"/>\n<row Id=2\n'
    )
    with pytest.raises(DataError, match=r"Posts\.xml: malformed XML at line 3"):
        list(iter_raw(path, 10))


def test_unreadable_parquet_part_is_named(tmp_path):
    from tagger.data.loaders import iter_raw

    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"broken\.parquet: not a readable parquet file"):
        list(iter_raw(folder, 10))
