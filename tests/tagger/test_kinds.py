"""The kinds table: a model kind is one module plus one entry, and config.json files of format 1 still load."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import MultiLabelBinarizer

from sotag.tagger.artifacts import ModelConfig, read_config, write_artifacts
from sotag.tagger.errors import ArtifactError
from sotag.tagger.explain import explain
from sotag.tagger.fused import FusedLinearModel
from sotag.tagger.kinds import KINDS, trainable_kinds
from sotag.tagger.kinds.base import Fitted, KindOptions, ModelKind, NotExplainable, TrainingQuestions
from sotag.tagger.model import Tagger
from sotag.tagger.pyfunc import MODEL_DIR_KEY, TaggerPyfunc
from sotag.tagger.text import PREPROCESSING_VERSION
from tests.support.settings import gateway_config


@dataclass
class KeywordTable:
    """Not a fused linear matrix: per tag, the title words that were seen with it, and how often."""

    counts: dict[str, dict[str, int]]
    tags: list[str]


@dataclass(frozen=True)
class KeywordOptions(KindOptions):
    min_count: int = 1


class KeywordKind(ModelKind):
    """A toy kind that is not one-vs-rest: a tag scores the share of the title's words seen with it."""

    name = "keyword"
    Options = KeywordOptions
    requirements: ClassVar[tuple[str, ...]] = ()

    def __init__(self, table: KeywordTable, options: KeywordOptions) -> None:
        self.vectorizer = {"lowercase": True}
        self.estimator = table
        self.options = options

    @classmethod
    def from_artifacts(cls, vectorizer: object, estimator: object, options: KindOptions) -> KeywordKind:
        if not isinstance(estimator, KeywordTable):
            raise ArtifactError(
                f"estimator.joblib: a keyword model needs a KeywordTable, got {type(estimator).__name__}"
            )
        return cls(estimator, options)

    @classmethod
    def fit(cls, train: TrainingQuestions, evaluation: TrainingQuestions, config: object) -> Fitted:
        start = time.perf_counter()
        counts: dict[str, dict[str, int]] = {t: {} for t in train.vocabulary}
        for title, row in zip(train.titles, train.y, strict=True):
            for j in np.flatnonzero(row):
                for word in title.lower().split():
                    counts[train.vocabulary[j]][word] = counts[train.vocabulary[j]].get(word, 0) + 1
        model = cls(KeywordTable(counts, list(train.vocabulary)), KeywordOptions(min_count=2))
        scores = model.scores(evaluation.titles, evaluation.bodies)
        return Fitted(model, scores, {"fit_s": time.perf_counter() - start}, {"words": len(counts)})

    @property
    def n_tags(self) -> int:
        return len(self.estimator.tags)

    def scores(self, titles: Sequence[str], bodies: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(titles), self.n_tags))
        for i, title in enumerate(titles):
            words = title.lower().split()
            for j, tag in enumerate(self.estimator.tags):
                seen = self.estimator.counts[tag]
                out[i, j] = sum(seen.get(w, 0) >= self.options.min_count for w in words) / max(len(words), 1)
        return out


def test_a_kind_added_to_the_table_trains_saves_loads_and_serves_through_the_pyfunc(
    monkeypatch, questions_parquet, tmp_path
):
    from sotag.training.config import TrainConfig
    from sotag.training.fit import fit_and_evaluate, prepare

    monkeypatch.setitem(KINDS, "keyword", KeywordKind)
    assert "keyword" in trainable_kinds()
    config = TrainConfig(data=questions_parquet, split_date="2018-03-01", top_n_tags=6, threshold=0.1, register=False)
    config = config.for_vectorizer("keyword")
    result = fit_and_evaluate(config, prepare(config))
    assert result.tagger.config.kind == "keyword" and result.details == {"words": 6}
    assert result.evaluation.metrics["precision_at_1"] > 0.5  # titles name their topic

    directory = result.tagger.save(tmp_path / "model", result.mlb)
    saved = json.loads((directory / "config.json").read_text())
    assert saved["kind"] == "keyword" and saved["options"] == {"min_count": 2} and saved["format_version"] == 2

    pyfunc = TaggerPyfunc()
    pyfunc.load_context(SimpleNamespace(artifacts={MODEL_DIR_KEY: str(directory)}))
    frame = pd.DataFrame({"title": ["docker compose volume mount", "react component with node npm"]})
    answers = pyfunc.predict(None, frame, {"top_k": 2, "threshold": 0.0})
    assert answers[0]["tags"][0] == "docker" and answers[1]["tags"][0] == "javascript"
    expected = result.tagger.suggest(frame["title"].tolist(), ["", ""], 2, 0.0)
    assert answers == [{"tags": s.tags, "scores": s.scores} for s in expected]
    with pytest.raises(NotExplainable, match="keyword: this model kind cannot"):
        explain(pyfunc.tagger, "docker compose volume mount", "", answers[0]["tags"])

    # The gateway serves it too, and says (422, not a 500) that it cannot explain it.
    from fastapi.testclient import TestClient

    from sotag.serving.app import create_app

    gateway = gateway_config(model_uri=str(directory), prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}")
    with TestClient(create_app(gateway)) as client:
        assert client.get("/model_info").json()["selection"] == "top_k_above_threshold"
        question = {"title": "docker compose volume mount", "top_k": 2, "threshold": 0.0}
        assert client.post("/predict", json=question).json()["tags"] == answers[0]["tags"]
        refused = client.post("/explain", json=question)
        assert refused.status_code == 422 and "cannot break its scores down" in refused.json()["error"]


