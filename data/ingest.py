"""`sotag ingest`: questions from files into the question store, one load at a time, all or nothing.

A load reads its files with the one loader (every supported format; titles without tags or bodies too), drops the
rows no command can use (no integer id, no title, no date: counted per reason) and upserts the rest by question id:
a new id is added; a known id is replaced by the later copy when that copy carries tags or a body and differs
(a copy with neither never erases what the store has). Within one load the same rule picks among copies of an id
(the later copy with tags or a body, else the first). A load is one transaction: it is written whole or not at all,
and a load whose refused rows are more than `max_refused_share` of what it read is refused whole (exit 2 naming the
counts), nothing written. Each load is a row of `loads` with its files (each with its sha256), its counts and the
store's snapshot digest after it.

The inbox (`sotag ingest --inbox`, the weekly pipeline's first step): a folder where new files land; a load from it
reads only the files whose sha256 no earlier load of the store recorded (a file copied in twice, or renamed, is not
read again), and there is no load at all when every file there was read before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from sotag.data.loaders import SCORING_COLUMNS, ReadNotes, data_inputs, iter_raw, parse_tags, question_files
from sotag.data.store import (
    engine_for,
    joined_tags,
    latest_load,
    loaded_sha256s,
    loads_table,
    metadata,
    questions_table,
    snapshot_digest,
)
from sotag.data.validate import drop_unusable
from sotag.tagger.errors import DataError

# SQLite takes at most 32,766 bound parameters per statement; batches stay well under it.
BATCH = 2000
CONTENT = ("creation_date", "title", "body", "tags")


@dataclass(frozen=True)
class LoadResult:
    load_id: int
    files: tuple[str, ...]
    rows_read: int
    added: int
    updated: int
    unchanged: int
    refused: dict[str, int]
    digest: str
    previous_digest: str | None
    store_rows: int

    def line(self) -> str:
        reasons = " ".join(f"{k}={v}" for k, v in self.refused.items())
        return (
            f"ingest: load {self.load_id}: read={self.rows_read} added={self.added} updated={self.updated} "
            f"unchanged={self.unchanged} refused={sum(self.refused.values())} ({reasons}) "
            f"store_rows={self.store_rows} digest={self.digest[:16]}"
        )


def read_inputs(inputs: Sequence[Path]) -> tuple[pd.DataFrame, list[Path]]:
    """Every question of `inputs` in reading order, canonical columns (tags as lists, body and source filled)."""
    notes = ReadNotes()
    files = data_inputs(list(inputs))
    frames = []
    for order, file in enumerate(files):
        for chunk in iter_raw(file, required=SCORING_COLUMNS, notes=notes):
            chunk = chunk.assign(_file=order)
            if "tags" not in chunk.columns:
                chunk = chunk.assign(tags="")
            if "source" not in chunk.columns:
                chunk = chunk.assign(source=file.name)
            frames.append(chunk)
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*SCORING_COLUMNS, "tags"])
    raw["tags"] = raw["tags"].map(parse_tags)
    return raw, files


def usable_rows(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows a store keeps (one per id, by the upsert rule) and the refused rows per reason."""
    frame, unusable = drop_unusable(raw)
    frame = frame.assign(
        source=frame["source"].fillna("").astype(str),
        tags=frame["tags"].map(joined_tags),
        rich=(frame["tags"].map(len) > 0) | (frame["body"].str.len() > 0),
        _order=range(len(frame)),
    )
    # Per id: the latest copy with tags or a body, else the first copy.
    rich = frame[frame["rich"]].sort_values("_order").drop_duplicates("id", keep="last")
    plain = frame[~frame["id"].isin(rich["id"])].sort_values("_order").drop_duplicates("id", keep="first")
    kept = pd.concat([rich, plain]).sort_values("id").reset_index(drop=True)
    refused = {"bad_id": unusable.bad_id, "empty_title": unusable.empty_title, "bad_date": unusable.bad_date}
    return kept[["id", "creation_date", "title", "body", "tags", "source", "rich"]], refused


def ingest(url: str, inputs: Sequence[Path], max_refused_share: float = 0.5, now: datetime | None = None) -> LoadResult:
    """Load `inputs` into the store at `url` (created on first use) as one transaction; the load's result."""
    raw, files = read_inputs(inputs)
    entries = [{"path": str(f), "sha256": file_sha256(f)} for f in files]
    return load_rows(url, raw, entries, max_refused_share, now)


def frame_sha256(raw: pd.DataFrame) -> str:
    """A digest of question rows read from somewhere other than a file (the feedback of the prediction log)."""
    digest = hashlib.sha256()
    for row in raw[["id", "creation_date", "title", "body", "tags"]].itertuples(index=False):
        digest.update(json.dumps([str(v) if not isinstance(v, list) else v for v in row]).encode("utf-8"))
    return digest.hexdigest()


