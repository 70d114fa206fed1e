"""Where the questions come from when the user does not say: the one data-path resolver.

Order: the `data` setting (`--data`, `data = [...]` in sotag.toml, `$SOTAG_DATA`; one or several files or
folders), else the shared data set beside the state folder (`<home>/../shared/data/stackoverflow/questions.parquet`,
the layout of this project's checkouts), else the small sample shipped inside the package (`sotag.data`), so a bare
clone or a fresh `pip install` trains, compares and monitors without any download.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from sotag.data.store import StoreSource, as_store_source, window_bound
from sotag.tagger.errors import DataError, InputError

SHARED_DATA_BESIDE_HOME = Path("..") / "shared" / "data" / "stackoverflow" / "questions.parquet"
SAMPLE_NAME = "questions-sample.parquet"


def bundled_sample() -> Path:
    """The sample shipped as package data (read-only; read in place)."""
    return Path(str(resources.files("sotag.data") / SAMPLE_NAME))


def shared_data(home: Path) -> Path:
    """The shared data set's place beside `home` (it may not be there)."""
    return (home / SHARED_DATA_BESIDE_HOME).resolve()


NO_DATA_HELP = (
    "no data file at {path}. Pass one with --data (make demo DATA=path). Supported: a Stack Exchange "
    "Data Explorer CSV export (columns Id, CreationDate, Title, Body, Tags; e.g. "
    "SELECT Id, CreationDate, Title, Body, Tags FROM Posts WHERE PostTypeId = 1 on data.stackexchange.com), "
    "a Stack Exchange Posts.xml dump (archive.org/details/stackexchange), the Kaggle "
    "'60k Stack Overflow Questions' CSV, Kaggle's StackSample (Questions.csv with Tags.csv beside it, or their "
    "folder), a BigQuery posts_questions CSV export, or a parquet file (or folder of parts) with id, "
    "creation_date, title, body, tags. Several files or folders are read together: --data A B."
)


def default_data_path(home: Path) -> Path:
    """The shared data when it is beside `home`, else the bundled sample."""
    shared = shared_data(home)
    return shared if shared.is_file() else bundled_sample()


STORE = "store"  # `--data store`: the question store the settings name (sotag ingest)


def resolve_data_paths(
    values: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    home: Path,
    store: Path | str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> tuple[Path | StoreSource, ...]:
    """The data setting as given (one value or several; empty values are ignored): those files or folders
    (parquet parts, StackSample, any folder of question files), a question store (a `.db` file, a database URL
    such as `postgresql://…`, or `store` for the settings' store: `store`, its SQLite file or its URL), or the
    default data set when none is given.

    Every question store becomes a `StoreSource` read within `since`..`until` (store.since / store.until,
    `--since` / `--until`: creation dates, `until` excluded); a window given when no store is read is an
    InputError. DataError naming the first path that does not exist."""
    lower, upper = window_bound(since, "--since"), window_bound(until, "--until")
    given = [values] if isinstance(values, str | os.PathLike) else list(values or ())
    named = [v for v in given if os.fspath(v)]
    if any(os.fspath(v) == STORE for v in named):
        if store is None:
            raise DataError("--data store: no question store is set (store.url)")
        if isinstance(store, Path) and not store.exists():
            raise DataError(f"--data store: no question store at {store} yet (sotag ingest FILE puts questions in it)")
        named = [store if os.fspath(v) == STORE else v for v in named]
    data = tuple(as_store_source(v, lower, upper) for v in as_data_paths(named)) or (default_data_path(home),)
    for path in data:
        if not path.exists():
            raise DataError(NO_DATA_HELP.format(path=path))
    if (lower is not None or upper is not None) and not any(isinstance(p, StoreSource) for p in data):
        flag = "--since" if lower is not None else "--until"
        raise InputError(
            flag, "limits a question store to a time window (--data store, a .db or a database URL); none is read"
        )
    return data


def as_data_paths(
    data: str | os.PathLike[str] | StoreSource | Sequence[str | os.PathLike[str] | StoreSource],
) -> tuple[Path | StoreSource, ...]:
    """Data paths as the configs hold them: a tuple of Paths, in order (one path alone is a tuple of one); a
    question store named by URL (or already a `StoreSource`) is a `StoreSource`, never a Path (which would fold
    the URL's `//`)."""
    items = [data] if isinstance(data, str | os.PathLike | StoreSource) else list(data)
    return tuple(_data_path(item) for item in items)


def _data_path(item: str | os.PathLike[str] | StoreSource) -> Path | StoreSource:
    if isinstance(item, StoreSource):
        return item
    if isinstance(item, str) and "://" in item:
        return StoreSource(item)
    return Path(item)


def describe_data(data: Sequence[Path | StoreSource]) -> str:
    """The data paths as one line for a log, a tag or a message: `a.parquet, extra/`."""
    return ", ".join(str(p) for p in data)
