"""`sotag score`: tag a backlog of questions with a registered model, on Spark or in-process.

Both engines read through the one loader (tagger.data), drop the rows no model can score with the one
validation (counted per reason, never a crash), score with the registered pyfunc pinned to one version,
and write parquet partitioned by creation month (tagger.scored: staged, then committed by renames).
* `spark`: `mlflow.pyfunc.spark_udf` with a struct return type runs the pyfunc inside Spark's Python
  workers, on `local[*]` or any master URL. Parquet input is read by Spark itself; CSV and Posts.xml are
  first streamed through the loader into parquet parts in the staging folder.
* `local`: the same pyfunc in this process, over the input in chunks (memory bounded by the chunk size).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from registry.resolve import ResolvedModel, resolve
from serving.config import CHAMPION_URI
from tagger import scored
from tagger.data.loaders import SCORING_COLUMNS, input_format, iter_raw, parquet_parts
from tagger.data.validate import UnusableRows, drop_unusable
from tagger.errors import DataError, InputError, SotagError
from tagger.pyfunc import MAX_FIELD_CHARS
from tagger.spark import DEFAULT_MASTER, SparkSettings, spark_available

ENGINES = ("spark", "local")
RESULT_TYPE = "struct<tags: array<string>, scores: array<double>>"


def default_engine() -> str:
    """Spark where it can start (pyspark and Java present), else in-process."""
    return "spark" if spark_available() is None else "local"


@dataclass(frozen=True)
class ScoreConfig:
    input: Path
    output: Path
    model_uri: str = CHAMPION_URI
    engine: str = "local"
    master: str = DEFAULT_MASTER
    conf: Mapping[str, str] = field(default_factory=dict)
    batch_rows: int = 20_000
    progress: bool = True

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InputError("--engine", f"must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.batch_rows < 1:
            raise InputError("--batch-rows", f"must be at least 1, got {self.batch_rows}")
        if self.output.resolve() == self.input.resolve() or self.input.resolve() in self.output.resolve().parents:
            raise InputError("--out", f"{self.output} must not be the input or inside it")


@dataclass
class ScoreResult:
    rows_read: int
    rows_scored: int
    unusable: UnusableRows
    too_long: int
    months: list[str]
    seconds: float
    model_name: str
    model_version: str | None
    engine: str

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (
            f"score: rows={self.rows_read} scored={self.rows_scored} rows_per_s={rate(self.rows_per_s)} "
            f"partitions={len(self.months)} model={self.model_name} version={self.model_version} engine={self.engine} "
            f"dropped: bad_id={self.unusable.bad_id} empty_title={self.unusable.empty_title} "
            f"bad_date={self.unusable.bad_date} too_long={self.too_long}"
        )


def rate(per_second: float) -> str:
    """A rate for a closing line: whole numbers from 100 up, else three significant digits (0.5, 12.3), so a
    small, slow run (10 rows on Spark) never reads 0."""
    return f"{per_second:.0f}" if per_second >= 100 or per_second == 0 else f"{per_second:.3g}"


def written_partitions(output: Path, months: list[str]) -> str:
    """The month folders a run wrote, as paths: `OUT/creation_month=2018-04`, or the first … last of many."""
    names = [f"{output}/{scored.PARTITION}={m}" for m in months]
    if not names:
        return f"no partition under {output} (no usable row)"
    return f"{names[0]} … {names[-1]} ({len(names)} months)" if len(names) > 2 else ", ".join(names)


def scorable(raw: pd.DataFrame) -> tuple[pd.DataFrame, UnusableRows, int]:
    """The rows the pyfunc accepts: the loader's validation, then the pyfunc's field-length limit."""
    frame, unusable = drop_unusable(raw)
    too_long = (frame["title"].str.len() > MAX_FIELD_CHARS) | (frame["body"].str.len() > MAX_FIELD_CHARS)
    return frame[~too_long], unusable, int(too_long.sum())


def output_frame(
    frame: pd.DataFrame, predictions: list[dict], model: ResolvedModel, scored_at: datetime
) -> pd.DataFrame:
    """The output columns (tagger.scored.COLUMNS) for scored rows."""
    return pd.DataFrame(
        {
            "id": frame["id"].to_numpy(),
            "creation_date": frame["creation_date"].to_numpy(),
            "tags": [p["tags"] for p in predictions],
            "scores": [p["scores"] for p in predictions],
            "model_name": model.name,
            "model_version": model.version,
            "scored_at": pd.Timestamp(scored_at),
        }
    )


def _total_rows(path: Path) -> int | None:
    if input_format(path) != ".parquet":
        return None
    import pyarrow.parquet as pq

    try:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in parquet_parts(path))
    except Exception:  # unreadable parts are reported by the loader, with their name
        return None


def _local(config: ScoreConfig, model: ResolvedModel, staging: Path, scored_at: datetime) -> ScoreResult:
    pyfunc = model.loaded.pyfunc
    if pyfunc is None:
        raise SotagError(f"{config.model_uri}: not an MLflow model (a bare artifact folder cannot be batch-scored)")
    start = time.perf_counter()
    read = scored_rows = too_long = 0
    unusable = UnusableRows()
    months: set[str] = set()
    bar = tqdm(
        total=_total_rows(config.input), unit=" rows", unit_scale=True, desc="score", disable=not config.progress
    )
    batches: Iterator[pd.DataFrame] = iter_raw(config.input, config.batch_rows, SCORING_COLUMNS)
    for i, raw in enumerate(batches):
        frame, dropped, long_rows = scorable(raw)
        read += len(raw)
        unusable += dropped
        too_long += long_rows
        if len(frame):
            predictions = pyfunc.predict(frame[["title", "body"]])
            months.update(scored.write_months(output_frame(frame, predictions, model, scored_at), staging, f"{i:06d}"))
            scored_rows += len(frame)
        bar.update(len(raw))
    bar.close()
    return ScoreResult(
        read, scored_rows, unusable, too_long, sorted(months), time.perf_counter() - start, model.name,
        model.version, "local",
    )  # fmt: skip


def run_score(config: ScoreConfig) -> ScoreResult:
    """Score `config.input` into `config.output`; the months written replace their earlier partitions."""
    input_format(config.input)  # an unreadable or unknown input fails before any model loads
    if config.engine == "spark":
        from registry.resolve import pin

        pinned = pin(config.model_uri)  # Spark's workers load the model; the driver only pins the version
    else:
        model = resolve(config.model_uri)
    config.output.mkdir(parents=True, exist_ok=True)
    scored.clean_leftovers(config.output)
    staging = scored.new_staging(config.output)
    scored_at = datetime.now(UTC).replace(microsecond=0)
    try:
        if config.engine == "spark":
            from serving.spark_score import score_on_spark

            settings = SparkSettings(master=config.master, conf=dict(config.conf), app_name="sotag score")
            result = score_on_spark(config, settings, pinned, staging, scored_at)
        else:
            result = _local(config, model, staging, scored_at)
        if result.rows_read == 0:
            raise DataError(f"{config.input}: no rows to score")
        start = time.perf_counter()
        result.months = scored.commit(staging, config.output)
        result.seconds += time.perf_counter() - start
    except BaseException:
        # Nothing half-written becomes visible: the staging folder goes, the committed months stay as they were.
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def equal_outputs(left: pd.DataFrame, right: pd.DataFrame, tolerance: float = 1e-6) -> tuple[bool, str]:
    """Same ids, and per id the same tags in order and scores within `tolerance` (for tests and the bench)."""
    if len(left) != len(right):
        return False, f"{len(left)} rows against {len(right)}"
    a = left.sort_values("id", kind="stable").reset_index(drop=True)
    b = right.sort_values("id", kind="stable").reset_index(drop=True)
    if not np.array_equal(a["id"].to_numpy(), b["id"].to_numpy()):
        return False, "different ids"
    for column in ("tags", "scores"):
        la = a[column].map(len).to_numpy()
        if not np.array_equal(la, b[column].map(len).to_numpy()):
            return False, f"{column}: different lengths"
    tags_a = np.concatenate([np.asarray(t, dtype=object) for t in a["tags"]] or [np.empty(0, dtype=object)])
    tags_b = np.concatenate([np.asarray(t, dtype=object) for t in b["tags"]] or [np.empty(0, dtype=object)])
    if not np.array_equal(tags_a, tags_b):
        return False, "different tags"
    scores_a = np.concatenate([np.asarray(s, dtype=float) for s in a["scores"]] or [np.empty(0)])
    scores_b = np.concatenate([np.asarray(s, dtype=float) for s in b["scores"]] or [np.empty(0)])
    worst = float(np.max(np.abs(scores_a - scores_b), initial=0.0))
    if worst > tolerance:
        return False, f"scores differ by up to {worst:.2e}"
    return True, f"{len(a)} rows equal (largest score difference {worst:.1e})"
