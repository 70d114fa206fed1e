"""The Spark engine of `sotag score`: the registered pyfunc inside Spark through `mlflow.pyfunc.spark_udf`.

One trip through Python per row: the udf. Parquet whose `id` is an integer and `creation_date` a
timestamp is read by Spark itself and its unusable rows are filtered with Spark expressions that state
the loader's rules exactly (null id or date, a title of Python whitespace only, a field over the pyfunc's
length limit); any other input (CSV, Posts.xml, untyped parquet) is streamed through the one loader and its
validation into typed parquet parts first. The udf returns a struct of `tags` and `scores` arrays, written
partitioned by creation month into the staging folder that `run_score` commits.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from sotag.data.loaders import SCORING_COLUMNS, ReadNotes, check_parquet, input_format, iter_raw
from sotag.data.validate import UnusableRows
from sotag.infra.scored import PARTITION
from sotag.infra.spark import SparkSettings, start_session
from sotag.infra.tracking import TrackingSettings, download_version
from sotag.registry.resolve import PinnedVersion
from sotag.serving.score_job import RESULT_TYPE, ScoreConfig, ScoreResult, scorable
from sotag.tagger.pyfunc import MAX_FIELD_CHARS

# Python's whitespace (str.strip, str.isspace) as a Java character class: a title with nothing else is empty.
_PY_SPACE = "".join(f"\\x{{{ord(c):x}}}" for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
_HAS_TEXT = f"[^{_PY_SPACE}]"
_EDGE_SPACE = f"^[{_PY_SPACE}]+|[{_PY_SPACE}]+$"


def _stage_input(config: ScoreConfig, folder: Path) -> tuple[Path, UnusableRows, int, int, int]:
    """Stream the input through the one loader and its validation into typed parquet parts Spark can split."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    unusable, too_long, read = UnusableRows(), 0, 0
    schema = pa.schema(
        [("id", pa.int64()), ("creation_date", pa.timestamp("us")), ("title", pa.string()), ("body", pa.string())]
    )
    notes = ReadNotes()
    # The bar ends its line however the loop ends: an error met mid-way is printed on a line of its own; the
    # loader's warnings go above it.
    with (
        tqdm(unit=" rows", unit_scale=True, desc="read input", disable=not config.progress) as bar,
        logging_redirect_tqdm(),
    ):
        for i, raw in enumerate(iter_raw(config.input, config.batch_rows, SCORING_COLUMNS, notes)):
            frame, dropped, long_rows = scorable(raw)
            unusable, too_long, read = unusable + dropped, too_long + long_rows, read + len(raw)
            table = pa.Table.from_pandas(frame[list(schema.names)], schema=schema, preserve_index=False)
            pq.write_table(table, folder / f"{i:06d}.parquet")
            bar.update(len(raw))
    return folder, unusable, too_long, read, notes.repaired_encoding_lines


class _NotEnvManagerAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return 'env_manager="local"' not in record.getMessage()


def _typed(frame) -> bool:
    from pyspark.sql.types import DateType, IntegralType, TimestampNTZType, TimestampType

    types = {f.name: f.dataType for f in frame.schema.fields}
    return isinstance(types["id"], IntegralType) and isinstance(
        types["creation_date"], TimestampType | TimestampNTZType | DateType
    )


def parts_agree(parts: list[Path]) -> bool:
    """Whether every part stores the scoring columns (and the body) with the same types (read from their footers)."""
    import pyarrow.parquet as pq

    kinds = set()
    for part in parts:
        schema = pq.read_schema(part)
        kinds.add(tuple((n, str(schema.field(n).type)) for n in (*SCORING_COLUMNS, "body") if n in schema.names))
    return len(kinds) <= 1


