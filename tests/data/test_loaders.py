import pandas as pd
import pytest

from sotag.data import load_questions
from sotag.data.loaders import parse_tags
from sotag.tagger.errors import DataError


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
        "repaired_encoding_lines": 0,
        "inputs": (str(path),),
        "rows_per_input": (7,),
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
    from sotag.data.loaders import SCORING_COLUMNS, iter_raw

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
    from sotag.data.loaders import iter_raw

    good = "Id,CreationDate,Title,Body,Tags\n" + "".join(f"{i},2018-01-02,t{i},b,<python>\n" for i in range(1, 8))
    path = tmp_path / "export.csv"
    path.write_text(good)
    assert [len(b) for b in iter_raw(path, 3)] == [3, 3, 1]
    path.write_text(good + "9,2018-01-02,t9,b,<python>,extra,fields\n")
    with pytest.raises(DataError, match=r"export\.csv: malformed CSV at line 9"):
        list(iter_raw(path, 3))


@pytest.mark.parametrize("sep", [",", ";"])
def test_a_first_row_with_more_fields_than_the_header_is_named_not_read_shifted(tmp_path, sep):
    """pandas took the extra leading field as an index and shifted every column (ids read from the dates)."""
    from sotag.data.loaders import iter_raw

    path = tmp_path / "export.csv"
    rows = ["Id,CreationDate,Title,Body,Tags", "1,2018-01-02,t1,b,<python>,extra", "2,2018-01-02,t2,b,<python>"]
    path.write_text("\n".join(r.replace(",", sep) for r in rows) + "\n")
    for batch_rows in (None, 1):
        with pytest.raises(DataError, match=r"export\.csv: malformed CSV at line 2.*: 6 fields where the header has 5"):
            list(iter_raw(path, batch_rows))
    with pytest.raises(DataError, match=r"export\.csv: malformed CSV at line 2"):
        load_questions(path)
    # A quoted body over several lines before the bad record: the line the record starts on.
    path.write_text('\nId,CreationDate,Title,Body,Tags\n\n1,2018-01-02,t1,"b\nb",<python>,extra\n')
    with pytest.raises(DataError, match=r"export\.csv: malformed CSV at line 4"):
        list(iter_raw(path, None))


@pytest.mark.parametrize("extra", [",x", ",x,y", ",,x"])
def test_a_later_row_with_more_fields_than_the_header_is_named_whatever_the_batch(tmp_path, extra):
    """pandas never checked the first record of a chunk after the first: it dropped the extra fields silently."""
    from sotag.data.loaders import iter_raw

    path = tmp_path / "export.csv"
    good = [f"{i},2018-01-02,t{i},b,<python>" for i in range(1, 9)]
    fields = 5 + extra.count(",")
    for bad in range(len(good)):
        lines = ["Id,CreationDate,Title,Body,Tags", *good]
        lines[bad + 1] += extra
        path.write_text("\n".join(lines) + "\n")
        for batch_rows in (None, 1, 2, 3, 4, 5):
            if extra == ",,x" and batch_rows and bad and bad % batch_rows == 0:
                continue  # a first record of a chunk is read to one field past the header: that one is empty
            with pytest.raises(DataError, match=rf"malformed CSV at line {bad + 2}: {fields} fields where the header"):
                list(iter_raw(path, batch_rows))
    # A trailing empty field loses nothing: read.
    path.write_text("Id,CreationDate,Title,Body,Tags\n" + "".join(f"{r},\n" for r in good))
    assert [len(b) for b in iter_raw(path, 3)] == [3, 3, 2]


def test_a_stacksample_tags_file_with_a_shifted_first_row_is_named(tmp_path):
    path = _stacksample(tmp_path / "stacksample", [(1, "2018-01-01T00:00:00Z", "a", "x")], {1: ["python"]})
    (path.parent / "Tags.csv").write_text("Id,Tag\n1,python,extra\n1,pandas\n")
    with pytest.raises(DataError, match=r"Tags\.csv: malformed CSV at line 2: 3 fields where the header has 2"):
        load_questions(path)


