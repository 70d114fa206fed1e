"""The drift job's configuration: the job's typed view of the settings' `drift` section and the command's flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sotag.data.paths import as_data_paths
from sotag.infra.spark import SparkSettings
from sotag.monitoring.severity import DEFAULT_THRESHOLDS
from sotag.settings import DEFAULT_MODEL_URI, Settings

EXIT_ALERT = 4


@dataclass(frozen=True)
class DriftConfig:
    # First and last month (YYYY-MM), inclusive; None: the champion's last 6 training months (monitoring/baselines.py).
    reference: tuple[str, str] | None
    months: tuple[str, ...]  # the months to check; empty: the newest complete month of the data
    data: tuple[Path, ...] | None = None  # questions with creation_date (and tags), files or folders: supervised too
    predictions_url: str | None = None  # or the gateway's prediction log (needs SOTAG_LOG_TEXT=1 for embeddings)
    model_uri: str = DEFAULT_MODEL_URI
    exclude_sources: tuple[str, ...] = ()
    max_per_month: int = 400  # 0: every question of the month (the spark engine's default)
    max_reference: int = 2000  # 0: every question of the reference months
    engine: str = "local"  # where SBERT embeds: "local" (this process) or "spark"
    spark: SparkSettings = field(default_factory=SparkSettings)
    scored: Path | None = None  # `sotag score` output: the prediction statistics read every scored question
    thresholds: Path = DEFAULT_THRESHOLDS
    reports_root: Path = Path("reports") / "drift"  # the CLI passes the settings' (<home>/reports/drift)
    cache_dir: Path = Path(".cache")  # the CLI passes the settings' (<home>/.cache)
    experiment: str = "drift-monitoring"
    on_alert: str = "none"  # "none" or "retrain"
    webhook: str | None = None
    seed: int = 0
    config_file: Path | None = None  # the settings file the command was given (--config): a retrain on alert gets it
    # Rolling windows instead of calendar months (both set or neither): the current window is the `current_days`
    # days before `as_of`, the reference the `reference_days` days before that (seed 004: 7 against 30).
    current_days: int | None = None
    reference_days: int | None = None
    as_of: pd.Timestamp | None = None  # naive UTC; None: now
    # The settings the job was built from: a retrain on alert runs with them (None: this process's environment).
    settings: Settings | None = field(default=None, repr=False, compare=False)

    @property
    def rolling(self) -> bool:
        return self.current_days is not None

    def __post_init__(self) -> None:
        if self.data is not None:
            object.__setattr__(self, "data", as_data_paths(self.data))
