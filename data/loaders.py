"""Readers for every supported question format, all returning the same canonical frame.

Canonical columns: id (int64), creation_date (datetime64, UTC, naive), title (str),
body (str, HTML, may be empty), tags (list[str]), source (str).
Formats: parquet (the shared data set), a Stack Exchange Data Explorer CSV export, the
Kaggle "60k Stack Overflow Questions" CSV, Kaggle's StackSample (`Questions.csv` + `Tags.csv`, given
either file's folder or `Questions.csv`), a BigQuery `posts_questions` CSV export, and a Stack Exchange
`Posts.xml` dump (streamed). CSV columns are matched whatever their case and word separators
(`CreationDate`, `creation_date`, `creation-date`), fields whatever their separator (`,` `;` tab `|`, found from
the header), dates in ISO, epoch or the file's own day/month order (sotag.data.dates; parquet dates stored as text
too). Text fields come out with "\n" line endings.

Undecodable bytes: a CSV line that is not UTF-8 is read as cp1252 (latin-1 for the five bytes cp1252
leaves undefined), which is what such bytes are in practice (Kaggle's StackSample is latin-1, Excel
re-saves cp1252); the lines repaired are counted (ValidationReport.repaired_encoding_lines) and named in a
warning, so no row is lost. A Posts.xml or parquet file with bytes its encoding forbids is malformed: a
DataError naming the file and the line (XML) or the row it stopped after (parquet).
"""

from __future__ import annotations

import codecs
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import BinaryIO

import pandas as pd
from tqdm import tqdm

from sotag.data.dates import DateOrder
from sotag.data.paths import as_data_paths
from sotag.data.store import STORE_SUFFIXES, StoreSource, iter_store, iter_store_source
from sotag.data.validate import ValidationReport, validate_questions
from sotag.tagger.errors import DataError
from sotag.tagger.text import normalize_newlines

log = logging.getLogger(__name__)

QUESTION_COLUMNS = ("id", "creation_date", "title", "body", "tags", "source")

# SEDE and Kaggle name columns in PascalCase, BigQuery in snake_case: a header is matched by its letters and
# digits, lower-cased (`CreationDate`, `creation_date`, `Creation-Date` and `CREATIONDATE` are one column).
_CSV_COLUMNS = {
    "id": "id",
    "creationdate": "creation_date",
    "title": "title",
    "body": "body",
    "tags": "tags",
    "source": "source",
}
_CANONICAL_NAMES = {"id": "Id", "creation_date": "CreationDate", "title": "Title", "body": "Body", "tags": "Tags"}
_NOT_WORD = re.compile(r"[\W_]+")
_TAG_SPLIT = re.compile(r"[<>|]+")
TEXT_COLUMNS = ("title", "body")


def column_key(name: object) -> str:
    """A header as compared: letters and digits only, lower case (a BOM and separators dropped)."""
    return _NOT_WORD.sub("", str(name)).lower()


def canonical_columns(columns: list[str]) -> dict[str, str]:
    """{header: canonical name} for the headers that name a question column (the first of each wins)."""
    out: dict[str, str] = {}
    for column in columns:
        name = _CSV_COLUMNS.get(column_key(column))
        if name is not None and name not in out.values():
            out[column] = name
    return out


