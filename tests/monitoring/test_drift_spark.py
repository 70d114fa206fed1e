"""`sotag drift --engine spark`: SBERT on Spark's workers, the driver's cache, and `sotag score` output as the
prediction source. A real `local[2]` session; skipped, saying why, where Java or pyspark is missing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sotag.cli import main as sotag_main
from sotag.infra.scored import read_scored
from sotag.infra.spark import SparkSettings, spark_available
from sotag.infra.tracking import MODEL_NAME, use_fluent
from sotag.monitoring.config import DriftConfig
from sotag.monitoring.job import question_texts
from sotag.monitoring.runner import execute
from sotag.serving.batch import run_score
from sotag.serving.score_job import ScoreConfig
from sotag.tagger.sbert import EmbeddingCache, encode, model_identity, text_digest
from sotag.training.config import TrainConfig
from sotag.training.train import train
from tests.conftest import make_questions

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(spark_available() is not None, reason=f"Spark tests: {spark_available()}"),
]

MONTHS = ("2018-03", "2018-04")


@pytest.fixture()
def setup(tracking, tmp_path: Path):
    data = tmp_path / "questions.parquet"
    make_questions(n=1500, seed=3).to_parquet(data)
    config = TrainConfig(
        vectorizer="tfidf",
        data=data, split_date="2018-01-01", top_n_tags=8, max_features=2000, min_df=1, C=10.0, threshold=0.2,
        cache_dir=tmp_path / "train-cache",
    )  # fmt: skip
    version = train(config, use_fluent(tracking, config.experiment)).version
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", version)
    run_score(ScoreConfig(input=data, output=tmp_path / "scored", engine="local", progress=False), tracking)
    return data, tmp_path


def test_spark_embeddings_feed_the_cache_and_scored_output_feeds_prediction_drift(setup, tracking):
    data, root = setup
    drift = DriftConfig(
        reference=("2017-07", "2017-12"), months=MONTHS, data=data, max_per_month=40, max_reference=60,
        reports_root=root / "reports", cache_dir=root / "drift-cache", engine="spark",
        spark=SparkSettings(master="local[2]"), scored=root / "scored",
    )  # fmt: skip
    result, code = execute(drift, tracking)
    assert code in (0, 4)
    # Every distinct text was encoded on Spark once (the synthetic questions repeat some), and cached by the driver.
    import sqlite3

    with sqlite3.connect(drift.cache_dir / "embeddings.sqlite") as conn:
        cached_rows = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert result.timings["embedded_questions"] == 60 + 40 * len(MONTHS)
    assert result.timings["spark_encoded_texts"] == cached_rows > 60
    assert result.timings["spark_texts_per_s"] > 0

    # What the workers computed is what this process computes, and it now sits in the driver's cache.
    frame = make_questions(n=1500, seed=3)
    texts = question_texts(frame[frame["creation_date"].dt.strftime("%Y-%m") == MONTHS[0]].head(60))
    cache = EmbeddingCache(drift.cache_dir / "embeddings.sqlite")
    cached = cache.get(model_identity(128), [text_digest(t) for t in texts])
    assert len(cached) >= 20
    local = encode(list(texts), cache=None, progress=False)
    digests = [text_digest(t) for t in texts]
    for i, digest in enumerate(digests):
        if digest in cached:
            assert float(np.dot(cached[digest], local[i])) > 0.9999

    # Prediction statistics read every scored question of the month after the champion's training, not the sample.
    scored = read_scored(root / "scored", MONTHS)
    for month in result.months:
        assert month.values["n_scored_questions"] == (scored["creation_month"] == month.month).sum() > 40
        assert {"tag_psi", "tag_chi2", "no_tag_share"} <= set(month.values)

    # Warm: nothing left for Spark to encode, same verdicts.
    warm, _ = execute(replace(drift, reports_root=root / "warm"), tracking)
    assert "spark_encoded_texts" not in warm.timings
    assert [m.severity for m in warm.months] == [m.severity for m in result.months]


def test_drift_cli_flags(setup, tracking, capsys):
    data, root = setup
    args = ["drift", "--data", str(data), "--months", "2018-03", "--no-mlflow", "--reports-dir", str(root / "r")]
    assert sotag_main([*args, "--predictions", str(root / "nothing-here")]) == 2
    assert "neither a log URL nor a folder of sotag score output" in capsys.readouterr().err
    assert sotag_main([*args, "--predictions", "sqlite:///x.db"]) == 2
    assert "a prediction log replaces --data" in capsys.readouterr().err
    assert sotag_main([*args, "--engine", "spark", "--max-per-month", "5"]) == 2
    assert "--max-per-month: samples need at least 10 questions (0 = all)" in capsys.readouterr().err
