"""convert-legacy: a seed-style monolithic bundle becomes the four artifacts and a registered pyfunc."""

from __future__ import annotations

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from sotag.cli import main
from sotag.infra.tracking import MODEL_NAME
from sotag.serving import legacy
from sotag.serving.app import create_app
from sotag.serving.legacy import convert_legacy
from sotag.serving.original_api import split_text
from sotag.tagger.artifacts import verify_artifacts
from sotag.tagger.model import Tagger
from tests.support.settings import gateway_config


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
    assert config.kind == "legacy" and config.options.converted_from == "legacy_model.joblib"
    assert len(config.options.bundle_sha256) == 64
    tagger = Tagger.from_directory(converted.directory)
    titles, bodies = questions["title"].tolist()[:50], questions["body"].tolist()[:50]
    expected = classifier.predict_proba(vectorizer.transform(tagger.model.texts(titles, bodies)))
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


ORIGINAL_FILES = r'''
"""Made the way the original Tagger API's notebook made them: TaggerModel lives in __main__."""
import json, sys
from pathlib import Path
import joblib
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.svm import LinearSVC


class TaggerModel:
    def __init__(self, vectorizer, estimator, mlb, topk, threshold):
        self.vectorizer, self.estimator, self.mlb = vectorizer, estimator, mlb
        self.topk, self.threshold = topk, threshold

    def predict(self, text):
        raise RuntimeError("the conversion must never call the notebook's code")


out = Path(sys.argv[2])
questions = pd.read_parquet(sys.argv[1])
texts = (questions["title"] + "\n\n" + questions["body"]).tolist()
mlb = MultiLabelBinarizer()
y = mlb.fit_transform(questions["tags"])
vectorizer = TfidfVectorizer(min_df=1).fit(texts)
X = vectorizer.transform(texts)
logistic = OneVsRestClassifier(LogisticRegression(C=10, max_iter=500)).fit(X, y)
joblib.dump(TaggerModel(vectorizer, logistic, mlb, 3, 0.3), out / "tagger_model.joblib")
models = out / "models"
models.mkdir()
svc = OneVsRestClassifier(LinearSVC(C=1.0)).fit(X, y)
for name, obj in (("vectorizer", vectorizer), ("estimator", svc), ("mlb", mlb)):
    joblib.dump(obj, models / f"{name}.joblib")
(models / "config.json").write_text(json.dumps({"topk": 2, "threshold": 0.0}))
'''

TEXTS = [
    "How do I fix pandas dataframe with pip install?\n\n<p>I use pandas dataframe and it fails.</p>",
    "docker compose volume mount\n\nthe container image does not see my files",
    "react component and node npm promise async",
    "sql join query on a postgres index",
    "Hello world",
]


def original_tags(vectorizer, estimator, mlb, text: str, topk: int, threshold: float) -> list[str]:
    """The original InferenceService's rule, written again here: top-k OR score >= threshold."""
    features = vectorizer.transform([text])
    scores = estimator.predict_proba(features) if hasattr(estimator, "predict_proba") else None
    if scores is None:
        scores = estimator.decision_function(features)
    chosen = np.zeros_like(scores, dtype=int)
    chosen[0, np.argsort(-scores, axis=1)[0, :topk]] = 1
    chosen = np.maximum(chosen, (scores >= threshold).astype(int))
    return sorted(mlb.classes_[np.where(chosen[0] == 1)[0]].tolist())


@pytest.fixture()
def original_files(tmp_path, questions_parquet):
    import subprocess
    import sys

    script = tmp_path / "make_original.py"
    script.write_text(ORIGINAL_FILES)
    subprocess.run([sys.executable, str(script), str(questions_parquet), str(tmp_path)], check=True, timeout=300)
    return tmp_path


