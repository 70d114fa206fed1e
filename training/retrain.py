"""`sotag retrain`: train on the newest window of the data, register, then let the gate decide."""

from __future__ import annotations

import time
from dataclasses import replace

import pandas as pd

from sotag.data import load_questions
from sotag.infra.tracking import FluentRuns
from sotag.registry.card import ModelCard, read_card
from sotag.registry.gate import GateConfig, evaluation_frame, window_for
from sotag.registry.lifecycle import PromotionResult, promote
from sotag.registry.store import CHAMPION, open_registry
from sotag.training.config import TrainConfig
from sotag.training.train import train


def retrain_config(base: TrainConfig, newest_question: pd.Timestamp, eval_days: int) -> TrainConfig:
    """The newest window of the data: evaluate on its last `eval_days` days, train on everything before."""
    newest = newest_question.normalize() + pd.Timedelta(days=1)
    split = (newest - pd.Timedelta(days=eval_days)).strftime("%Y-%m-%d")
    return replace(base, split_date=split, eval_end=None, register=True, run_name=f"retrain-{split}")


def unseen_window_start(split_date: str, champion_trained_before: str | None) -> str:
    """Where the judgement starts: after both models' training windows (the challenger's split, or the champion's
    when it trained on later questions), so neither is scored on questions it has seen."""
    if champion_trained_before and pd.Timestamp(champion_trained_before) > pd.Timestamp(split_date):
        return pd.Timestamp(champion_trained_before).strftime("%Y-%m-%d")
    return split_date


def retrain(
    runs: FluentRuns, train_config: TrainConfig, gate: GateConfig, eval_days: int, min_questions: int = 200
) -> PromotionResult:
    """Train on the newest window as a fluent run in `runs`' experiment, register, promote if better (exit 0
    promoted, 3 kept); the registry is opened on `runs`' store.

    Both models are judged on the questions neither trained on: from the challenger's split, or from the
    champion's when it trained on later questions. With fewer than `min_questions` of them nothing is trained and
    the champion is kept without a verdict (exit 3), the reason said: figures on seen questions would decide.
    The champion alias moves last, after the gate, so a failure anywhere leaves the registry's champion as it
    was; a registered version whose promotion failed is tagged.
    """
    start = time.perf_counter()
    # Read once: the newest date, the training run and the gate's window all come from this frame.
    frame, report = load_questions(train_config.data)
    config = retrain_config(train_config, frame["creation_date"].max(), eval_days)
    registry = open_registry(runs.settings, config.model_name)
    champion = registry.alias(CHAMPION)
    champion_cut = read_card(registry.client, registry.version(champion)).split_date if champion else None
    judged_from = unseen_window_start(config.split_date, champion_cut)
    window = replace(gate, eval_start=judged_from, eval_end=None)
    unseen = len(evaluation_frame(config.data, window_for(window, ModelCard(split_date=judged_from)), frame))
    champion_note = f", the champion v{champion} on questions before {champion_cut}" if champion_cut else ""
    print(
        f"retrain: training on questions before {config.split_date}{champion_note}; judging both on the "
        f"{unseen} questions from {judged_from} (neither trained on them)"
    )
    if unseen < min_questions:
        reason = (
            f"only {unseen} questions from {judged_from} that neither the challenger nor the champion trained on "
            f"(retrain_min_questions {min_questions}): no verdict on figures either model has seen; nothing trained"
        )
        return PromotionResult("", False, champion, None, time.perf_counter() - start, unjudged=reason)
    outcome = train(config, runs, (frame, report))
    try:
        return promote(registry, window, outcome.version, frame)
    except BaseException as exc:
        registry.tag_version(outcome.version, {"retrain_status": f"failed during promotion: {exc}"[:4000]})
        raise