def normalize_text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Title and body with "\n" line endings (tagger.text.normalize_newlines); other columns as they are."""
    for column in TEXT_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].map(lambda v: normalize_newlines(v) if isinstance(v, str) else v)
    return frame


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


def in_file_order(frame: pd.DataFrame, order: DateOrder, where: str) -> pd.DataFrame:
    """`creation_date` text written `a/b/yyyy` rewritten in the file's own day/month order (sotag.data.dates:
    settled by the first value that says it, ambiguous files read month-first with a warning, both orders refused);
    typed dates (timestamps, epoch numbers) are left as they are."""
    if "creation_date" not in frame.columns:
        return frame
    values = frame["creation_date"]
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return frame
    text = values.where(values.map(lambda v: isinstance(v, str)))  # a stray non-string value: not a slash date
    order.settle(text.astype("object"), where)
    frame["creation_date"] = values.where(text.isna(), order.to_iso(text.astype("object")))
    return frame


def _iter_parquet(
    path: Path, batch_rows: int | None, required: tuple[str, ...], notes: ReadNotes | None = None
) -> Iterator[pd.DataFrame]:
    import pyarrow as pa

    # One order per file, as a CSV's (iter_raw reads a folder file by file): no batch reads its months differently.
    order = DateOrder()
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
                yield normalize_text_columns(in_file_order(frame, order, str(part)))
                row += len(frame)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{part}: unreadable after row {row} ({exc})") from None


# The five bytes cp1252 leaves undefined; read as latin-1 (the C1 control of the same number).
_CP1252_UNDEFINED = frozenset((0x81, 0x8D, 0x8F, 0x90, 0x9D))
_REPAIR = "sotag-cp1252"


def _legacy_bytes(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: the bytes UTF-8 refused, read as cp1252 (latin-1 where cp1252 has no character)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    text = "".join(chr(b) if b in _CP1252_UNDEFINED else bytes([b]).decode("cp1252") for b in bad)
    return text, error.end


codecs.register_error(_REPAIR, _legacy_bytes)


class RepairingReader:
    """A binary file read as text: UTF-8, and each line that is not UTF-8 decoded with its bad bytes as cp1252.

    `repaired` lists the 1-based physical line numbers that needed it. Blocks that decode as UTF-8 (the usual
    case) cost one decode; only a failing block is decoded line by line.
    """

    def __init__(self, handle: BinaryIO, block: int = 1 << 20) -> None:
        self._handle = handle
        self._block = block
        self._pending = ""
        self._line = 0
        self.repaired: list[int] = []

    def _next_text(self) -> str:
        data = self._handle.read(self._block)
        if not data:
            return ""
        data += self._handle.readline()  # whole lines, so a repair is per line
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            parts = []
            for offset, line in enumerate(data.split(b"\n")):
                try:
                    parts.append(line.decode("utf-8"))
                except UnicodeDecodeError:
                    parts.append(line.decode("utf-8", errors=_REPAIR))
                    self.repaired.append(self._line + offset + 1)
            text = "\n".join(parts)
        self._line += data.count(b"\n")
        return text

    def read(self, size: int = -1) -> str:
        chunks = [self._pending]
        have = len(self._pending)
        while size < 0 or have < size:
            text = self._next_text()
            if not text:
                break
            chunks.append(text)
            have += len(text)
        joined = "".join(chunks)
        if size < 0:
            self._pending = ""
            return joined
        self._pending = joined[size:]
        return joined[:size]

    def __iter__(self) -> Iterator[str]:
        while line := self.read(1 << 16):
            yield line


_CSV_LINE = re.compile(r"line (\d+)")
_CSV_FIELDS = re.compile(r"Expected \d+ fields in line (\d+), saw (\d+)")
# The column read past a CSV's header (_iter_csv): a name no header spells.
_SPARE = "\x00sotag-spare-field"
_TAG_FILE = "tags.csv"


def stacksample_tags(questions: Path) -> Path | None:
    """Kaggle StackSample's `Tags.csv` (`Id,Tag`, one row per tag) beside `Questions.csv`, if there is one."""
    if questions.name.lower() == _TAG_FILE:
        return None
    for sibling in questions.parent.iterdir():
        if sibling.name.lower() == _TAG_FILE and sibling.is_file():
            return sibling
    return None


def _record_at(path: Path, sep: str, record: int) -> tuple[int, int]:
    """(the line it starts on, its field count) of record `record` (0-based, after the header; blank lines skipped,
    as pandas skips them): for an error message, so read again from the start."""
    import csv

    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=sep)
        header = next(reader, None)
        while header == []:
            header = next(reader, None)
        previous, seen, fields = reader.line_num, 0, 0
        for row in reader:
            if row:
                if seen == record:
                    fields = len(row)
                    break
                seen += 1
            previous = reader.line_num
    return previous + 1, fields


def _malformed(path: Path, sep: str, said: str, line: int | str, fields: int | str, header: int) -> DataError:
    """The one wording of a record with more fields than the header, whoever found it (pandas or sotag)."""
    return DataError(
        f"{path}: malformed CSV at line {line}{said}: {fields} fields where the header has {header} (a field "
        f"holding an unquoted {sep!r} must be quoted)"
    )


def _too_many_fields(path: Path, sep: str, said: str, record: int, header: int) -> DataError:
    line, fields = _record_at(path, sep, record)
    return _malformed(path, sep, said, line, fields, header)


