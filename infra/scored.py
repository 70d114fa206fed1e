"""The layout of `sotag score` output: parquet partitioned by creation month, committed atomically.

`OUT/creation_month=YYYY-MM/part-*.parquet`, columns `id, creation_date, tags (list<string>),
scores (list<double>), model_name, model_version, scored_at`. Both engines write a run into a staging
folder beside the partitions (a `_` name: Spark, pyarrow and pandas skip it), then `commit` swaps each
month folder in with renames, so a reader never sees a half-written partition and a rerun replaces
the months it wrote instead of adding to them. The drift job reads it back here.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sotag.tagger.errors import DataError

PARTITION = "creation_month"
STAGING_PREFIX = "_sotag-staging-"
TRASH_PREFIX = "_sotag-replaced-"

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("creation_date", pa.timestamp("us")),
        ("tags", pa.list_(pa.string())),
        ("scores", pa.list_(pa.float64())),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("scored_at", pa.timestamp("us", tz="UTC")),
    ]
)
COLUMNS = tuple(SCHEMA.names)


def new_staging(output: Path) -> Path:
    """A fresh staging folder inside `output` (same file system, so commit is renames)."""
    staging = output / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    staging.mkdir(parents=True)
    return staging


def write_months(frame: pd.DataFrame, staging: Path, part: str) -> list[str]:
    """One parquet file per creation month of `frame` (columns COLUMNS) under `staging`; the months written."""
    if frame.empty:
        return []
    dates = frame["creation_date"].dt
    months = dates.year * 100 + dates.month  # strftime costs a tenth of a batch's time
    written = []
    for key, rows in frame.groupby(months, sort=True):
        month = f"{key // 100:04d}-{key % 100:02d}"
        folder = staging / f"{PARTITION}={month}"
        folder.mkdir(exist_ok=True)
        table = pa.Table.from_pandas(rows[list(COLUMNS)], schema=SCHEMA, preserve_index=False)
        pq.write_table(table, folder / f"{part}.parquet")
        written.append(str(month))
    return written


def commit(staging: Path, output: Path) -> list[str]:
    """Swap every month folder of `staging` into `output`, replacing the folder of the same month."""
    months = sorted(p.name for p in staging.iterdir() if p.is_dir() and p.name.startswith(f"{PARTITION}="))
    trash = output / f"{TRASH_PREFIX}{staging.name[len(STAGING_PREFIX) :]}"
    for name in months:
        target = output / name
        if target.exists():
            trash.mkdir(exist_ok=True)
            target.rename(trash / name)
        (staging / name).rename(target)
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    return [m.split("=", 1)[1] for m in months]


def clean_leftovers(output: Path) -> list[Path]:
    """Staging folders an interrupted run left behind (never visible to readers); removed before a new run."""
    if not output.is_dir():
        return []
    left = [p for p in output.iterdir() if p.is_dir() and p.name.startswith((STAGING_PREFIX, TRASH_PREFIX))]
    for path in left:
        shutil.rmtree(path, ignore_errors=True)
    return left


def read_scored(path: str | Path, months: Sequence[str] | None = None) -> pd.DataFrame:
    """Scored rows (with their `creation_month`), optionally only some months."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no scored output here (run sotag score first)")
    dataset = ds.dataset(
        path,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([(PARTITION, pa.string())]), flavor="hive"),
        ignore_prefixes=["_", "."],
    )
    missing = [c for c in ("id", "creation_date", "tags", "scores", "model_version") if c not in dataset.schema.names]
    if missing:
        raise DataError(f"{path}: not sotag score output (missing {', '.join(missing)})")
    table = dataset.to_table(filter=ds.field(PARTITION).isin(list(months)) if months else None)
    return table.to_pandas()
