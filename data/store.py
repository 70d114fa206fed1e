"""The question store: every question sotag has been given, one row per question id, and one row per load.

A SQL database through SQLAlchemy: SQLite in the state folder by default (`<home>/questions.db`), any URL
SQLAlchemy takes (PostgreSQL on the server profile) by the `store.url` setting. `sotag ingest` writes it
(`sotag.data.ingest`); every command that reads questions reads it as an input (`--data store`, or the SQLite file's
path), like any file: a `.db` / `.sqlite` file is a question store.

Tables:
* `questions`: id (primary key), creation_date (UTC, naive), title, body, tags (`|`-joined), source, and the
  loads that added and last changed the row.
* `loads`: when, which files (each with its sha256, what `sotag ingest --inbox` compares new files against), rows
  read / added / updated / unchanged / refused (with the reasons), and the
  store's snapshot digest after the load: a digest of every row's content in id order, so the same questions give
  the same digest whichever loads brought them, and a load that adds or changes no row leaves it as it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from sotag.tagger.errors import DataError, InputError

STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
TAG_SEPARATOR = "|"

metadata = sa.MetaData()
questions_table = sa.Table(
    "questions",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("creation_date", sa.DateTime, nullable=False, index=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("added_by_load", sa.Integer, nullable=False),
    sa.Column("changed_by_load", sa.Integer, nullable=False),
)
loads_table = sa.Table(
    "loads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("loaded_at", sa.DateTime, nullable=False),
    # JSON list: [{"path": ..., "sha256": ...}] per file read; a load before the inbox recorded the paths only.
    sa.Column("files", sa.Text, nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False),
    sa.Column("added", sa.Integer, nullable=False),
    sa.Column("updated", sa.Integer, nullable=False),
    sa.Column("unchanged", sa.Integer, nullable=False),
    sa.Column("refused", sa.Integer, nullable=False),
    sa.Column("refused_reasons", sa.Text, nullable=False),  # JSON {reason: count}
    sa.Column("digest", sa.String(64), nullable=False),
)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(url, future=True)


def is_store_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in STORE_SUFFIXES


def live_question_id(title: str, body: str) -> int:
    """The store id of a question asked live (a gateway feedback row): negative, so it never meets a StackOverflow
    id, and the same for the same text, so a question asked and labelled twice is one row."""
    digest = hashlib.sha256(f"{title}\x00{body}".encode()).digest()
    return -(int.from_bytes(digest[:7], "big") + 1)


def joined_tags(tags: list[str]) -> str:
    return TAG_SEPARATOR.join(tags)


def row_digest(row: tuple) -> bytes:
    """The content of one stored question: id, date, title, body, tags (not where or when it came from)."""
    question_id, created, title, body, tags = row
    text = f"{question_id}\t{pd.Timestamp(created).isoformat()}\t{title}\t{body}\t{tags}"
    return hashlib.sha256(text.encode("utf-8")).digest()


def snapshot_digest(connection: sa.Connection) -> str:
    """The store's snapshot digest: every row's content digest, in id order, hashed together."""
    columns = [questions_table.c[n] for n in ("id", "creation_date", "title", "body", "tags")]
    total = hashlib.sha256()
    # Streamed on the statement, not the connection: Connection.execution_options changes the connection in place,
    # and a loader's later UPDATE on it would then be sent as a server-side cursor (PostgreSQL refuses it).
    result = connection.execute(sa.select(*columns).order_by(questions_table.c.id).execution_options(yield_per=5000))
    for row in result:
        total.update(row_digest(tuple(row)))
    return total.hexdigest()


def latest_load(connection: sa.Connection) -> dict | None:
    row = connection.execute(sa.select(loads_table).order_by(loads_table.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def iter_store(
    path: Path, batch_rows: int | None, required: tuple[str, ...], notes: object = None
) -> Iterator[pd.DataFrame]:
    """A SQLite question store as the loader reads any input: canonical columns, tags as `|`-joined text (parsed by
    the loader as every format's are), in id order, `batch_rows` at a time."""
    engine = engine_for(sqlite_url(path))
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("questions"):
                raise DataError(f"{path}: not a question store (no questions table; `sotag ingest` makes one)")
            columns = [questions_table.c[n] for n in ("id", "creation_date", "title", "body", "tags", "source")]
            query = sa.select(*columns).order_by(questions_table.c.id)
            yield from pd.read_sql(query, connection, chunksize=batch_rows or 1 << 30)
    finally:
        engine.dispose()


def file_entries(files_json: str) -> list[dict]:
    """A load's `files` as [{"path": ..., "sha256": ...}]; a load written before sha256s were recorded (a list of
    paths) reads with sha256 None."""
    return [
        {"path": item, "sha256": None} if isinstance(item, str) else {"path": item["path"], "sha256": item["sha256"]}
        for item in json.loads(files_json)
    ]


def loaded_sha256s(connection: sa.Connection) -> set[str]:
    """The sha256 of every file an earlier load read (none for a store that does not exist yet)."""
    if not sa.inspect(connection).has_table("loads"):
        return set()
    found: set[str] = set()
    for (files,) in connection.execute(sa.select(loads_table.c.files)):
        found.update(entry["sha256"] for entry in file_entries(files) if entry["sha256"])
    return found


def describe_loads(connection: sa.Connection) -> list[dict]:
    """Every load, oldest first: `files` the paths read, `sha256` each path's digest (None for older loads)."""
    rows = connection.execute(sa.select(loads_table).order_by(loads_table.c.id)).mappings().all()
    out = []
    for row in rows:
        entry = dict(row)
        entries = file_entries(entry["files"])
        entry["files"] = [e["path"] for e in entries]
        entry["sha256"] = {e["path"]: e["sha256"] for e in entries}
        entry["refused_reasons"] = json.loads(entry["refused_reasons"])
        out.append(entry)
    return out


def shown_url(url: str) -> str:
    """A database URL as messages, logs and run tags show it: without its password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: shown as given, less anything before an '@'
        return url.rsplit("@", 1)[-1]


def window_bound(text: str | None, field: str) -> pd.Timestamp | None:
    """`--since` / `--until` (store.since / store.until): a date or an ISO time, UTC; None when not given."""
    if text is None or not str(text).strip():
        return None
    try:
        stamp = pd.Timestamp(str(text))
    except (ValueError, TypeError):
        stamp = pd.NaT
    if stamp is pd.NaT:
        raise InputError(field, f"{text!r} is not a date (YYYY-MM-DD) or an ISO time")
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


@dataclass(frozen=True)
class StoreSource:
    """A question store as a data input: its SQLAlchemy URL (SQLite or a server database such as PostgreSQL) and
    the time window read from it (`since` inclusive, `until` exclusive, on creation_date; None: unbounded).

    It stands in the data paths beside files and folders (`--data store`, `--data postgresql://…`, a `.db` file)
    and answers what the commands ask of a data path (`resolve()`, `name`, `str()`), but it is not a file: the
    loader reads it with `iter_store_source`, and a run's tags name it with `store_tags`."""

    url: str
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise InputError("--until", f"{self.until:%Y-%m-%d %H:%M} is not after --since {self.since:%Y-%m-%d %H:%M}")

    @property
    def file(self) -> Path | None:
        """The SQLite file, for a SQLite store."""
        return Path(self.url.removeprefix("sqlite:///")) if self.url.startswith("sqlite:///") else None

    def __repr__(self) -> str:  # never the password
        return f"StoreSource({self})"

    def resolve(self) -> StoreSource:
        return self

    def exists(self) -> bool:
        return self.file.exists() if self.file is not None else True  # a server database: its reader will tell

    @property
    def name(self) -> str:
        """`questions.db`, or the database's name on a server (`questions` of postgresql://…/questions)."""
        if self.file is not None:
            return self.file.name
        try:
            return sa.engine.make_url(self.url).database or "store"
        except Exception:
            return "store"

    @property
    def shown(self) -> str:
        """The store as tags and messages name it: the SQLite file's path, or the URL without its password."""
        return str(self.file.resolve()) if self.file is not None else shown_url(self.url)

    def describe_window(self) -> str:
        """`2018-01-01..2018-06-01` (end excluded), `2018-01-01..` or `..2018-06-01`; empty when unbounded."""
        if self.since is None and self.until is None:
            return ""
        since = f"{self.since:%Y-%m-%d}" if self.since is not None else ""
        until = f"{self.until:%Y-%m-%d}" if self.until is not None else ""
        return f"{since}..{until}"

    def __str__(self) -> str:
        window = self.describe_window()
        return f"{self.shown}" + (f" [{window}]" if window else "")

    def query(self) -> sa.Select:
        columns = [questions_table.c[n] for n in ("id", "creation_date", "title", "body", "tags", "source")]
        query = sa.select(*columns).order_by(questions_table.c.id)
        if self.since is not None:
            query = query.where(questions_table.c.creation_date >= self.since.to_pydatetime())
        if self.until is not None:
            query = query.where(questions_table.c.creation_date < self.until.to_pydatetime())
        return query


def iter_store_source(
    source: StoreSource, batch_rows: int | None, required: tuple[str, ...] = (), notes: object = None
) -> Iterator[pd.DataFrame]:
    """A question store named by URL, as the loader reads any input (`iter_store`), its window applied in the
    query. DataError naming the store when it has no questions table; a database that does not answer is the
    driver's error (a component fault, exit 1)."""
    engine = engine_for(source.url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("questions"):
                raise DataError(f"{source.shown}: not a question store (no questions table; `sotag ingest` makes one)")
            yield from pd.read_sql(source.query(), connection, chunksize=batch_rows or 1 << 30)
    finally:
        engine.dispose()


def source_snapshot(source: StoreSource) -> dict | None:
    """The latest load of the store (its id, when, and the snapshot digest); None when nothing was loaded."""
    engine = engine_for(source.url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("loads"):
                return None
            return latest_load(connection)
    finally:
        engine.dispose()


def as_store_source(value: object, since: pd.Timestamp | None = None, until: pd.Timestamp | None = None):
    """A data entry as the loader reads it: a database URL or a question store file (`.db`) becomes a
    `StoreSource` (with the window); anything else is returned as given."""
    if isinstance(value, StoreSource):  # its own window first, then the one given
        since = value.since if value.since is not None else since
        until = value.until if value.until is not None else until
        return StoreSource(value.url, since, until)
    text = str(value)
    if "://" in text:
        return StoreSource(text, since, until)
    if is_store_file(Path(text)):
        return StoreSource(sqlite_url(Path(text).resolve()), since, until)
    return value
