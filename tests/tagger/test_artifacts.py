import json

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import MultiLabelBinarizer

from tagger.artifacts import ARTIFACT_FILES, ModelConfig, load_artifacts, verify_artifacts, write_artifacts
from tagger.errors import ArtifactError
from tagger.fused import FusedLinearModel
from tagger.model import Tagger
from tagger.text import PREPROCESSING_VERSION


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

    with caplog.at_level("WARNING", logger="tagger.artifacts"):
        load_artifacts(directory)
        load_artifacts(directory)  # the same model again: already said
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "pickled by scikit-learn 1.5.2" in lines[0] and str(directory) in lines[0]
    from sklearn.exceptions import InconsistentVersionWarning

    assert not [w for w in recwarn if issubclass(w.category, InconsistentVersionWarning)]