def test_malformed_posts_xml_names_the_line(tmp_path):
    from sotag.data.loaders import iter_raw

    path = tmp_path / "Posts.xml"
    path.write_text(
        '<posts>\n<row Id="1" PostTypeId="1" Title="a" CreationDate="2018-01-01" Tags="&lt;x&gt;"/>\n<row Id=2\n'
    )
    with pytest.raises(DataError, match=r"Posts\.xml: malformed XML at line 3"):
        list(iter_raw(path, 10))


def test_unreadable_parquet_part_is_named(tmp_path):
    from sotag.data.loaders import iter_raw

    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"broken\.parquet: not a readable parquet file"):
        list(iter_raw(folder, 10))


# Issue 20 kind 2: undecodable bytes, StackSample, BigQuery, column spellings.
STACKSAMPLE_HEADER = b",Id,OwnerUserId,CreationDate,ClosedDate,Score,Title,Body\n"


def _stacksample(folder, rows, tags, encoding="utf-8"):
    """Kaggle's StackSample layout: an unnamed index column, OwnerUserId as a float, tags in Tags.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [STACKSAMPLE_HEADER]
    for i, (qid, date, title, body) in enumerate(rows):
        line = f'{i},{qid},4000000.0,{date},NA,0,"{title}","{body}"\n'
        lines.append(line.encode(encoding) if isinstance(encoding, str) else encoding(line))
    (folder / "Questions.csv").write_bytes(b"".join(lines))
    (folder / "Tags.csv").write_text("Id,Tag\n" + "".join(f"{q},{t}\n" for q, ts in tags.items() for t in ts))
    return folder / "Questions.csv"


def test_a_cp1252_line_in_a_utf8_csv_is_read_and_counted(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        b"Id,CreationDate,Title,Body,Tags\n"
        + "1,2018-01-01,Caf\u00e9 \u201cquoted\u201d,<p>x</p>,<java>\n".encode()
        + b"2,2018-01-02,r\xe9ponse \x93API\x94 \x9d,<p>y</p>,<python>\n"  # cp1252, and 0x9d (undefined there)
        + "3,2018-01-03,\u65e5\u672c,<p>z</p>,<go>\n".encode()
    )
    frame, report = load_questions(path)
    assert frame["title"].tolist() == [
        "Caf\u00e9 \u201cquoted\u201d",
        "r\u00e9ponse \u201cAPI\u201d \x9d",
        "\u65e5\u672c",
    ]
    assert report.repaired_encoding_lines == 1 and report.rows_kept == 3


def test_a_latin1_file_like_kaggles_stacksample_is_read_whole(tmp_path):
    rows = [
        (10, "2008-08-01T13:57:07Z", "Ol\u00e1 S\u00e3o Paulo", "<p>\u00e7a</p>"),
        (11, "2008-08-02T00:00:00Z", "B", ""),
    ]
    path = _stacksample(tmp_path / "ss", rows, {10: ["java"], 11: ["c#", ".net"]}, encoding="latin-1")
    frame, report = load_questions(path)
    assert frame["title"].tolist() == ["Ol\u00e1 S\u00e3o Paulo", "B"]
    assert frame["tags"].tolist() == [["java"], ["c#", ".net"]]
    assert report.repaired_encoding_lines == 1  # the one line that is not ASCII


def test_stacksample_by_file_or_folder_tags_from_tags_csv(tmp_path):
    rows = [
        (1, "2018-01-01T00:00:00Z", "a", "<p>x</p>"),
        (2, "2018-01-02T00:00:00Z", "b", ""),
        (3, "2018-01-03T00:00:00Z", "c", ""),
    ]
    path = _stacksample(tmp_path / "stacksample", rows, {1: ["python", "pandas"], 3: ["r"]})
    by_file, report = load_questions(path)
    by_folder, _ = load_questions(path.parent)
    pd.testing.assert_frame_equal(by_file, by_folder)
    assert by_file["id"].tolist() == [1, 3] and by_file["tags"].tolist() == [["python", "pandas"], ["r"]]
    assert report.dropped_no_tag == 1
    (path.parent / "Tags.csv").unlink()
    with pytest.raises(DataError, match=r"missing column\(s\) Tags \(StackSample's Questions.csv needs its Tags.csv"):
        load_questions(path)


def test_bigquery_posts_questions_export(tmp_path):
    path = tmp_path / "posts_questions.csv"
    pd.DataFrame(
        {
            "id": [73210679, 73199602],
            "title": ["az acr login fails", "MAUI app"],
            "body": ["<p>x</p>", "<p>y</p>"],
            "accepted_answer_id": ["", "1"],
            "creation_date": ["2022-08-02 16:16:31.123 UTC", "2022-08-01 21:04:19 UTC"],
            "tags": ["azure|docker", "maui|.net-maui"],
            "view_count": [3, 4],
        }
    ).to_csv(path, index=False)
    frame, report = load_questions(path)
    assert frame["id"].tolist() == [73199602, 73210679]
    assert frame["tags"].tolist() == [["maui", ".net-maui"], ["azure", "docker"]]
    assert frame["creation_date"].tolist() == [
        pd.Timestamp("2022-08-01 21:04:19"),
        pd.Timestamp("2022-08-02 16:16:31.123"),
    ]
    assert report.rows_kept == 2


@pytest.mark.parametrize(
    "header",
    [
        "Id,CreationDate,Title,Body,Tags",
        "id,creation_date,title,body,tags",
        "ID,CREATION_DATE,TITLE,BODY,TAGS",
        "Id,Creation-Date,Title,Body,Tags",
        "\ufeffId, Creation Date ,Title,Body,Tags",
    ],
)
def test_columns_match_whatever_their_case_and_separators(tmp_path, header):
    path = tmp_path / "q.csv"
    path.write_text(header + "\n5,2018-01-01,t,<p>b</p>,<python>\n", encoding="utf-8")
    frame, _ = load_questions(path)
    assert frame[["id", "title", "tags"]].to_dict("records") == [{"id": 5, "title": "t", "tags": ["python"]}]


def test_text_fields_come_out_with_lf_line_endings(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b'Id,CreationDate,Title,Body,Tags\r\n1,2018-01-01,t,"<p>a\r\nb\rc\xe2\x80\xa8d</p>",<x>\r\n')
    frame, _ = load_questions(path)
    assert frame.loc[0, "body"] == "<p>a\nb\nc\nd</p>"
    xml = tmp_path / "Posts.xml"
    xml.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<posts><row Id="1" PostTypeId="1" CreationDate="2018-05-01T10:00:00"'
        ' Title="t" Body="a&#xD;&#xA;b&#xD;c" Tags="|x|" /></posts>\n',
        encoding="utf-8",
    )
    assert load_questions(xml)[0].loc[0, "body"] == "a\nb\nc"


def test_undecodable_xml_and_parquet_are_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    xml = tmp_path / "Posts.xml"
    xml.write_bytes(
        b'<?xml version="1.0" encoding="utf-8"?>\n<posts>\n<row Id="1" PostTypeId="1" Title="caf\xe9" />\n</posts>\n'
    )
    with pytest.raises(DataError, match=r"Posts.xml: malformed XML at line 3"):
        load_questions(xml)
    titles = pa.array([b"ok", b"caf\xe9"], pa.binary()).view(pa.string())
    table = pa.table(
        {
            "id": [1, 2],
            "creation_date": pa.array([pd.Timestamp("2018-01-01")] * 2),
            "title": titles,
            "body": ["", ""],
            "tags": [["a"], ["b"]],
        }
    )
    pq.write_table(table, tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad.parquet: unreadable after row 0 .*caf"):
        load_questions(tmp_path / "bad.parquet")


# Issue 23 item 3: several files or folders read together.
def _sede(frame: pd.DataFrame) -> pd.DataFrame:
    """Questions as a SEDE export writes them (PascalCase columns, `<a><b>` tags)."""
    return pd.DataFrame(
        {
            "Id": frame["id"],
            "CreationDate": frame["creation_date"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "Title": frame["title"],
            "Body": frame["body"],
            "Tags": frame["tags"].map(lambda ts: "".join(f"<{t}>" for t in ts)),
        }
    )


def test_several_files_of_different_formats_are_concatenated(tmp_path, questions):
    questions.iloc[:200].to_parquet(tmp_path / "a.parquet")
    _sede(questions.iloc[200:]).to_csv(tmp_path / "b.csv", index=False)
    frame, report = load_questions([tmp_path / "a.parquet", tmp_path / "b.csv"])
    assert sorted(frame["id"]) == sorted(questions["id"])
    assert frame["creation_date"].is_monotonic_increasing
    assert report.rows_read == len(questions) == report.rows_kept and report.dropped_duplicate_id == 0
    assert report.inputs == (str(tmp_path / "a.parquet"), str(tmp_path / "b.csv"))
    assert report.rows_per_input == (200, len(questions) - 200)
    assert set(frame["source"]) == {"synthetic", "b.csv"}  # the parquet's own column; the CSV's file name


def test_duplicate_ids_across_files_are_kept_once_and_counted(tmp_path, questions, caplog):
    first, second = questions.iloc[:250].copy(), questions.iloc[150:].copy()  # ids 150..249 in both
    second["title"] = "second copy " + second["title"]
    second.loc[second.index[:10], "body"] = ""  # ids 150..159 have no body in the second file
    first.loc[first.index[160:170], "body"] = ""  # ids 160..169 have none in the first
    first.to_parquet(tmp_path / "first.parquet")
    second.to_parquet(tmp_path / "second.parquet")
    frame, report = load_questions([tmp_path / "first.parquet", tmp_path / "second.parquet"])
    assert report.rows_read == 250 + 210 and report.dropped_duplicate_id == 100
    assert report.rows_kept == len(questions) and frame["id"].is_unique
    titles = frame.set_index("id")["title"]
    shared = questions["id"].iloc[150:250].tolist()
    # The copy with a body wins; between two with a body, the file given first.
    from_second = set(questions["id"].iloc[160:170])
    assert [i for i in shared if titles[i].startswith("second copy ")] == sorted(from_second)
    assert "100 question id(s) appear in more than one input (first.parquet, second.parquet)" in caplog.text
    # Given the other way round, the other file's copies win.
    frame, report = load_questions([tmp_path / "second.parquet", tmp_path / "first.parquet"])
    titles = frame.set_index("id")["title"]
    assert report.dropped_duplicate_id == 100
    assert sum(titles[i].startswith("second copy ") for i in shared) == 100 - 10


def test_a_folder_reads_its_question_files_in_path_order(tmp_path, questions):
    folder = tmp_path / "exports"
    (folder / "2018").mkdir(parents=True)
    _sede(questions.iloc[:100]).to_csv(folder / "b.csv", index=False)
    questions.iloc[100:300].to_parquet(folder / "2018" / "a.parquet")
    _sede(questions.iloc[300:]).to_csv(folder / "a.csv", index=False)
    (folder / "_staging").mkdir()
    questions.iloc[:5].assign(id=99).to_parquet(folder / "_staging" / "c.parquet")  # a writer's staging: skipped
    (folder / "README.txt").write_text("not questions")
    (folder / "Comments.xml").write_text("<comments/>")  # a dump's other XML files are not questions
    from sotag.data.loaders import data_inputs

    assert data_inputs(folder) == [folder / "2018" / "a.parquet", folder / "a.csv", folder / "b.csv"]
    frame, report = load_questions([folder])
    assert sorted(frame["id"]) == sorted(questions["id"]) and report.rows_per_input == (200, 60, 100)
    # A file named again through its folder is read once, at its first place.
    again = data_inputs([folder / "b.csv", folder])
    assert again == [folder / "b.csv", folder / "2018" / "a.parquet", folder / "a.csv"]


def test_bad_inputs_are_named(tmp_path, questions):
    questions.to_parquet(tmp_path / "good.parquet")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    (tmp_path / "q.json").write_text("{}")
    with pytest.raises(DataError, match=r"data file not found: .*missing\.parquet"):
        load_questions([tmp_path / "good.parquet", tmp_path / "missing.parquet"])
    with pytest.raises(DataError, match=r"empty: a folder with no question file"):
        load_questions([tmp_path / "good.parquet", tmp_path / "empty"])
    with pytest.raises(DataError, match=r"q\.json: unsupported format"):
        load_questions([tmp_path / "good.parquet", tmp_path / "q.json"])
    with pytest.raises(DataError, match="no questions file or folder given"):
        load_questions([])
