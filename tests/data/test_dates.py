"""Dates as people's files write them (field cases french-excel-csv and api-epoch-dates, and their kind): another
separator, day-first dates, epoch timestamps; a column with no date at all is an error naming it."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from sotag.data import load_questions
from sotag.data.dates import parse_dates
from sotag.data.validate import drop_unusable
from sotag.tagger.errors import DataError

BODY = '"<p>line one\r\nline ""two""</p>"'


def _rows(dates: list[str], sep: str = ",") -> str:
    header = sep.join(["Id", "CreationDate", "Title", "Body", "Tags"])
    lines = [
        sep.join([str(100 + i), d, f"question {i} about pandas", BODY, "<python><pandas>"]) for i, d in enumerate(dates)
    ]
    return "\r\n".join([header, *lines]) + "\r\n"


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_csv_with_another_separator_and_day_first_dates_keeps_its_months(tmp_path, sep):
    """A SEDE export re-saved by a French-locale Excel: `;`, cp1252, CRLF, `14/01/2016 16:27`."""
    dates = ["14/01/2016 16:27", "02/03/2016 09:00", "05/04/2017 10:30"]
    path = tmp_path / "QueryResults.csv"
    path.write_bytes(_rows(dates, sep).replace("about pandas", "about pandas é").encode("cp1252"))
    frame, report = load_questions(path)
    assert report.rows_kept == 3 and report.dropped_bad_date == 0
    assert frame["creation_date"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2016-01-14 16:27",
        "2016-03-02 09:00",  # day-first, as the file's 14/01 says: not 2016-02-03
        "2017-04-05 10:30",
    ]
    assert frame["title"].str.contains("é").all() and frame["tags"].iloc[0] == ["python", "pandas"]


def test_month_first_when_the_file_says_so_and_ambiguous_files_are_read_month_first_and_reported(tmp_path, caplog):
    path = tmp_path / "us.csv"
    path.write_text(_rows(["01/14/2016 16:27", "02/03/2016 09:00"]))
    frame, _ = load_questions(path)
    assert frame["creation_date"].dt.strftime("%Y-%m-%d").tolist() == ["2016-01-14", "2016-02-03"]
    ambiguous = tmp_path / "ambiguous.csv"
    ambiguous.write_text(_rows(["02/03/2016 09:00", "04/05/2016 09:00"]))
    with caplog.at_level(logging.WARNING):
        frame, _ = load_questions(ambiguous)
    assert frame["creation_date"].dt.strftime("%Y-%m-%d").tolist() == ["2016-02-03", "2016-04-05"]
    assert "read month-first" in caplog.text


def test_a_file_with_both_orders_is_refused_naming_a_value_of_each(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(_rows(["14/01/2016 16:27", "01/14/2016 16:27"]))
    with pytest.raises(DataError, match=r"both orders: '14/01/2016 16:27' is day-first, '01/14/2016 16:27'"):
        load_questions(path)


def test_epoch_seconds_and_milliseconds_are_dates_in_csv_and_parquet(tmp_path):
    """The Stack Exchange API's JSON written as is: `creation_date` 1452788820."""
    path = tmp_path / "api.csv"
    path.write_text(_rows(["1452788820", "1453400040000", "2016-01-25 10:00:00"]).replace("<python><pandas>", "python"))
    frame, report = load_questions(path)
    assert report.dropped_bad_date == 0
    assert frame["creation_date"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2016-01-14 16:27",
        "2016-01-21 18:14",
        "2016-01-25 10:00",
    ]
    parquet = tmp_path / "api.parquet"
    pd.DataFrame(
        {"id": [1, 2], "creation_date": [1452788820, 1453400040], "title": ["a", "b"], "body": ["", ""],
         "tags": [["python"], ["java"]]}
    ).to_parquet(parquet)  # fmt: skip
    frame, _ = load_questions(parquet)
    assert frame["creation_date"].dt.year.tolist() == [2016, 2016]  # not 1970


def test_a_date_column_with_no_date_is_an_error_naming_it_in_every_command(tmp_path):
    path = tmp_path / "no-dates.csv"
    path.write_text(_rows(["yesterday", "last week"]))
    with pytest.raises(DataError, match=r"creation_date: no value is a date \(e\.g\. 'yesterday'\)"):
        load_questions(path)  # train, evaluate, promote, drift
    raw = pd.DataFrame({"id": ["1"], "creation_date": ["soon"], "title": ["t"], "body": [""]})
    with pytest.raises(DataError, match="creation_date: no value is a date"):
        drop_unusable(raw)  # score, chunk by chunk
    some = pd.DataFrame({"id": ["1", "2"], "creation_date": ["soon", "2016-01-01"], "title": ["t", "u"]})
    kept, unusable = drop_unusable(some)  # one bad value among good ones: dropped and counted
    assert len(kept) == 1 and unusable.bad_date == 1


def test_parse_dates_keeps_iso_and_datetimes():
    values = pd.Series(["2018-04-20 10:00:00", "2022-08-02 16:16:31.123 UTC", None])
    parsed = parse_dates(values)
    assert parsed.iloc[0] == pd.Timestamp("2018-04-20 10:00", tz="UTC") and pd.isna(parsed.iloc[2])
    stamps = pd.Series(pd.to_datetime(["2018-04-20"]))
    assert parse_dates(stamps).iloc[0] == pd.Timestamp("2018-04-20", tz="UTC")


def _parquet_with_text_dates(path, dates: list[str]) -> None:
    """Slash dates kept as text in parquet: a CSV read with dtype=str by pandas, written back as parquet."""
    pd.DataFrame(
        {
            "id": list(range(100, 100 + len(dates))),
            "creation_date": dates,
            "title": [f"question {i} about pandas" for i in range(len(dates))],
            "body": ["" for _ in dates],
            "tags": [["python"] for _ in dates],
        }
    ).to_parquet(path)


def test_slash_dates_stored_as_text_in_parquet_are_read_in_the_files_order_as_a_csvs(tmp_path, caplog):
    """Before, each value was parsed on its own: 14/01/2016 day-first beside 02/03/2016 month-first, no warning."""
    day_first = tmp_path / "french.parquet"
    _parquet_with_text_dates(day_first, ["14/01/2016 16:27", "02/03/2016 09:00"])
    frame, _ = load_questions(day_first)
    assert frame["creation_date"].dt.strftime("%Y-%m-%d").tolist() == ["2016-01-14", "2016-03-02"]

    ambiguous = tmp_path / "ambiguous.parquet"
    _parquet_with_text_dates(ambiguous, ["05/03/2016 09:00", "04/02/2016 10:00"])
    with caplog.at_level(logging.WARNING):
        frame, _ = load_questions(ambiguous)
    assert frame["creation_date"].dt.strftime("%Y-%m-%d").tolist() == ["2016-04-02", "2016-05-03"]
    assert caplog.messages == [
        f"{ambiguous}: creation dates such as '05/03/2016 09:00' could be day-first or month-first and none has a "
        "field above 12: read month-first (write them as YYYY-MM-DD to be sure)"
    ]
