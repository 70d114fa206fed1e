"""Where the questions come from when the user does not say: the one data-path resolver.

Order: `--data` (`make … DATA=…`; one or several files or folders), else `$SOTAG_DATA`, else the shared data
set beside the checkout (`../shared/data/stackoverflow/questions.parquet`), else the small sample bundled in
`data/`, so a bare clone trains, compares and monitors without any download.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from tagger.errors import DataError

# The checkout (tagger/data/paths.py is two folders down): the one definition, used by infra and the stages too.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "stackoverflow" / "questions.parquet"
BUNDLED_SAMPLE = PROJECT_ROOT / "data" / "questions-sample.parquet"

NO_DATA_HELP = (
    "no data file at {path}. Pass one with --data (make demo DATA=path). Supported: a Stack Exchange "
    "Data Explorer CSV export (columns Id, CreationDate, Title, Body, Tags; e.g. "
    "SELECT Id, CreationDate, Title, Body, Tags FROM Posts WHERE PostTypeId = 1 on data.stackexchange.com), "
    "a Stack Exchange Posts.xml dump (archive.org/details/stackexchange), the Kaggle "
    "'60k Stack Overflow Questions' CSV, Kaggle's StackSample (Questions.csv with Tags.csv beside it, or their "
    "folder), a BigQuery posts_questions CSV export, or a parquet file (or folder of parts) with id, "
    "creation_date, title, body, tags. Several files or folders are read together: --data A B."
)


def default_data_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$SOTAG_DATA`, else the shared data when it is beside the checkout, else the bundled sample."""
    env = os.environ if environ is None else environ
    if env.get("SOTAG_DATA"):
        return Path(env["SOTAG_DATA"])
    return SHARED_DATA if SHARED_DATA.is_file() else BUNDLED_SAMPLE


def resolve_data_paths(
    values: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None, environ: Mapping[str, str] | None = None
) -> tuple[Path, ...]:
    """`--data` as given (one value or several; empty values, e.g. MLproject's default "", are ignored): those
    files or folders (parquet parts, StackSample, any folder of question files), or the default data set when
    none is given. DataError naming the first path that does not exist."""
    given = [values] if isinstance(values, str | os.PathLike) else list(values or ())
    data = as_data_paths([v for v in given if os.fspath(v)]) or (default_data_path(environ),)
    for path in data:
        if not path.exists():
            raise DataError(NO_DATA_HELP.format(path=path))
    return data


def as_data_paths(data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> tuple[Path, ...]:
    """Data paths as the configs hold them: a tuple of Paths, in order (one path alone is a tuple of one)."""
    return (Path(data),) if isinstance(data, str | os.PathLike) else tuple(Path(p) for p in data)


def describe_data(data: Sequence[Path]) -> str:
    """The data paths as one line for a log, a tag or a message: `a.parquet, extra/`."""
    return ", ".join(str(p) for p in data)
