"""A Spark session for batch scoring and monthly embeddings: `local[*]` by default, any master URL for users.

Shared by `sotag score` (serving) and `sotag drift --engine spark` (monitoring). Settings come from
`--conf key=value` flags on top of the usual `SPARK_*` environment and `spark-defaults.conf`, which
Spark reads itself. Python workers run this interpreter (the pinned environment), so a worker imports
exactly the code the driver does; on a cluster the executors need the same environment (docs/batch.md).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sotag.settings import library_defaults
from sotag.tagger.errors import InputError, SotagError

DEFAULT_MASTER = "local[*]"

# Embedded (local[...]) sessions stay on the loopback interface and start no web UI; a cluster's
# settings are the user's. Spark's console progress bar shows each stage as it runs, unless the command was asked
# for no progress (SparkSettings.progress).
_LOCAL_DEFAULTS = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
}
_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    # Timestamps as the local engine writes them (microseconds, UTC-adjusted), not the legacy INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Partition values such as 2018-04 stay strings when read back.
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
}


def parse_conf(pairs: Sequence[str]) -> dict[str, str]:
    """`key=value` flags as a dict; a pair without `=` is a user error naming it."""
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError("--conf", f"expected key=value, got {pair!r}")
        conf[key.strip()] = value
    return conf


@dataclass(frozen=True)
class SparkSettings:
    master: str = DEFAULT_MASTER
    conf: Mapping[str, str] = field(default_factory=dict)
    app_name: str = "sotag"
    java_home: Path | None = None  # the settings' spark.java_home ($JAVA_HOME); None: `java` on the PATH
    log_level: str = "WARN"
    progress: bool = True  # Spark's console progress bar ([Stage N:> ...]); a --conf of the user's still wins

    @property
    def local(self) -> bool:
        return self.master.startswith("local")

    def merged_conf(self) -> dict[str, str]:
        progress = {"spark.ui.showConsoleProgress": "true" if self.progress else "false"}
        base = {**_DEFAULTS, **progress, **(_LOCAL_DEFAULTS if self.local else {})}
        return {**base, **self.conf}


def spark_available(java_home: Path | None = None) -> str | None:
    """None when pyspark and a Java runtime (`java_home`, else `java` on the PATH) are here, else what is missing
    (for errors and test skips)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install pyspark==4.3.0, or --engine local)"
    if not shutil.which("java") and not (java_home and (java_home / "bin" / "java").exists()):
        return "no Java runtime (install openjdk-17-jre-headless, set JAVA_HOME, or use --engine local)"
    return None


def start_session(settings: SparkSettings):
    """Start (or join) the session; Python workers use this interpreter."""
    missing = spark_available(settings.java_home)
    if missing:
        raise SotagError(f"--engine spark: {missing}")
    # Python workers run this interpreter (pyspark reads it from the environment only); an embedded session stays
    # on the loopback interface.
    python = {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    library_defaults({**python, **({"SPARK_LOCAL_IP": "127.0.0.1"} if settings.local else {})})
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
    for key, value in settings.merged_conf().items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM failed to start or the master is unreachable: say which, no Java trace
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SotagError(f"Spark session on {settings.master} did not start: {first}") from None
    spark.sparkContext.setLogLevel(settings.log_level)
    return spark