def check_header_fits(
    frame: pd.DataFrame, path: Path, sep: str = ",", said: str = "", header: int | None = None
) -> None:
    """A DataError naming the line when the first record has more fields than the header (`header` fields; by
    default the frame's columns).

    pandas reads such a file without complaint: it takes the extra leading fields as the row index and shifts
    every column by as many places (ids read from the dates, dates from the titles, ...), so every row would be
    dropped or scored from the wrong field."""
    if isinstance(frame.index, pd.RangeIndex):
        return
    raise _too_many_fields(path, sep, said, 0, len(frame.columns) if header is None else header)


def _read_tag_rows(path: Path) -> dict[int, list[str]]:
    """{question id: tags in file order} from a StackSample `Tags.csv`."""
    with open(path, "rb") as handle:
        reader = RepairingReader(handle)
        try:
            frame = pd.read_csv(reader, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataError(f"{path}: not a readable Id,Tag CSV ({str(exc).strip()})") from None
        check_header_fits(frame, path)
    keys = {column_key(c): c for c in frame.columns}
    if "id" not in keys or "tag" not in keys:
        raise DataError(f"{path}: expected the columns Id, Tag (found: {', '.join(map(str, frame.columns))})")
    ids = pd.to_numeric(frame[keys["id"]], errors="coerce")
    rows = frame.assign(_id=ids)[ids.notna() & (frame[keys["tag"]].str.strip() != "")]
    tags: dict[int, list[str]] = {}
    for question, tag in zip(rows["_id"].astype("int64").tolist(), rows[keys["tag"]].str.strip().tolist(), strict=True):
        tags.setdefault(question, []).append(tag)
    return tags


def _warn_repaired(path: Path, lines: list[int]) -> None:
    if lines:
        first = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
        log.warning(
            "%s: %d line(s) not UTF-8, read as cp1252 (lines %s); the repaired rows are kept",
            path,
            len(lines),
            first,
        )


SEPARATORS = (",", ";", "\t", "|")


def csv_separator(path: Path) -> str:
    """The field separator of a CSV, found from its header line: the candidate (`,` `;` tab `|`) it holds most of,
    outside quotes (a French-locale Excel writes `;`); a comma when the header has none of them."""
    with open(path, "rb") as handle:
        header = handle.readline(1 << 16).decode("utf-8", errors="replace")
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {sep: unquoted.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: (counts[sep], sep == ","))
    return best if counts[best] else ","


def _csv_header(path: Path, sep: str) -> tuple[list[str], int]:
    """A CSV's column names as pandas reads them (a BOM dropped, an empty name `Unnamed: 0`, a repeat `Id.1`), and
    the records up to the header's end (blank lines before it count)."""
    import csv

    with open(path, "rb") as handle:
        names = [str(c) for c in pd.read_csv(RepairingReader(handle), sep=sep, dtype=str, nrows=0).columns]
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        records = 1
        for row in csv.reader(handle, delimiter=sep):
            if row:
                break
            records += 1
    return names, records


def _iter_csv(
    path: Path, batch_rows: int | None, required: tuple[str, ...], notes: ReadNotes | None = None
) -> Iterator[pd.DataFrame]:
    """SEDE export, the Kaggle 60k CSV, StackSample's Questions.csv (tags from Tags.csv beside it) or BigQuery's
    posts_questions: the same columns under different spellings, with any of the usual separators (found from
    the header) and dates in the file's own order (sotag.data.dates)."""
    tag_file = None
    row = 0
    sep = csv_separator(path)
    said = "" if sep == "," else f" (fields separated by {sep!r}, found from the header)"
    order = DateOrder()
    with open(path, "rb") as handle:
        decoded = RepairingReader(handle)
        header: list[str] = []
        try:
            header, header_records = _csv_header(path, sep)
            # One column past the header catches a record with too many fields wherever it falls: pandas does not
            # check the first record of each chunk after the first (it keeps the header's number of fields and
            # silently drops the rest). With the spare column, such a record fills it (a trailing empty field, as
            # `a,b,` under `A,B`, loses nothing and is read); more fields elsewhere are pandas' own ParserError, and
            # in the first record its shifted index (check_header_fits).
            reader = pd.read_csv(
                decoded,
                sep=sep,
                header=None,
                skiprows=header_records,
                names=[*header, _SPARE],
                dtype=str,
                keep_default_na=False,
                chunksize=batch_rows or 1 << 30,
            )
            for frame in reader:
                check_header_fits(frame, path, sep, said, len(header))
                spare = frame.pop(_SPARE)
                if (spare != "").any():
                    first = int((spare != "").to_numpy().argmax())
                    raise _too_many_fields(path, sep, said, row + first, len(header))
                names = canonical_columns(list(frame.columns))
                if "tags" not in names.values() and "tags" in required and row == 0:
                    tag_file = stacksample_tags(path)
                    tags_by_id = _read_tag_rows(tag_file) if tag_file else None
                missing = [c for c in required if c not in names.values() and not (c == "tags" and tag_file)]
                if missing:
                    hint = " (StackSample's Questions.csv needs its Tags.csv beside it)" if missing == ["tags"] else ""
                    raise DataError(
                        f"{path}: missing column(s) {', '.join(_CANONICAL_NAMES[c] for c in missing)}{hint} "
                        f"(found: {', '.join(map(str, frame.columns))}{said})"
                    )
                frame = in_file_order(frame[list(names)].rename(columns=names), order, str(path))
                if tag_file is not None:
                    ids = pd.to_numeric(frame["id"], errors="coerce")
                    frame["tags"] = [tags_by_id.get(int(i), []) if i == i else [] for i in ids.tolist()]
                if "source" not in frame.columns:
                    frame["source"] = path.name
                yield normalize_text_columns(frame)
                row += len(frame)
        except pd.errors.ParserError as exc:
            fields = _CSV_FIELDS.search(str(exc))
            if fields:
                raise _malformed(path, sep, said, fields.group(1), fields.group(2), len(header)) from None
            line = _CSV_LINE.search(str(exc))
            where = f"line {line.group(1)}" if line else f"after row {row}"
            raise DataError(f"{path}: malformed CSV at {where}{said}: {str(exc).strip()}") from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file is empty") from None
    _warn_repaired(path, decoded.repaired)
    if notes is not None:
        notes.repaired_encoding_lines += len(decoded.repaired)


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


def _iter_posts_xml(
    path: Path, batch_rows: int | None, required: tuple[str, ...], notes: ReadNotes | None = None
) -> Iterator[pd.DataFrame]:
    # A context manager: the bar ends its line however reading ends (a malformed element, a consumer that stops),
    # so an error prints on a line of its own. Batched reads (sotag score) draw their own bar.
    with tqdm(
        iter_posts_xml(path),
        desc=f"reading {path.name}",
        unit=" questions",
        mininterval=1,
        disable=batch_rows is not None,
    ) as rows:
        while chunk := list(islice(rows, batch_rows or 1 << 62)):
            frame = pd.DataFrame(chunk, columns=["id", "creation_date", "title", "body", "tags"])
            frame["source"] = path.name
            yield normalize_text_columns(frame)


_READERS = {
    ".parquet": _iter_parquet,
    ".csv": _iter_csv,
    ".xml": _iter_posts_xml,
    **dict.fromkeys(STORE_SUFFIXES, iter_store),  # a SQLite question store (sotag ingest)
}


@dataclass
class ReadNotes:
    """What reading repaired, for the validation report: lines whose bytes were not UTF-8 (read as cp1252)."""

    repaired_encoding_lines: int = 0


# input_format's answer for a folder of question files that are not all parquet (iter_raw reads it file by file).
FOLDER = "folder"


def input_file(path: Path) -> Path:
    """The file a path names: itself, or a StackSample folder's `Questions.csv` (any other folder: itself)."""
    if path.is_dir():
        for child in path.iterdir():
            if child.name.lower() == "questions.csv" and child.is_file():
                return child
    return path


def input_format(path: Path) -> str:
    """The suffix that picks the reader: ".parquet" for a folder of parquet parts only, FOLDER for any other folder
    of question files (`question_files`: each read by its own reader), a StackSample folder's Questions.csv's."""
    path = input_file(path)
    if path.is_dir():
        files = question_files(path)  # DataError, naming the folder, when it holds no question file
        return ".parquet" if all(f.suffix.lower() == ".parquet" for f in files) else FOLDER
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise DataError(
            f"{path}: unsupported format '{path.suffix}' (use .parquet, a SEDE/Kaggle/StackSample/BigQuery .csv, "
            "Posts.xml or a question store .db made by sotag ingest)"
        )
    return suffix


def iter_raw(
    path: str | Path,
    batch_rows: int | None = None,
    required: tuple[str, ...] = TRAINING_COLUMNS,
    notes: ReadNotes | None = None,
) -> Iterator[pd.DataFrame]:
    """The input in batches of at most `batch_rows` rows (None: one batch), canonical column names, not yet
    validated: never the whole input in memory when batched. Malformed files raise DataError naming the file
    and, where the format says it, the line; repairs are counted in `notes`."""
    if isinstance(path, StoreSource):  # a question store by URL (and its time window): read by query
        yield from iter_store_source(path, batch_rows, required, notes)
        return
    for file in question_files(Path(path)):  # a file or a StackSample folder: itself; any other folder: its files
        yield from _READERS[input_format(file)](input_file(file), batch_rows, required, notes)


def read_raw(path: str | Path, notes: ReadNotes | None = None) -> pd.DataFrame:
    """The file as one frame with canonical column names, not yet validated."""
    frames = list(iter_raw(path, notes=notes))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


# In a folder given as data, these files are questions (a Stack Exchange dump's other XML files are not).
_FOLDER_SUFFIXES = (".parquet", ".csv")
_POSTS_XML = "posts.xml"


def _hidden(path: Path, folder: Path) -> bool:
    """A name starting with `_` or `.` under `folder` (a writer's staging, `_SUCCESS`, `.crc`): not input."""
    return any(part.startswith(("_", ".")) for part in path.relative_to(folder).parts)


def question_files(path: Path) -> list[Path]:
    """The inputs one data path names, in reading order.

    A file: itself. A folder holding a `Questions.csv`: itself (Kaggle's StackSample, read with its Tags.csv).
    Any other folder: every `*.parquet`, `*.csv` and `Posts.xml` under it (sub-folders too), in path order,
    names starting with `_` or `.` skipped (as Spark does); a StackSample `Tags.csv` beside a `Questions.csv` is
    not a question file. DataError naming the path when it does not exist or the folder has no question file.
    """
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.is_file() or input_file(path) != path:
        return [path]
    found = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and not _hidden(p, path)
        and (p.suffix.lower() in _FOLDER_SUFFIXES or p.name.lower() == _POSTS_XML)
        and not (p.name.lower() == _TAG_FILE and (p.parent / "Questions.csv").is_file())
    )
    if not found:
        raise DataError(f"{path}: a folder with no question file (.parquet, .csv or Posts.xml, sub-folders included)")
    return found


