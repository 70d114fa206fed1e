"""What one drift job derives from its config before computing: the months, the served model, the baselines,
the rules. Derived once, at the start, into this object; the config is never rewritten."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from sotag.monitoring.baselines import Baselines, plan
from sotag.monitoring.config import DriftConfig
from sotag.monitoring.months import newest_complete_month
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

    @property
    def reference(self) -> tuple[str, str]:
        """The reference months (YYYY-MM, inclusive) the embeddings and text are compared with."""
        return self.baselines.embedding_months


def resolve_run(config: DriftConfig, frame: pd.DataFrame, served: ResolvedModel) -> ResolvedRun:
    """The job's months (from `frame` when the config names none), baselines (from the served version's tags)
    and rules. Raises InputError (no reference and no training window), ValueError (a bad thresholds file)."""
    months = config.months or (newest_complete_month(frame["creation_date"]),)
    return ResolvedRun(
        months=tuple(months),
        model_uri=config.model_uri,
        model_name=served.name,
        model_version=served.version,
        tagger=served.tagger,
        baselines=plan(config.reference, served.card),
        rules=tuple(load_rules(config.thresholds)),
        floors=load_floors(config.thresholds),
    )
