"""`retrain`: the newest window, trained and judged; a failure during promotion leaves the champion."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sotag.infra.tracking import MODEL_NAME, use_fluent
from sotag.registry.card import read_card
from sotag.registry.gate import GateConfig
from sotag.registry.store import CHAMPION, open_registry
from sotag.training import retrain as retrain_module
from sotag.training.config import TrainConfig

SMALL = dict(
    vectorizer="tfidf", split_date="2018-03-01", top_n_tags=8, max_features=2000, min_df=1, C=10.0, threshold=0.2
)


def test_retrain_promotes_then_keeps_and_a_failure_leaves_the_champion(
    tracking, questions_parquet, tmp_path, monkeypatch
):
    config = TrainConfig(data=questions_parquet, cache_dir=tmp_path / "cache", **SMALL)
    gate = GateConfig(data=questions_parquet, floor=0.5)
    first = retrain_module.retrain(use_fluent(tracking, config.experiment), config, gate, eval_days=60)
    assert first.promoted and first.exit_code == 0
    registry = open_registry(tracking, MODEL_NAME)
    assert registry.alias(CHAMPION) == first.version
    # The newest window: the last 60 days of the data.
    assert read_card(registry.client, registry.version(first.version)).split_date == "2018-04-25"

    worse = retrain_module.retrain(
        use_fluent(tracking, config.experiment), replace(config, max_features=5), gate, eval_days=60
    )
    assert worse.exit_code == 3 and registry.alias(CHAMPION) == first.version

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("evaluation data vanished")

    monkeypatch.setattr(retrain_module, "promote", broken)
    with pytest.raises(RuntimeError):
        retrain_module.retrain(use_fluent(tracking, config.experiment), config, gate, eval_days=60)
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
    given = settings_flags(build_parser().parse_args(["retrain", *flags]))
    assert retrain_job(settings_from(**{k.replace(".", "__"): v for k, v in given.items()})) == 0
    registry = open_registry(tracking, MODEL_NAME)
    champion = registry.alias(CHAMPION)
    assert champion is not None and read_card(registry.client, registry.version(champion)).split_date == "2018-04-25"