def data_inputs(data: str | Path | Sequence[str | Path]) -> list[Path]:
    """Every question file the data paths name (question_files of each, in the order given), each file once
    (a file also named through its folder is read at its first place). DataError when none is given."""
    paths = as_data_paths(data)
    if not paths:
        raise DataError("--data: no questions file or folder given")
    seen: dict[object, Path | StoreSource] = {}
    for path in paths:
        if isinstance(path, StoreSource):
            seen.setdefault(path, path)
            continue
        for file in question_files(path):
            seen.setdefault(file.resolve(), file)
    return list(seen.values())


def load_questions(data: str | Path | Sequence[str | Path]) -> tuple[pd.DataFrame, ValidationReport]:
    """Read one or several supported files or folders (data_inputs), validate them together, and return the
    canonical frame sorted by date.

    Several inputs are concatenated in the order given. A question id that appears more than once (in one file
    or across files) is kept once: the copy with a body, else the one read first (validate_questions); the
    copies dropped are counted in ValidationReport.dropped_duplicate_id, and a warning names the inputs that
    shared ids. The report lists each input with the rows read from it.
    """
    notes = ReadNotes()
    inputs = data_inputs(data)
    frames = [read_raw(path, notes).assign(_input=i) for i, path in enumerate(inputs)]
    raw = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    raw["tags"] = raw["tags"].map(parse_tags)
    if len(inputs) > 1:
        _warn_shared_ids(raw, inputs)
    frame, report = validate_questions(raw.drop(columns="_input"))
    return frame, replace(
        report,
        repaired_encoding_lines=notes.repaired_encoding_lines,
        inputs=tuple(str(p) for p in inputs),
        rows_per_input=tuple(len(f) for f in frames),
    )


def _warn_shared_ids(raw: pd.DataFrame, inputs: list[Path]) -> None:
    """Warn when inputs share question ids (the later copies are dropped by validation), naming them."""
    ids = pd.to_numeric(raw["id"], errors="coerce")
    first = raw.assign(_id=ids).dropna(subset=["_id"]).drop_duplicates(["_id", "_input"])
    shared = first[first.duplicated("_id", keep=False)]
    if shared.empty:
        return
    named = sorted({inputs[i].name for i in shared["_input"].tolist()})
    log.warning(
        "%d question id(s) appear in more than one input (%s); each is kept once: the copy with a body, else the "
        "one read first (order of --data)",
        shared["_id"].nunique(),
        ", ".join(named),
    )
