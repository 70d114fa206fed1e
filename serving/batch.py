"""`sotag score`: tag a backlog of questions with a registered model, on Spark or in-process.

Both engines read through the one loader (sotag.data), drop the rows no model can score with the one
validation (counted per reason, never a crash), score with the registered pyfunc pinned to one version,
and write parquet partitioned by creation month (infra.scored: staged, then committed by renames).
* `spark`: `mlflow.pyfunc.spark_udf` with a struct return type runs the pyfunc inside Spark's Python
  workers, on `local[*]` or any master URL. Parquet input is read by Spark itself; CSV and Posts.xml are
  first streamed through the loader into parquet parts in the staging folder.
* `local`: the same pyfunc in this process, over the input in chunks (memory bounded by the chunk size).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from sotag.data.loaders import (
    SCORING_COLUMNS,
    ReadNotes,
    input_file,
    input_format,
    iter_raw,
    parquet_parts,
    question_files,
)
from sotag.data.validate import UnusableRows
from sotag.infra import scored
from sotag.infra.spark import SparkSettings, spark_available
from sotag.infra.tracking import TrackingSettings
from sotag.registry.resolve import ResolvedModel, pin, resolve
from sotag.serving.score_job import ScoreConfig, ScoreResult, scorable
from sotag.tagger.errors import DataError, SotagError

# A CSV or XML question takes about this many bytes on disk (SEDE exports of the shared data: 1.3-1.7 KB).
BYTES_PER_QUESTION = 1500
# Under this many estimated rows a text input's size says too little to name a number (the bytes per question vary
# several-fold with the bodies): the message gives the size and says "fewer than" this instead.
FEW_ROWS = 1000


@dataclass(frozen=True)
class RowCount:
    """The input's rows as `default_engine` weighs them: exact from parquet footers, estimated from the size of the
    text files (CSV, Posts.xml, a question store)."""

    parquet_rows: int = 0
    text_bytes: int = 0

    @property
    def rows(self) -> int:
        """The exact count, plus the text files' estimate."""
        return self.parquet_rows + self.text_bytes // BYTES_PER_QUESTION

    def __str__(self) -> str:
        if not self.text_bytes:
            return f"{self.parquet_rows:,} row{'' if self.parquet_rows == 1 else 's'}"
        size = f"{file_size(self.text_bytes)} of text"
        if self.parquet_rows:
            size = f"{self.parquet_rows:,} parquet rows and {size}"
        rows = f"fewer than {FEW_ROWS:,}" if self.rows < FEW_ROWS else f"about {self.rows:,}"
        return f"{size}, {rows} rows"


def file_size(n: int) -> str:
    """Bytes as people read them: 312 bytes, 4.2 KB, 1.3 MB, 2.0 GB (powers of 1000)."""
    if n < 1000:
        return f"{n:,} byte{'' if n == 1 else 's'}"
    for unit in ("KB", "MB", "GB"):
        n /= 1000
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def estimated_rows(path: Path) -> RowCount:
    """The input's rows: exact for parquet (its footers), estimated from the size for the text formats (a folder:
    each question file by its own kind)."""
    rows = text_bytes = 0
    for file in question_files(path):
        if input_format(file) == ".parquet":
            rows += sum(pq.ParquetFile(p).metadata.num_rows for p in parquet_parts(file))
        else:
            text_bytes += input_file(file).stat().st_size
    return RowCount(rows, text_bytes)


def default_engine(path: Path, min_rows: int, java_home: Path | None = None) -> tuple[str, str]:
    """The engine `sotag score` uses when not told, and why: Spark from `min_rows` rows on, where it can start
    (pyspark and Java present); in-process below, where Spark's start-up costs more than its speed wins back
    (measured on 2 cores: 0.14x the in-process rate on 10.7k questions, 1.21x on 1M; crossing near 700k)."""
    count = estimated_rows(path)
    missing = spark_available(java_home)
    if count.rows < min_rows:
        return "local", f"{count}, under score.spark_min_rows={min_rows}; --engine spark to use Spark"
    if missing:
        return "local", f"{count}, but Spark cannot start here: {missing}"
    return "spark", f"{count}, at least score.spark_min_rows={min_rows}"


def output_frame(
    frame: pd.DataFrame, predictions: list[dict], model: ResolvedModel, scored_at: datetime
) -> pd.DataFrame:
    """The output columns (infra.scored.COLUMNS) for scored rows."""
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
    notes = ReadNotes()
    batches: Iterator[pd.DataFrame] = iter_raw(config.input, config.batch_rows, SCORING_COLUMNS, notes)
    # The bar ends its line however the loop ends, so an error (bad input met mid-way, a component failing) is
    # printed on a line of its own; the loader's warnings (a repaired line, dates read month-first) go above it.
    with (
        tqdm(
            total=_total_rows(config.input), unit=" rows", unit_scale=True, desc="score", disable=not config.progress
        ) as bar,
        logging_redirect_tqdm(),
    ):
        for i, raw in enumerate(batches):
            frame, dropped, long_rows = scorable(raw)
            read += len(raw)
            unusable += dropped
            too_long += long_rows
            if len(frame):
                predictions = pyfunc.predict(frame[["title", "body"]])
                written = output_frame(frame, predictions, model, scored_at)
                months.update(scored.write_months(written, staging, f"{i:06d}"))
                scored_rows += len(frame)
            bar.update(len(raw))
    return ScoreResult(
        read, scored_rows, unusable, too_long, sorted(months), time.perf_counter() - start, model.name,
        model.version, "local", notes.repaired_encoding_lines,
    )  # fmt: skip


def run_score(config: ScoreConfig, tracking: TrackingSettings) -> ScoreResult:
    """Score `config.input` into `config.output` with the model `config.model_uri` names in the `tracking` store;
    the months written replace their earlier partitions."""
    input_format(config.input)  # an unreadable or unknown input fails before any model loads
    if config.engine == "spark":
        pinned = pin(config.model_uri, tracking)  # Spark's workers load the model; the driver only pins the version
    else:
        model = resolve(config.model_uri, tracking)
    config.output.mkdir(parents=True, exist_ok=True)
    scored.clean_leftovers(config.output)
    staging = scored.new_staging(config.output)
    scored_at = datetime.now(UTC).replace(microsecond=0)
    try:
        if config.engine == "spark":
            from sotag.serving.spark_score import score_on_spark

            settings = SparkSettings(
                master=config.master,
                conf=dict(config.conf),
                app_name="sotag score",
                java_home=config.java_home,
                log_level=config.spark_log_level,
                progress=config.progress,
            )
            result = score_on_spark(config, settings, tracking, pinned, staging, scored_at)
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
