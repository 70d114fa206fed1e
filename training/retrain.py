"""`sotag retrain`: train on the newest window of the data, register, then let the gate decide."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from sotag.data import load_questions
from sotag.infra.tracking import FluentRuns
from sotag.registry.gate import GateConfig
from sotag.registry.lifecycle import PromotionResult, promote
from sotag.registry.store import open_registry
from sotag.training.config import TrainConfig
from sotag.training.train import train


def retrain_config(base: TrainConfig, newest_question: pd.Timestamp, eval_days: int) -> TrainConfig:
    """The newest window of the data: evaluate on its last `eval_days` days, train on everything before."""
    newest = newest_question.normalize() + pd.Timedelta(days=1)
    split = (newest - pd.Timedelta(days=eval_days)).strftime("%Y-%m-%d")
    return replace(base, split_date=split, eval_end=None, register=True, run_name=f"retrain-{split}")


def retrain(runs: FluentRuns, train_config: TrainConfig, gate: GateConfig, eval_days: int) -> PromotionResult:
    """Train on the newest window as a fluent run in `runs`' experiment, register, promote if better (exit 0
    promoted, 3 kept); the registry is opened on `runs`' store.

    The champion alias moves last, after the gate, so a failure anywhere leaves the
    registry's champion as it was; a registered version whose promotion failed is tagged.
    """
    # Read once: the newest date, the training run and the gate's window all come from this frame.
    frame, report = load_questions(train_config.data)
    config = retrain_config(train_config, frame["creation_date"].max(), eval_days)
    print(f"retrain: training on questions before {config.split_date}, evaluating from it")
    outcome = train(config, runs, (frame, report))
    registry = open_registry(runs.settings, config.model_name)
    try:
        window = replace(gate, eval_start=config.split_date, eval_end=None)
        return promote(registry, window, outcome.version, frame)
    except BaseException as exc:
        registry.tag_version(outcome.version, {"retrain_status": f"failed during promotion: {exc}"[:4000]})
        raise