def _tfidf_model(tmp_path, **config):
    vec = TfidfVectorizer().fit(["python code", "java code"])
    weights = np.zeros((len(vec.vocabulary_), 2), dtype=np.float32)
    weights[vec.vocabulary_["python"], 0] = 8
    weights[vec.vocabulary_["java"], 1] = 8
    est = FusedLinearModel(weights=weights, bias=np.full(2, -2, dtype=np.float32))
    mlb = MultiLabelBinarizer(classes=["python", "java"]).fit([["python", "java"]])
    model = ModelConfig(
        top_k=2,
        threshold=0.5,
        vectorizer="tfidf",
        vocabulary=["python", "java"],
        preprocessing_version=PREPROCESSING_VERSION,
        **config,
    )
    return write_artifacts(tmp_path / "model", vec, est, mlb, model)


def _as_format_1(directory, **fields) -> None:
    """Rewrite config.json as sotag wrote it before the kinds table (config.json carries no digest of itself)."""
    path = directory / "config.json"
    payload = json.loads(path.read_text())
    format_2_only = {"kind", "options", "calibration", "min_tags"}
    payload = {k: v for k, v in payload.items() if k not in format_2_only} | {"format_version": 1} | fields
    path.write_text(json.dumps(payload))


def test_format_1_configs_with_extra_load_as_their_kind(tmp_path):
    directory = _tfidf_model(tmp_path)
    _as_format_1(directory, keep_code=False, extra={"title_repeat": 3})
    config, _ = read_config(directory)
    assert config.kind == "tfidf" and config.options.title_repeat == 3 and config.options.keep_code is False
    assert (config.preprocessing, config.selection) == ("sotag", "top_k_above_threshold")
    [suggestion] = Tagger.from_directory(directory).suggest(["python question"], [""])
    assert suggestion.tags == ["python"]

    # A converted original-API model of format 1: raw text, the union selection, provenance in `extra`.
    _as_format_1(
        directory,
        preprocessing="raw",
        selection="top_k_or_threshold",
        keep_code=True,
        extra={"converted_from": "bundle.joblib", "bundle_sha256": "ab" * 32},
    )
    tagger = Tagger.from_directory(directory)
    assert tagger.config.kind == "legacy" and tagger.config.options.converted_from == "bundle.joblib"
    assert tagger.model.texts(["Title"], ["<p>Body</p>"]) == ["Title\n\n<p>Body</p>"]  # as sent
    [union] = tagger.suggest(["python java"], [""], top_k=1, threshold=0.0)
    assert sorted(union.tags) == ["java", "python"]  # the top 1 OR every tag above the threshold

    _as_format_1(directory, surprise=1)
    with pytest.raises(ArtifactError, match=r"unexpected.*surprise"):
        read_config(directory)


def test_a_config_naming_an_unknown_kind_or_option_is_refused(tmp_path):
    directory = _tfidf_model(tmp_path)
    payload = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps(payload | {"kind": "omikuji"}))
    with pytest.raises(ArtifactError, match="kind 'omikuji' is not one of"):
        read_config(directory)
    (directory / "config.json").write_text(json.dumps(payload | {"options": {"title_repeats": 2}}))
    with pytest.raises(ArtifactError, match=r"unknown field.*title_repeats"):
        read_config(directory)


def test_fitting_one_vs_rest_leaves_the_callers_feature_matrix_unchanged():
    """The plt kind fits its head, then its trees, on one TF-IDF matrix: float32 with unsorted column indices
    (what TfidfVectorizer returns). Fitting the head once scrambled that matrix (a dtype-converting copy shared
    its index arrays and sorted them in place), so the trees learned from wrong features."""
    import scipy.sparse as sp

    from sotag.tagger.kinds.linear import fit_one_vs_rest

    texts = [f"python pandas frame {i}" if i % 2 else f"docker compose volume {i} python" for i in range(40)]
    x = TfidfVectorizer(dtype=np.float32).fit_transform(texts)
    x = sp.csr_matrix(x)
    assert x.dtype == np.float32 and not x.has_sorted_indices  # the case that was scrambled
    before = (x.data.copy(), x.indices.copy(), x.indptr.copy())
    fit_one_vs_rest(x, np.array([[i % 2, 1 - i % 2] for i in range(40)]), C=10.0, n_jobs=2)
    for kept, was in zip((x.data, x.indices, x.indptr), before, strict=True):
        np.testing.assert_array_equal(kept, was)
