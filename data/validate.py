"""Row-level validation with a report of what was dropped and why."""

from __future__ import annotations

from dataclasses import asdict, astuple, dataclass

import pandas as pd

from sotag.data.dates import check_parsed, parse_dates


@dataclass(frozen=True)
class ValidationReport:
    """Counts of rows read, dropped per reason, and kept."""

    rows_read: int
    dropped_bad_id: int
    dropped_empty_title: int
    dropped_bad_date: int
    dropped_no_tag: int
    dropped_duplicate_id: int
    rows_kept: int
    # CSV lines whose bytes were not UTF-8, read as cp1252 and kept (sotag.data.loaders.RepairingReader).
    repaired_encoding_lines: int = 0
    # The question files read (sotag.data.loaders.data_inputs) and the rows read from each, in reading order.
    inputs: tuple[str, ...] = ()
    rows_per_input: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class UnusableRows:
    """Rows no model can score, per reason (the first failing reason counts)."""

    bad_id: int = 0
    empty_title: int = 0
    bad_date: int = 0

    def __add__(self, other: UnusableRows) -> UnusableRows:
        return UnusableRows(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def total(self) -> int:
        return self.bad_id + self.empty_title + self.bad_date


def drop_unusable(raw: pd.DataFrame) -> tuple[pd.DataFrame, UnusableRows]:
    """Rows with an integer id, a non-empty title and a parseable creation date (sotag.data.dates: ISO, epoch
    seconds or milliseconds); ids as int64, dates as naive UTC, bodies as strings. Shared by training
    (validate_questions) and batch scoring, chunk by chunk. DataError when no creation date parses at all."""
    frame = raw
    ids = pd.to_numeric(frame["id"], errors="coerce")
    bad_id = ids.isna() | (ids != ids.round())
    frame = frame[~bad_id].assign(id=ids[~bad_id].astype("int64"))

    title = frame["title"].fillna("").astype(str).str.strip()
    empty_title = title == ""
    frame = frame[~empty_title].assign(title=title[~empty_title])

    dates = parse_dates(frame["creation_date"])
    check_parsed(frame["creation_date"], dates)
    bad_date = dates.isna()
    frame = frame[~bad_date].assign(creation_date=dates[~bad_date].dt.tz_localize(None).astype("datetime64[us]"))
    if "body" in frame.columns:
        frame = frame.assign(body=frame["body"].fillna("").astype(str))
    else:
        frame = frame.assign(body="")
    return frame, UnusableRows(int(bad_id.sum()), int(empty_title.sum()), int(bad_date.sum()))


def validate_questions(raw: pd.DataFrame) -> tuple[pd.DataFrame, ValidationReport]:
    """Drop unusable rows (counted per reason), remove duplicate ids, sort by creation date.

    Expects canonical columns with `tags` already parsed into lists. The first
    failing reason is the one a row is counted under.
    """
    rows_read = len(raw)
    frame, unusable = drop_unusable(raw)

    no_tag = frame["tags"].map(len) == 0
    frame = frame[~no_tag]

    frame = frame.assign(source=frame["source"].fillna("").astype(str))
    # Prefer the copy that has a body when the same id appears twice, else the one read first (a stable sort
    # keeps the input order among equals: the order of several --data inputs).
    frame = frame.assign(_has_body=frame["body"].str.len() > 0).sort_values(
        ["id", "_has_body"], ascending=[True, False], kind="stable"
    )
    duplicated = frame.duplicated("id", keep="first")
    frame = frame[~duplicated].drop(columns="_has_body")

    frame = frame.sort_values(["creation_date", "id"], kind="stable").reset_index(drop=True)
    frame = frame[["id", "creation_date", "title", "body", "tags", "source"]]
    report = ValidationReport(
        rows_read=rows_read,
        dropped_bad_id=unusable.bad_id,
        dropped_empty_title=unusable.empty_title,
        dropped_bad_date=unusable.bad_date,
        dropped_no_tag=int(no_tag.sum()),
        dropped_duplicate_id=int(duplicated.sum()),
        rows_kept=len(frame),
    )
    return frame, report
