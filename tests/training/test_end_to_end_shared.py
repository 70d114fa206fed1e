"""Train on the real shared data, register, load from the registry, predict."""

import mlflow
import pandas as pd
import pytest

from sotag.infra.tracking import use_fluent
from sotag.training.config import TrainConfig
from sotag.training.train import train


@pytest.mark.integration
def test_shared_data_train_register_load_predict(tracking, shared_data, tmp_path):
    # A smaller vocabulary and feature space keep this test quick; the full default is in bench/.
    config = TrainConfig(
        vectorizer="tfidf", data=shared_data, top_n_tags=30, max_features=30_000, C=10.0, cache_dir=tmp_path / "cache"
    )
    outcome = train(config, use_fluent(tracking, config.experiment))
    metrics = outcome.result.evaluation.metrics
    assert metrics["precision_at_1"] > 0.7
    assert metrics["recall_at_5"] > 0.85
    model = mlflow.pyfunc.load_model("models:/stackoverflow-tagger@challenger")
    out = model.predict(
        pd.DataFrame(
            {
                "title": [
                    "How to merge two pandas DataFrames on a column in Python?",
                    "Android RecyclerView not updating after notifyDataSetChanged",
                ],
                "body": ["<p>I have two DataFrames and want to join them.</p>", ""],
            }
        ),
        params={"top_k": 3, "threshold": 0.0},
    )
    assert "python" in out[0]["tags"]
    assert "android" in out[1]["tags"]
    behavioural_cases_on(model.unwrap_python_model().tagger)


def behavioural_cases_on(tagger) -> None:
    """The shipped behavioural cases: the trained model passes them; a copy with shuffled weights fails at the gate."""
    import copy
    from pathlib import Path

    import numpy as np

    from sotag.registry.behaviour import run_cases
    from sotag.registry.gate import Decision, GateConfig, Latency, extra_checks

    report = run_cases(tagger)
    assert not report.failed_required, [(o.case.id, o.detail) for o in report.failed_required]
    assert sum(o.result == "pass" for o in report.outcomes) >= 15, report.summary()

    broken = copy.copy(tagger)
    broken.model = copy.copy(tagger.model)
    broken.model.estimator = copy.copy(tagger.estimator)
    broken.model.estimator.weights = tagger.estimator.weights[
        :, np.random.default_rng(0).permutation(len(tagger.vocabulary))
    ]
    report = run_cases(broken)
    assert len(report.failed_required) >= 5, report.summary()
    verdict = extra_checks(GateConfig(data=Path(".")), Decision(True, "F1@3 passes", {}), Latency(0.4, 0.9, 50), report)
    assert not verdict.promote and "required behavioural case(s) failed" in verdict.reason