def load_rows(
    url: str,
    raw: pd.DataFrame,
    entries: list[dict[str, str]],
    max_refused_share: float = 0.5,
    now: datetime | None = None,
) -> LoadResult:
    """Load question rows (canonical columns, tags as lists) read from `entries` ({path, sha256} each, recorded
    with the load) as one transaction."""
    files = [e["path"] for e in entries]
    rows_read = len(raw)
    if rows_read == 0:
        raise DataError(f"{', '.join(map(str, files))}: no question rows to ingest")
    kept, refused = usable_rows(raw)
    total_refused = sum(refused.values())
    if total_refused > max_refused_share * rows_read:
        reasons = ", ".join(f"{k}={v}" for k, v in refused.items() if v)
        raise DataError(
            f"{', '.join(map(str, files))}: {total_refused} of {rows_read} rows refused ({reasons}), over the "
            f"store.max_refused_share of {max_refused_share:g}: the load is refused whole, nothing written"
        )
    stamp = (now or datetime.now(UTC)).replace(tzinfo=None)
    engine = engine_for(url)
    try:
        with engine.begin() as connection:  # one transaction: the whole load or nothing
            metadata.create_all(connection)
            before = latest_load(connection)
            load_id = connection.execute(
                loads_table.insert().values(
                    loaded_at=stamp,
                    files=json.dumps(entries),
                    rows_read=rows_read,
                    added=0,
                    updated=0,
                    unchanged=0,
                    refused=total_refused,
                    refused_reasons=json.dumps(refused),
                    digest="",
                )
            ).inserted_primary_key[0]
            added, updated, unchanged = _upsert(connection, kept, load_id)
            digest = snapshot_digest(connection)
            store_rows = connection.execute(sa.select(sa.func.count()).select_from(questions_table)).scalar_one()
            connection.execute(
                loads_table.update()
                .where(loads_table.c.id == load_id)
                .values(added=added, updated=updated, unchanged=unchanged, digest=digest)
            )
    finally:
        engine.dispose()
    return LoadResult(
        load_id, tuple(str(f) for f in files), rows_read, added, updated, unchanged, refused, digest,
        before["digest"] if before else None, store_rows,
    )  # fmt: skip


def file_sha256(path: Path) -> str:
    """The sha256 of a question file's bytes; of a folder read as one input (a StackSample folder), of its files'
    names and bytes in path order."""
    digest = hashlib.sha256()
    parts = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for part in parts:
        if path.is_dir():
            digest.update(str(part.relative_to(path)).encode("utf-8") + b"\0")
        with part.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class InboxFiles:
    new: tuple[Path, ...]  # to load, in reading order
    seen: tuple[Path, ...]  # read by an earlier load (or a copy of a file listed before it here)


def inbox_files(url: str, folder: Path) -> InboxFiles:
    """The question files in `folder` whose sha256 no earlier load of the store at `url` recorded. DataError when
    the folder does not exist; an empty folder has no new file."""
    if not folder.is_dir():
        raise DataError(f"store.inbox: {folder} is not a folder (create it, or name another with --inbox FOLDER)")
    try:
        files = question_files(folder)
    except DataError:  # a folder with no question file: nothing new
        return InboxFiles((), ())
    known = _known_sha256s(url)
    new, seen = [], []
    for file in files:
        sha = file_sha256(file)
        (seen if sha in known else new).append(file)
        known.add(sha)
    return InboxFiles(tuple(new), tuple(seen))


def _known_sha256s(url: str) -> set[str]:
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return set()  # no store yet (and connecting would create an empty file)
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return loaded_sha256s(connection)
    finally:
        engine.dispose()


def _upsert(connection: sa.Connection, kept: pd.DataFrame, load_id: int) -> tuple[int, int, int]:
    added = updated = unchanged = 0
    table = questions_table
    for start in range(0, len(kept), BATCH):
        batch = kept.iloc[start : start + BATCH]
        ids = [int(i) for i in batch["id"]]
        columns = [table.c.id, *(table.c[n] for n in CONTENT)]
        existing = {
            row[0]: tuple(row[1:]) for row in connection.execute(sa.select(*columns).where(table.c.id.in_(ids)))
        }
        new_rows, changed = [], []
        for row in batch.itertuples(index=False):
            values = {
                "id": int(row.id),
                "creation_date": pd.Timestamp(row.creation_date).to_pydatetime(),
                "title": row.title,
                "body": row.body,
                "tags": row.tags,
                "source": row.source,
            }
            old = existing.get(values["id"])
            if old is None:
                new_rows.append({**values, "added_by_load": load_id, "changed_by_load": load_id})
            elif row.rich and _content(*(values[n] for n in CONTENT)) != _content(*old):
                changed.append({**values, "key": values["id"], "changed_by_load": load_id})
            else:
                unchanged += 1
        if new_rows:
            connection.execute(table.insert(), new_rows)
            added += len(new_rows)
        if changed:  # one statement, executed for every changed row
            connection.execute(table.update().where(table.c.id == sa.bindparam("key")), changed)
        updated += len(changed)
    return added, updated, unchanged


def _content(created: object, title: str, body: str, tags: str) -> tuple:
    """What decides whether a stored row changed: its date (as a Timestamp, whatever the driver returns), title,
    body and tags."""
    return (pd.Timestamp(created), title, body, tags)
