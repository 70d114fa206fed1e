"""`retrain`: the newest window, trained and judged; a failure during promotion leaves the champion."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from sotag.infra.tracking import MODEL_NAME, use_fluent
from sotag.registry.card import read_card
from sotag.registry.cli import promotion_lines
from sotag.registry.gate import GateConfig
from sotag.registry.store import CHAMPION, open_registry
from sotag.training import retrain as retrain_module
from sotag.training import train as train_module
from sotag.training.config import TrainConfig

SMALL = dict(
    vectorizer="tfidf", split_date="2018-03-01", top_n_tags=8, max_features=2000, min_df=1, C=10.0, threshold=0.2
)


def test_retrain_promotes_then_keeps_and_a_failure_leaves_the_champion(
    tracking, questions_parquet, tmp_path, monkeypatch
):
    config = TrainConfig(data=questions_parquet, cache_dir=tmp_path / "cache", **SMALL)
    gate = GateConfig(data=questions_parquet, floor=0.5)
    first = retrain_module.retrain(use_fluent(tracking, config.experiment), config, gate, 60, min_questions=1)
    assert first.promoted and first.exit_code == 0
    registry = open_registry(tracking, MODEL_NAME)
    assert registry.alias(CHAMPION) == first.version
    # The newest window: the last 60 days of the data.
    assert read_card(registry.client, registry.version(first.version)).split_date == "2018-04-25"

    worse = retrain_module.retrain(
        use_fluent(tracking, config.experiment), replace(config, max_features=5), gate, 60, min_questions=1
    )
    assert worse.exit_code == 3 and registry.alias(CHAMPION) == first.version

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("evaluation data vanished")

    monkeypatch.setattr(retrain_module, "promote", broken)
    with pytest.raises(RuntimeError):
        retrain_module.retrain(use_fluent(tracking, config.experiment), config, gate, 60, min_questions=1)
    assert registry.alias(CHAMPION) == first.version
    newest = registry.versions()[-1]
    assert newest.tags["retrain_status"].startswith("failed during promotion")


def test_retrain_job_runs_sotag_retrain_with_its_flags_in_process(tracking, questions_parquet):
    """The function the CLI and the gateway's /admin/retrain share: the settings as `sotag retrain` builds them."""
    from sotag.cli import build_parser
    from sotag.infra.argtypes import settings_flags
    from sotag.training.cli import retrain_job
    from tests.support.settings import settings_from

    flags = ["--data", str(questions_parquet), "--top-n-tags", "8", "--max-features", "2000", "--min-df", "1"]
    flags += ["--C", "10", "--threshold", "0.2", "--eval-days", "60", "--floor", "0.5", "--no-behaviour-cases"]
    flags += ["--min-questions", "1"]
    given = settings_flags(build_parser().parse_args(["retrain", *flags]))
    assert retrain_job(settings_from(**{k.replace(".", "__"): v for k, v in given.items()})) == 0
    registry = open_registry(tracking, MODEL_NAME)
    champion = registry.alias(CHAMPION)
    assert champion is not None and read_card(registry.client, registry.version(champion)).split_date == "2018-04-25"


def test_retrain_judges_on_questions_neither_model_trained_on_or_keeps_without_a_verdict(
    tracking, questions_parquet, tmp_path, capsys
):
    """A champion trained on later questions than the retrain's split is not scored on what it has seen: the
    window starts at its cutoff; with too few questions there, nothing is trained and the champion stays (exit 3)."""
    config = TrainConfig(data=questions_parquet, cache_dir=tmp_path / "cache", **SMALL | {"split_date": "2018-05-20"})
    champion = train_module.train(config, use_fluent(tracking, config.experiment))
    registry = open_registry(tracking, MODEL_NAME)
    registry.client.set_registered_model_alias(MODEL_NAME, CHAMPION, champion.version)
    gate = GateConfig(data=questions_parquet, floor=0.0)
    runs = use_fluent(tracking, config.experiment)

    judged = retrain_module.retrain(runs, config, gate, eval_days=60, min_questions=1)
    said = capsys.readouterr().out
    assert "retrain: training on questions before 2018-04-25, the champion v1 on questions before 2018-05-20" in said
    assert judged.verdict is not None and judged.verdict.window.start == "2018-05-20"
    assert "the champion was trained on questions" not in judged.verdict.reason  # no optimistic figures to note

    frame = pd.read_parquet(questions_parquet)
    unseen = int((frame["creation_date"] >= pd.Timestamp("2018-05-20")).sum())
    versions = len(registry.versions())
    kept = retrain_module.retrain(runs, config, gate, eval_days=60, min_questions=unseen + 1)
    assert kept.exit_code == 3 and kept.verdict is None and not kept.promoted
    assert kept.unjudged.startswith(f"only {unseen} questions from 2018-05-20 that neither the challenger nor")
    assert len(registry.versions()) == versions and registry.alias(CHAMPION) == judged.champion
    assert "without a verdict" in promotion_lines(kept, MODEL_NAME)[0]
