"""The question store: every question sotag has been given, one row per question id, and one row per load.

A SQL database through SQLAlchemy: SQLite in the state folder by default (`<home>/questions.db`), any URL
SQLAlchemy takes (PostgreSQL on the server profile) by the `store.url` setting. `sotag ingest` writes it
(`sotag.data.ingest`); every command that reads questions reads it as an input (`--data store`, or the SQLite file's
path), like any file: a `.db` / `.sqlite` file is a question store.

Tables:
* `questions`: id (primary key), creation_date (UTC, naive), title, body, tags (`|`-joined), source, and the
  loads that added and last changed the row.
* `loads`: when, which files, rows read / added / updated / unchanged / refused (with the reasons), and the
  store's snapshot digest after the load: a digest of every row's content in id order, so the same questions give
  the same digest whichever loads brought them, and a load that adds or changes no row leaves it as it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from sotag.tagger.errors import DataError

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
    sa.Column("files", sa.Text, nullable=False),  # JSON list
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
    result = connection.execution_options(yield_per=5000).execute(sa.select(*columns).order_by(questions_table.c.id))
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


def describe_loads(connection: sa.Connection) -> list[dict]:
    rows = connection.execute(sa.select(loads_table).order_by(loads_table.c.id)).mappings().all()
    out = []
    for row in rows:
        entry = dict(row)
        entry["files"] = json.loads(entry["files"])
        entry["refused_reasons"] = json.loads(entry["refused_reasons"])
        out.append(entry)
    return out


def store_snapshot(path: Path) -> dict | None:
    """The latest load of the SQLite store at `path` (its id, when, and the snapshot digest); None when empty."""
    engine = engine_for(sqlite_url(path))
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("loads"):
                return None
            return latest_load(connection)
    finally:
        engine.dispose()