def score_on_spark(
    config: ScoreConfig,
    settings: SparkSettings,
    tracking: TrackingSettings,
    pinned: PinnedVersion,
    staging: Path,
    scored_at: datetime,
) -> ScoreResult:
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    start = time.perf_counter()
    spark = start_session(settings)
    if input_format(config.input) == ".parquet":
        parts = check_parquet(config.input, SCORING_COLUMNS)  # the loader picks the files and checks the columns
        # Parts that disagree on a column's type (a folder Spark wrote, then pandas appended to) would end Spark's
        # read with PARQUET_COLUMN_DATA_TYPE_MISMATCH: they go through the loader's normalisation, as --engine local.
        frame = spark.read.parquet(*[str(p) for p in parts]) if parts_agree(parts) else None
        if frame is not None and not _typed(frame):
            frame = None
    else:
        frame = None
    if frame is None:
        folder, staged_unusable, _, staged_read, repaired = _stage_input(config, staging / "input")
        frame = spark.read.parquet(str(folder))
    else:
        staged_unusable, staged_read, repaired = UnusableRows(), None, 0
    body = F.col("body") if "body" in frame.columns else F.lit("")
    frame = frame.select(
        F.col("id").cast("long").alias("id"),
        F.col("creation_date").cast("timestamp_ntz").alias("creation_date"),
        F.regexp_replace(F.col("title").cast("string"), _EDGE_SPACE, "").alias("title"),
        F.coalesce(body.cast("string"), F.lit("")).alias("body"),
    )
    bad_id = F.col("id").isNull()
    empty_title = ~bad_id & (F.col("title").isNull() | ~F.col("title").rlike(_HAS_TEXT))
    bad_date = ~bad_id & ~empty_title & F.col("creation_date").isNull()
    too_long = (F.length("title") > MAX_FIELD_CHARS) | (F.length("body") > MAX_FIELD_CHARS)
    usable = ~(bad_id | empty_title | bad_date) & ~too_long

    # Counting reads the narrow columns only; the bodies are read once, by the scoring pass.
    counts = frame.select(
        F.count(F.lit(1)).alias("read"),
        F.sum(bad_id.cast("long")).alias("bad_id"),
        F.sum(empty_title.cast("long")).alias("empty_title"),
        F.sum(bad_date.cast("long")).alias("bad_date"),
    ).first()

    # env_manager="local" is the choice here (the executors run this environment; docs/batch.md: on a cluster),
    # so MLflow's advice to rebuild a conda environment is noise in the job's output.
    logging.getLogger("mlflow.pyfunc").addFilter(_NotEnvManagerAdvice())
    # The driver downloads the pinned version from the tracking store it was given (not MLflow's process-wide
    # registry URI); spark_udf ships that local copy to the workers, as it would its own download.
    model_dir = download_version(tracking.client(), pinned.name, pinned.version, staging / "_model")
    udf = mlflow.pyfunc.spark_udf(spark, str(model_dir), result_type=RESULT_TYPE, env_manager="local")
    out = (
        frame.where(usable)
        .withColumn("prediction", udf("title", "body"))
        .select(
            "id",
            "creation_date",
            F.col("prediction.tags").alias("tags"),
            F.col("prediction.scores").alias("scores"),
            F.lit(pinned.name).alias("model_name"),
            F.lit(pinned.version).alias("model_version"),
            F.lit(pd.Timestamp(scored_at).to_pydatetime()).cast("timestamp").alias("scored_at"),
            F.date_format("creation_date", "yyyy-MM").alias(PARTITION),
        )
    )
    out.write.mode("overwrite").partitionBy(PARTITION).parquet(str(staging / "_spark"))
    # Spark's own commit wrote _spark/creation_month=…; lift the month folders to where commit() looks.
    scored_rows = 0
    for month in (staging / "_spark").iterdir():
        if month.is_dir() and month.name.startswith(f"{PARTITION}="):
            month.rename(staging / month.name)
            scored_rows += _rows_in(staging / month.name)
    unusable = staged_unusable + UnusableRows(
        counts["bad_id"] or 0, counts["empty_title"] or 0, counts["bad_date"] or 0
    )
    read = staged_read if staged_read is not None else counts["read"]
    return ScoreResult(
        read, scored_rows, unusable, read - scored_rows - unusable.total, [], time.perf_counter() - start,
        pinned.name, pinned.version, "spark", repaired,
    )  # fmt: skip


def _rows_in(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in folder.glob("*.parquet"))