def test_a_bundle_pickled_from_a_notebooks_main_converts_and_tags_as_before(original_files, tmp_path):
    converted = convert_legacy(original_files / "tagger_model.joblib", tmp_path / "from-bundle")
    config = converted.config
    assert (config.top_k, config.threshold, config.score_kind) == (3, 0.3, "probability")
    assert config.preprocessing == "raw" and config.selection == "top_k_or_threshold"
    tagger = Tagger.from_directory(converted.directory)
    bundle = legacy.safe_load(original_files / "tagger_model.joblib")
    vectorizer = bundle.vectorizer
    assert type(bundle).__name__ == "TaggerModel" and isinstance(bundle, legacy.LegacyStandIn)
    assert not hasattr(bundle, "predict")  # the notebook's methods never came along
    for text in TEXTS:
        title, body = split_text(text)
        [ours] = tagger.suggest([title], [body])
        assert sorted(ours.tags) == original_tags(vectorizer, bundle.estimator, bundle.mlb, text, 3, 0.3), text
        assert ours.scores == sorted(ours.scores, reverse=True)


def test_an_original_models_folder_of_linear_svc_converts_and_the_gateway_serves_it(original_files, tmp_path):
    converted = convert_legacy(original_files / "models", tmp_path / "from-folder")
    assert converted.config.score_kind == "margin" and (converted.config.top_k, converted.config.threshold) == (2, 0.0)
    _, digests = verify_artifacts(converted.directory)  # the four files now carry their digests
    assert set(digests) == {"vectorizer.joblib", "estimator.joblib", "mlb.joblib"}
    vectorizer, estimator, mlb = (
        joblib.load(original_files / "models" / f"{n}.joblib") for n in ("vectorizer", "estimator", "mlb")
    )
    config = gateway_config(model_uri=str(converted.directory), prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}")
    with TestClient(create_app(config)) as client:
        info = client.get("/model_info").json()
        assert info["score_kind"] == "margin" and info["preprocessing"] == "raw"
        for text in TEXTS:
            answer = client.post("/predict", json={"text": text}).json()
            assert sorted(answer["tags"]) == original_tags(vectorizer, estimator, mlb, text, 2, 0.0), text
            assert len(answer["tags"]) >= 2  # top-2 at least: the union, never an intersection
        # A margin's threshold is any number the original accepted (+-1e9); probabilities stay in [0, 1].
        assert client.post("/predict", json={"text": TEXTS[0], "threshold": -0.5}).status_code == 200
        assert client.post("/predict", json={"text": TEXTS[0], "threshold": 2.0}).status_code == 200
        refused = client.post("/predict", json={"text": TEXTS[0], "threshold": 2e9})
        assert refused.status_code == 400 and refused.json()["details"][0]["field"] == "threshold"


def test_a_pickle_that_would_run_code_is_refused_unrun(tmp_path, capsys):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.joblib"
    joblib.dump({"vectorizer": Evil()}, path)
    assert main(["convert-legacy", str(path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "outside scikit-learn, NumPy and SciPy" in err and "system" in err
    assert not marker.exists()


def test_a_models_folder_is_refused_by_the_gateway_until_converted(original_files, tmp_path, capsys):
    assert main(["gateway", "--model-dir", str(original_files / "models")]) == 2
    assert "sotag convert-legacy" in capsys.readouterr().err


def test_a_bundle_from_an_older_scikit_learn_converts_with_one_line(tmp_path, questions, monkeypatch, capsys):
    import sklearn.base

    texts = (questions["title"] + " " + questions["body"]).tolist()
    mlb = MultiLabelBinarizer()
    y = mlb.fit_transform(questions["tags"])
    vectorizer = TfidfVectorizer(min_df=1).fit(texts)
    classifier = OneVsRestClassifier(LogisticRegression(C=10, max_iter=500)).fit(vectorizer.transform(texts), y)
    original = sklearn.base.BaseEstimator.__getstate__
    # Pickled as scikit-learn 1.5.2 would have: every estimator's state carries that version.
    monkeypatch.setattr(
        sklearn.base.BaseEstimator, "__getstate__", lambda self: {**original(self), "_sklearn_version": "1.5.2"}
    )
    path = tmp_path / "old.joblib"
    joblib.dump({"vectorizer": vectorizer, "model": classifier, "mlb": mlb}, path)
    monkeypatch.setattr(sklearn.base.BaseEstimator, "__getstate__", original)
    assert main(["convert-legacy", str(path), str(tmp_path / "out")]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "pickled by scikit-learn 1.5.2" in err[0]
