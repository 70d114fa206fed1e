"""Readers for every supported question format, all returning the same canonical frame.

Canonical columns: id (int64), creation_date (datetime64, UTC, naive), title (str),
body (str, HTML, may be empty), tags (list[str]), source (str).
Formats: parquet (the shared data set), a Stack Exchange Data Explorer CSV export, the
Kaggle "60k Stack Overflow Questions" CSV, and a Stack Exchange `Posts.xml` dump (streamed).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from tagger.data.validate import ValidationReport, validate_questions
from tagger.errors import DataError

QUESTION_COLUMNS = ("id", "creation_date", "title", "body", "tags", "source")

# SEDE and the Kaggle export name columns in PascalCase; the canonical frame is lower case.
_CSV_COLUMNS = {"Id": "id", "CreationDate": "creation_date", "Title": "title", "Body": "body", "Tags": "tags"}
_TAG_SPLIT = re.compile(r"[<>|]+")


def parse_tags(value: object) -> list[str]:
    """Tags from `<a><b>`, `|a|b|`, a list or array; anything else gives no tag."""
    if isinstance(value, str):
        return [t for t in _TAG_SPLIT.split(value.strip()) if t]
    if value is None or (isinstance(value, float) and value != value):
        return []
    try:
        return [str(t) for t in value if str(t)]
    except TypeError:
        return []


def _require(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(map(str, frame.columns))})")


def _read_parquet(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    _require(frame, ("id", "creation_date", "title", "body", "tags"), path)
    if "source" not in frame.columns:
        frame["source"] = path.name
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    """SEDE export or the Kaggle 60k CSV: same columns, the Kaggle one adds a quality label `Y`."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        # Some public copies were re-saved by Excel in cp1252.
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="cp1252")
    frame = frame.rename(columns={c: c.strip().lstrip("\ufeff") for c in frame.columns})
    _require(frame, tuple(_CSV_COLUMNS), path)
    frame = frame.rename(columns=_CSV_COLUMNS)
    if "source" not in frame.columns:
        frame["source"] = path.name
    return frame


def iter_posts_xml(path: Path) -> Iterator[dict[str, str]]:
    """Questions (PostTypeId=1) from a Posts.xml dump, streamed element by element."""
    context = ET.iterparse(path, events=("start", "end"))
    _, root = next(context)
    for event, elem in context:
        if event == "end" and elem.tag == "row":
            if elem.get("PostTypeId") == "1":
                yield {
                    "id": elem.get("Id", ""),
                    "creation_date": elem.get("CreationDate", ""),
                    "title": elem.get("Title", ""),
                    "body": elem.get("Body", ""),
                    "tags": elem.get("Tags", ""),
                }
            # Free parsed rows as we go so a multi-GB dump never sits in memory.
            root.clear()


def _read_posts_xml(path: Path) -> pd.DataFrame:
    rows = list(tqdm(iter_posts_xml(path), desc=f"reading {path.name}", unit=" questions", mininterval=1))
    frame = pd.DataFrame(rows, columns=["id", "creation_date", "title", "body", "tags"])
    frame["source"] = path.name
    return frame


_READERS = {".parquet": _read_parquet, ".csv": _read_csv, ".xml": _read_posts_xml}


def read_raw(path: str | Path) -> pd.DataFrame:
    """The file as a frame with canonical column names, not yet validated."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unsupported format '{path.suffix}' (use .parquet, a SEDE/Kaggle .csv or Posts.xml)")
    return reader(path)


def load_questions(path: str | Path) -> tuple[pd.DataFrame, ValidationReport]:
    """Read any supported file, validate it, and return the canonical frame sorted by date."""
    raw = read_raw(path)
    raw["tags"] = raw["tags"].map(parse_tags)
    return validate_questions(raw)
