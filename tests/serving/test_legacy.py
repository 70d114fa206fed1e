"""convert-legacy: a seed-style monolithic bundle becomes the four artifacts and a registered pyfunc."""

from __future__ import annotations

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from serving.legacy import convert_legacy
from sotag.cli import main
from tagger.artifacts import verify_artifacts
from tagger.model import Tagger
from tagger.tracking import MODEL_NAME


@pytest.fixture()
def bundle(tmp_path, questions):
    texts = (questions["title"] + " " + questions["body"]).tolist()
    mlb = MultiLabelBinarizer()
    y = mlb.fit_transform(questions["tags"])
    vectorizer = TfidfVectorizer(min_df=1).fit(texts)
    classifier = OneVsRestClassifier(LogisticRegression(C=10, max_iter=500)).fit(vectorizer.transform(texts), y)
    path = tmp_path / "legacy_model.joblib"
    joblib.dump({"vectorizer": vectorizer, "model": classifier, "mlb": mlb, "top_k": 4, "threshold": 0.25}, path)
    return path, vectorizer, classifier


def test_converted_model_scores_exactly_like_the_bundle(bundle, tmp_path, questions):
    path, vectorizer, classifier = bundle
    converted = convert_legacy(path, tmp_path / "model")
    config, _ = verify_artifacts(converted.directory)
    assert config.top_k == 4 and config.threshold == 0.25 and config.vectorizer == "tfidf"
    assert config.extra["converted_from"] == "legacy_model.joblib" and len(config.extra["bundle_sha256"]) == 64
    tagger = Tagger.from_directory(converted.directory)
    titles, bodies = questions["title"].tolist()[:50], questions["body"].tolist()[:50]
    expected = classifier.predict_proba(vectorizer.transform(tagger.texts(titles, bodies)))
    np.testing.assert_allclose(tagger.scores(titles, bodies), expected, atol=1e-6)


def test_convert_and_register_through_the_cli(bundle, tmp_path, tracking, capsys):
    path, _, _ = bundle
    assert main(["convert-legacy", str(path), str(tmp_path / "model"), "--register"]) == 0
    assert "registered models:/stackoverflow-tagger/1 as @challenger" in capsys.readouterr().out
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@challenger")
    out = model.predict(pd.DataFrame({"title": ["docker compose volume mount"], "body": [""]}))
    assert out[0]["tags"][0] == "docker"


def test_bad_bundles_exit_2_naming_the_part(tmp_path, capsys):
    path = tmp_path / "partial.joblib"
    joblib.dump({"vectorizer": TfidfVectorizer().fit(["alpha beta"]), "model": None}, path)
    assert main(["convert-legacy", str(path), str(tmp_path / "out")]) == 2
    assert "no mlb" in capsys.readouterr().err
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"not a pickle")
    assert main(["convert-legacy", str(garbage), str(tmp_path / "out")]) == 2
    assert "not a joblib/pickle bundle" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
