"""Readers for every supported question format, all returning the same canonical frame.

Canonical columns: id (int64), creation_date (datetime64, UTC, naive), title (str),
body (str, HTML, may be empty), tags (list[str]), source (str).
Formats: parquet (the shared data set), a Stack Exchange Data Explorer CSV export, the
Kaggle "60k Stack Overflow Questions" CSV, and a Stack Exchange `Posts.xml` dump (streamed).
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from itertools import islice
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


def _require(columns: list[str], required: tuple[str, ...], path: Path) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(map(str, columns))})")


# What training needs; scoring needs no tags.
TRAINING_COLUMNS = ("id", "creation_date", "title", "body", "tags")
SCORING_COLUMNS = ("id", "creation_date", "title")


def parquet_parts(path: Path) -> list[Path]:
    """A parquet file, or every `*.parquet` under a folder (name order; `_`/`.` names skipped, as Spark does)."""
    if path.is_file():
        return [path]
    parts = sorted(
        p for p in path.rglob("*.parquet") if not any(q.startswith(("_", ".")) for q in p.relative_to(path).parts)
    )
    if not parts:
        raise DataError(f"{path}: a folder with no .parquet file")
    return parts


def _open_part(part: Path, required: tuple[str, ...]):
    """A parquet part opened (its footer read, no rows), with the required columns; else DataError naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(part)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{part}: not a readable parquet file ({exc})") from None
    _require(handle.schema_arrow.names, required, part)
    return handle


def check_parquet(path: Path, required: tuple[str, ...] = TRAINING_COLUMNS) -> list[Path]:
    """The parquet parts of `path`, each readable and holding the required columns (schemas only, no rows)."""
    parts = parquet_parts(path)
    for part in parts:
        _open_part(part, required).close()
    return parts


def _iter_parquet(path: Path, batch_rows: int | None, required: tuple[str, ...]) -> Iterator[pd.DataFrame]:
    import pyarrow as pa

    for part in parquet_parts(path):
        handle = _open_part(part, required)
        names = handle.schema_arrow.names
        columns = [c for c in (*QUESTION_COLUMNS,) if c in names]
        row = 0
        try:
            batches = handle.iter_batches(batch_size=batch_rows or 1 << 62, columns=columns)
            for batch in batches:
                frame = batch.to_pandas()
                if "source" not in frame.columns:
                    frame["source"] = part.name
                yield frame
                row += len(frame)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{part}: unreadable after row {row} ({exc})") from None


def _csv_encoding(path: Path) -> str:
    """UTF-8 unless the file does not decode as such (public copies re-saved by Excel are cp1252)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        try:
            while block := handle.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


_CSV_LINE = re.compile(r"line (\d+)")


def _iter_csv(path: Path, batch_rows: int | None, required: tuple[str, ...]) -> Iterator[pd.DataFrame]:
    """SEDE export or the Kaggle 60k CSV: same columns, the Kaggle one adds a quality label `Y`."""
    reader = pd.read_csv(
        path, dtype=str, keep_default_na=False, encoding=_csv_encoding(path), chunksize=batch_rows or 1 << 30
    )
    renamed = {k: v for k, v in _CSV_COLUMNS.items() if v in required}
    row = 0
    try:
        for frame in reader:
            frame = frame.rename(columns={c: c.strip().lstrip("\ufeff") for c in frame.columns})
            _require(list(frame.columns), tuple(renamed), path)
            frame = frame.rename(columns=_CSV_COLUMNS)
            if "source" not in frame.columns:
                frame["source"] = path.name
            yield frame
            row += len(frame)
    except pd.errors.ParserError as exc:
        line = _CSV_LINE.search(str(exc))
        where = f"line {line.group(1)}" if line else f"after row {row}"
        raise DataError(f"{path}: malformed CSV at {where}: {str(exc).strip()}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None


def iter_posts_xml(path: Path) -> Iterator[dict[str, str]]:
    """Questions (PostTypeId=1) from a Posts.xml dump, streamed element by element."""
    try:
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
    except ET.ParseError as exc:
        line, column = exc.position
        raise DataError(f"{path}: malformed XML at line {line}, column {column} ({exc.msg})") from None
    except StopIteration:
        raise DataError(f"{path}: the file is empty") from None


def _iter_posts_xml(path: Path, batch_rows: int | None, required: tuple[str, ...]) -> Iterator[pd.DataFrame]:
    rows = iter_posts_xml(path)
    if batch_rows is None:
        rows = tqdm(rows, desc=f"reading {path.name}", unit=" questions", mininterval=1)
    while chunk := list(islice(rows, batch_rows or 1 << 62)):
        frame = pd.DataFrame(chunk, columns=["id", "creation_date", "title", "body", "tags"])
        frame["source"] = path.name
        yield frame


_READERS = {".parquet": _iter_parquet, ".csv": _iter_csv, ".xml": _iter_posts_xml}


def input_format(path: Path) -> str:
    """The suffix that picks the reader: a folder is read as parquet parts."""
    if path.is_dir():
        return ".parquet"
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise DataError(f"{path}: unsupported format '{path.suffix}' (use .parquet, a SEDE/Kaggle .csv or Posts.xml)")
    return suffix


def iter_raw(
    path: str | Path, batch_rows: int | None = None, required: tuple[str, ...] = TRAINING_COLUMNS
) -> Iterator[pd.DataFrame]:
    """The input in batches of at most `batch_rows` rows (None: one batch), canonical column names, not yet
    validated: never the whole input in memory when batched. Malformed files raise DataError naming the file
    and, where the format says it, the line."""
    path = Path(path)
    yield from _READERS[input_format(path)](path, batch_rows, required)


def read_raw(path: str | Path) -> pd.DataFrame:
    """The file as one frame with canonical column names, not yet validated."""
    frames = list(iter_raw(path))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def load_questions(path: str | Path) -> tuple[pd.DataFrame, ValidationReport]:
    """Read any supported file, validate it, and return the canonical frame sorted by date."""
    raw = read_raw(path)
    raw["tags"] = raw["tags"].map(parse_tags)
    return validate_questions(raw)
