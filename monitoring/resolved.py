"""What one drift job derives from its config before computing: the months, the served model, the baselines,
the rules. Derived once, at the start, into this object; the config is never rewritten."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from sotag.monitoring.baselines import Baselines, plan, plan_rolling
from sotag.monitoring.config import DriftConfig
from sotag.monitoring.months import Window, month_window, newest_complete_month, parse_as_of, rolling_windows
from sotag.monitoring.severity import Rule, load_floors, load_rules
from sotag.tagger.model import Tagger

if TYPE_CHECKING:
    from sotag.registry.resolve import ResolvedModel


@dataclass(frozen=True)
class ResolvedRun:
    months: tuple[str, ...]  # the months checked: the config's, or the newest complete month of the data
    model_uri: str
    model_name: str
    model_version: str | None
    tagger: Tagger
    baselines: Baselines  # what each family is compared with; `embedding_months` is the job's reference
    rules: tuple[Rule, ...]  # the severity rules, loaded once from `config.thresholds`
    floors: dict[str, int]  # family -> its minimum month sample, from the same file
    # The span of each checked month (or of the current rolling window), in the order of `months`.
    windows: tuple[Window, ...] = ()
    rolling: bool = False  # rolling windows (--current-days) rather than calendar months
    model_alias: str | None = None  # the alias the model URI named (`champion`), None for a version or a folder
    model_run_id: str | None = None  # the MLflow run that trained the version (None: a model folder)

    @property
    def reference(self) -> tuple[str, str]:
        """The reference months (YYYY-MM, inclusive) the embeddings and text are compared with."""
        return self.baselines.embedding_months

    @property
    def checked(self) -> tuple[Window, ...]:
        return self.windows or tuple(month_window(m) for m in self.months)

    @property
    def label(self) -> str:
        """What the job checked, for the run name and the reports folder: `2018-05..2018-06`, or the windows
        `7d 2026-11-30..2026-12-06 vs 30d 2026-10-31..2026-11-29`."""
        if self.rolling:
            current, reference = self.checked[0], self.baselines.reference_window
            return f"{current.days:g}d {current.label} vs {reference.days:g}d {reference.label}"
        return f"{self.months[0]}..{self.months[-1]}"


def resolve_run(config: DriftConfig, frame: pd.DataFrame, served: ResolvedModel) -> ResolvedRun:
    """The job's months (from `frame` when the config names none), baselines (from the served version's tags)
    and rules. Raises InputError (no reference and no training window), ValueError (a bad thresholds file)."""
    if config.rolling:
        as_of = config.as_of if config.as_of is not None else parse_as_of(None)
        reference, current = rolling_windows(as_of, config.current_days, config.reference_days)
        baselines, windows = plan_rolling(reference, current, served.card), (current,)
    else:
        months = config.months or (newest_complete_month(frame["creation_date"]),)
        baselines, windows = plan(config.reference, served.card), tuple(month_window(m) for m in months)
    return ResolvedRun(
        months=tuple(w.label for w in windows),
        model_uri=config.model_uri,
        model_name=served.name,
        model_version=served.version,
        tagger=served.tagger,
        baselines=baselines,
        rules=tuple(load_rules(config.thresholds)),
        floors=load_floors(config.thresholds),
        windows=windows,
        rolling=config.rolling,
        model_alias=served.alias,
        model_run_id=served.run_id,
    )
