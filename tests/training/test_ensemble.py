"""The ensemble model kind: TF-IDF head + SBERT head, the weight chosen away from the evaluation window."""

from __future__ import annotations

import json
from dataclasses import replace

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sotag.infra.tracking import MODEL_NAME, use_fluent
from sotag.tagger.kinds.ensemble import EnsembleKind, combine
from sotag.training.config import TrainConfig
from sotag.training.fit import fit_and_evaluate, prepare
from sotag.training.train import train

SMALL = dict(
    split_date="2018-03-01", top_n_tags=8, max_features=2000, min_df=1, C=10.0, threshold=0.2, vectorizer="ensemble"
)


@pytest.fixture()
def config(questions_parquet, tmp_path):
    return TrainConfig(data=questions_parquet, cache_dir=tmp_path / "cache", **SMALL)


def test_scores_are_the_weighted_mean_of_the_two_heads_through_the_pyfunc(config, tracking, questions):
    outcome = train(config, use_fluent(tracking, config.experiment))
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{outcome.version}")
    tagger = model.unwrap_python_model().tagger
    assert isinstance(tagger.model, EnsembleKind) and tagger.config.vectorizer == tagger.config.kind == "ensemble"
    frame = questions.head(40)[["title", "body"]]
    answers = model.predict(frame, params={"top_k": len(tagger.vocabulary), "threshold": 0.0})

    features = tagger.model.features.transform_questions(frame["title"].tolist(), frame["body"].tolist())
    estimator = tagger.estimator
    raw = combine(
        estimator.words.predict_proba(features.words),
        estimator.embeddings.predict_proba(features.embeddings),
        estimator.weight,
    )
    # Served: the version's calibration of the combined scores (tagger.calibration), in the same order.
    expected = tagger.config.calibration.apply(raw)
    assert [np.argsort(-r, kind="stable")[:5].tolist() for r in expected] == [
        np.argsort(-r, kind="stable")[:5].tolist() for r in raw
    ]
    column = {t: i for i, t in enumerate(tagger.vocabulary)}
    for row, answer in zip(expected, answers, strict=True):
        got = np.array(answer["scores"])
        assert np.all((got >= 0) & (got <= 1))
        np.testing.assert_allclose(got, [row[column[t]] for t in answer["tags"]], atol=1e-6)

    run = MlflowClient().get_run(outcome.run_id)
    assert float(run.data.params["ensemble_weight_chosen"]) == estimator.weight
    assert {"validation_f1_at_3", "tfidf_head_precision_at_1", "sbert_head_precision_at_1"} <= set(run.data.metrics)
    table = json.loads(mlflow.artifacts.load_text(f"runs:/{outcome.run_id}/ensemble/validation.json"))
    assert len(table["data"]) == 21  # weights 0, 0.05, ..., 1


def test_the_weight_is_chosen_on_the_validation_slice_only(config):
    prepared = prepare(config)
    first = fit_and_evaluate(config, prepared)
    # Plant another evaluation window: the same questions with their tags shuffled between them.
    evaluation = prepared.split.evaluation.copy()
    evaluation["tags"] = evaluation["tags"].sample(frac=1.0, random_state=3).to_numpy()
    planted = replace(prepared, split=replace(prepared.split, evaluation=evaluation))
    second = fit_and_evaluate(config, planted)
    assert second.details["ensemble_weight"] == first.details["ensemble_weight"]
    pd.testing.assert_frame_equal(second.details["validation"], first.details["validation"])
    assert second.evaluation.metrics["precision_at_1"] < first.evaluation.metrics["precision_at_1"]
    # The validation slice is the newest part of the training window, never a question of the evaluation one.
    assert first.details["validation_questions"] == round(len(prepared.split.train) * config.validation_share)
