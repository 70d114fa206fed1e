"""What one `sotag score` job is: its settings, its result, and the rows a model can score.

Shared by both engines (serving/batch.py runs the job in-process, serving/spark_score.py on Spark), so
neither engine imports the other's module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sotag.data.validate import UnusableRows, drop_unusable
from sotag.infra import scored
from sotag.infra.spark import DEFAULT_MASTER
from sotag.serving.config import CHAMPION_URI
from sotag.tagger.errors import InputError
from sotag.tagger.pyfunc import MAX_FIELD_CHARS

ENGINES = ("spark", "local")
RESULT_TYPE = "struct<tags: array<string>, scores: array<double>>"


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
    java_home: Path | None = None
    spark_log_level: str = "WARN"

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
    repaired_lines: int = 0  # CSV lines whose bytes were not UTF-8, read as cp1252 and scored (the loader warns)

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (
            f"score: rows={self.rows_read} scored={self.rows_scored} rows_per_s={rate(self.rows_per_s)} "
            f"partitions={len(self.months)} model={self.model_name} "
            f"version={self.model_version or 'unregistered'} engine={self.engine} "
            f"dropped: bad_id={self.unusable.bad_id} empty_title={self.unusable.empty_title} "
            f"bad_date={self.unusable.bad_date} too_long={self.too_long} repaired: not_utf8_lines={self.repaired_lines}"
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
