import json

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import MultiLabelBinarizer

from sotag.tagger.artifacts import ARTIFACT_FILES, ModelConfig, load_artifacts, verify_artifacts, write_artifacts
from sotag.tagger.errors import ArtifactError
from sotag.tagger.fused import FusedLinearModel
from sotag.tagger.model import Tagger
from sotag.tagger.text import PREPROCESSING_VERSION


def _write(tmp_path, vocab=("python", "java")):
    vec = TfidfVectorizer().fit(["python code", "java code"])
    n = len(vec.vocabulary_)
    weights = np.zeros((n, len(vocab)), dtype=np.float32)
    weights[vec.vocabulary_["python"], 0] = 8
    weights[vec.vocabulary_["java"], 1] = 8
    est = FusedLinearModel(weights=weights, bias=np.full(len(vocab), -2, dtype=np.float32))
    mlb = MultiLabelBinarizer(classes=list(vocab)).fit([list(vocab)])
    config = ModelConfig(
        top_k=2, threshold=0.5, vectorizer="tfidf", vocabulary=list(vocab), preprocessing_version=PREPROCESSING_VERSION
    )
    return write_artifacts(tmp_path / "model", vec, est, mlb, config)


def test_roundtrip_records_every_digest(tmp_path):
    directory = _write(tmp_path)
    config, digests = verify_artifacts(directory)
    assert set(digests) == set(ARTIFACT_FILES) and all(len(d) == 64 for d in digests.values())
    tagger = Tagger.from_directory(directory)
    [suggestion] = tagger.suggest(["python question"], [""])
    assert suggestion.tags == ["python"]
    assert config.top_k == 2


def test_tampered_file_is_refused_before_unpickling(tmp_path):
    directory = _write(tmp_path)
    with open(directory / "estimator.joblib", "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ArtifactError, match=r"estimator\.joblib: sha256 mismatch"):
        load_artifacts(directory)


def test_missing_file_and_bad_config(tmp_path):
    directory = _write(tmp_path)
    (directory / "mlb.joblib").unlink()
    with pytest.raises(ArtifactError, match=r"mlb\.joblib: missing"):
        verify_artifacts(directory)
    payload = json.loads((directory / "config.json").read_text())
    del payload["sha256"]["vectorizer.joblib"]
    (directory / "config.json").write_text(json.dumps(payload))
    with pytest.raises(ArtifactError, match="field 'sha256'"):
        verify_artifacts(directory)
    (directory / "config.json").unlink()
    with pytest.raises(ArtifactError, match=r"config\.json: missing"):
        verify_artifacts(directory)


def test_preprocessing_version_mismatch_is_refused(tmp_path):
    directory = _write(tmp_path)
    loaded = load_artifacts(directory)
    loaded.config.preprocessing_version = "0"
    with pytest.raises(ArtifactError, match="preprocessing_version"):
        Tagger.from_artifacts(loaded)


def test_pickles_from_an_older_scikit_learn_load_with_one_clear_line(tmp_path, monkeypatch, caplog, recwarn):
    import sklearn.base

    original = sklearn.base.BaseEstimator.__getstate__

    def as_if_1_5(self):
        return {**original(self), "_sklearn_version": "1.5.2"}

    # Written as scikit-learn 1.5.2 would have: each estimator's state carries that version.
    monkeypatch.setattr(sklearn.base.BaseEstimator, "__getstate__", as_if_1_5)
    directory = _write(tmp_path)
    monkeypatch.setattr(sklearn.base.BaseEstimator, "__getstate__", original)

    with caplog.at_level("WARNING", logger="sotag.tagger.artifacts"):
        load_artifacts(directory)
        load_artifacts(directory)  # the same model again: already said
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "pickled by scikit-learn 1.5.2" in lines[0] and str(directory) in lines[0]
    from sklearn.exceptions import InconsistentVersionWarning

    assert not [w for w in recwarn if issubclass(w.category, InconsistentVersionWarning)]


def _cjk_model(tmp_path, version: str):
    """A TF-IDF model trained on `version`'s cleaning of two questions, one a Japanese title without spaces."""
    from sotag.tagger.text import clean_question
    from sotag.tagger.vectorizers import TOKEN_PATTERN

    texts = [
        clean_question("PythonでJSONを読む", "", version=version),
        clean_question("java code", "", version=version),
    ]
    vec = TfidfVectorizer(token_pattern=TOKEN_PATTERN).fit(texts)
    weights = np.zeros((len(vec.vocabulary_), 2), dtype=np.float32)
    for term, column in vec.vocabulary_.items():
        weights[column, 0 if term != "java" and term != "code" else 1] = 8
    est = FusedLinearModel(weights=weights, bias=np.full(2, -2, dtype=np.float32))
    mlb = MultiLabelBinarizer(classes=["python", "java"]).fit([["python", "java"]])
    config = ModelConfig(
        top_k=2, threshold=0.5, vectorizer="tfidf", vocabulary=["python", "java"], preprocessing_version=version
    )
    return sorted(vec.vocabulary_), write_artifacts(tmp_path / f"model-{version}", vec, est, mlb, config)


def test_a_model_trained_under_preprocessing_version_1_loads_and_answers_as_before(tmp_path):
    """Issue 20 kind 4: bumping the version does not strand older models; they keep their own cleaning."""
    terms, directory = _cjk_model(tmp_path, "1")
    assert "pythonでjsonを読む" in terms  # version 1: the whole title is one token
    tagger = Tagger.from_directory(directory)
    assert tagger.config.preprocessing_version == "1"
    assert tagger.model.texts(["PythonでJSONを読む"], [""]) == ["pythonでjsonを読む . "]
    [joined, spaced] = tagger.suggest(["PythonでJSONを読む", "Python で JSON を読む"], ["", ""])
    assert joined.tags == ["python"] and joined.scores == [pytest.approx(0.9975, abs=1e-4)]
    assert spaced.tags == []  # as under version 1: the spaced title shares no token with the one it learnt


def test_a_new_model_tokenises_latin_runs_inside_cjk(tmp_path):
    terms, directory = _cjk_model(tmp_path, PREPROCESSING_VERSION)
    assert {"python", "json"} <= set(terms) and PREPROCESSING_VERSION == "2"
    tagger = Tagger.from_directory(directory)
    [joined, spaced] = tagger.suggest(["PythonでJSONを読む", "Python で JSON を読む"], ["", ""])
    assert joined == spaced and joined.tags == ["python"]
