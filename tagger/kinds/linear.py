"""Linear kinds: one logistic regression per tag over bag-of-words, TF-IDF or SBERT features.

`vectorizer.joblib` holds the fitted vectorizer (sklearn's CountVectorizer / TfidfVectorizer, or an
`SbertVectorizer` with no weights), `estimator.joblib` the per-tag models fused into one matrix
(`tagger.fused.FusedLinearModel`). Scores are probabilities. Scoring goes through the fused matrix and
the compiled transform (tagger.compiled), never sklearn's per-tag loop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from sotag.tagger.compiled import compile_vectorizer
from sotag.tagger.errors import ArtifactError
from sotag.tagger.explain import TagExplanation, linear_explanations
from sotag.tagger.fused import FusedLinearModel
from sotag.tagger.kinds.base import FitConfig, Fitted, KindOptions, ModelKind, TrainingQuestions
from sotag.tagger.questions import question_texts
from sotag.tagger.vectorizers import SBERT_REQUIREMENTS, SbertVectorizer, count_vectorizer, slim, tfidf_vectorizer


@dataclass(frozen=True)
class TextOptions(KindOptions):
    """How the question becomes text: code kept as identifiers or dropped; the title repeated."""

    keep_code: bool = True
    title_repeat: int = 1


def fit_one_vs_rest(
    features: sp.spmatrix | np.ndarray, targets: np.ndarray, C: float, n_jobs: int
) -> OneVsRestClassifier:
    """One logistic regression per tag, fitted on `n_jobs` threads.

    The dual liblinear solver is several times faster than the primal when features
    outnumber questions. Threads (not processes) avoid copying the matrix and the
    read-only memmap failure of process-based OvR with liblinear; the matrix is made
    canonical float64 first so no thread mutates or converts the shared copy.

    The caller's matrix is left as it was: the canonical copy is a whole copy. (A dtype-converting
    `csr_matrix(x, dtype=...)` copies the values but shares the index arrays, so sorting the copy's indices
    in place scrambled the caller's matrix: a float32 TF-IDF matrix with unsorted indices, which a label tree
    was then fitted on.)
    """
    dense = not sp.issparse(features)
    if dense:
        features = np.ascontiguousarray(features, dtype=np.float64)
    else:
        features = sp.csr_matrix(features, dtype=np.float64, copy=True)
        features.sum_duplicates()
    estimator = LogisticRegression(C=C, solver="liblinear", dual=not dense, max_iter=1000)
    ovr = OneVsRestClassifier(estimator, n_jobs=n_jobs)
    with joblib.parallel_backend("threading", n_jobs=n_jobs):
        ovr.fit(features, targets)
    return ovr


def term_names(vectorizer: object) -> np.ndarray | None:
    """The vectorizer's terms, or None when its features are not terms (dense embeddings)."""
    names = getattr(vectorizer, "get_feature_names_out", None)
    if names is None or getattr(vectorizer, "vocabulary_", None) is None:
        return None
    return names()


class TextFeaturesKind(ModelKind):
    """A fitted vectorizer over the cleaned question text and an estimator with `scores(features)` and `n_tags`:
    what the linear kinds and the label-tree kind share at inference."""

    options: TextOptions

    def __init__(self, vectorizer: object, estimator: Any, options: TextOptions) -> None:
        self.vectorizer = vectorizer
        self.estimator = estimator
        self.options = options
        # Same features as `vectorizer.transform`, without sklearn's per-call overhead.
        self.features = compile_vectorizer(vectorizer)

    @property
    def n_tags(self) -> int:
        return self.estimator.n_tags

    def texts(self, titles: Sequence[str], bodies: Sequence[str]) -> list[str]:
        """What the vectorizer reads: the cleaned question (tagger.questions), under the model's preprocessing."""
        return question_texts(
            titles, bodies, self.options.keep_code, self.options.title_repeat, version=self.preprocessing_version
        )

    def scores(self, titles: Sequence[str], bodies: Sequence[str]) -> np.ndarray:
        return self.estimator.scores(self.features.transform(self.texts(titles, bodies)))


class LinearKind(TextFeaturesKind):
    """A fitted vectorizer and a fused linear head over its features."""

    Options = TextOptions

    @classmethod
    def from_artifacts(cls, vectorizer: object, estimator: object, options: KindOptions) -> LinearKind:
        if not isinstance(estimator, FusedLinearModel):
            raise ArtifactError(
                f"estimator.joblib: a {cls.name} model needs a FusedLinearModel, got {type(estimator).__name__}"
            )
        return cls(vectorizer, estimator, options)

    @classmethod
    def new_vectorizer(cls, config: Any) -> BaseEstimator:
        """A fresh, unfitted vectorizer of this kind's features."""
        raise NotImplementedError

    @classmethod
    def fit(cls, train: TrainingQuestions, evaluation: TrainingQuestions, config: FitConfig) -> Fitted:
        timings: dict[str, float] = {}
        options = TextOptions(keep_code=config.keep_code, title_repeat=config.title_repeat)
        start = time.perf_counter()
        train_texts = question_texts(train.titles, train.bodies, options.keep_code, options.title_repeat, True)
        eval_texts = question_texts(evaluation.titles, evaluation.bodies, options.keep_code, options.title_repeat, True)
        timings["clean_s"] = time.perf_counter() - start

        vectorizer = cls.new_vectorizer(config)
        start = time.perf_counter()
        x_train = vectorizer.fit_transform(train_texts)
        timings["vectorize_s"] = time.perf_counter() - start

        start = time.perf_counter()
        ovr = fit_one_vs_rest(x_train, train.y, config.C, config.n_jobs)
        timings["fit_s"] = time.perf_counter() - start

        fused = FusedLinearModel.from_one_vs_rest(ovr)
        start = time.perf_counter()
        scores = fused.predict_proba(vectorizer.transform(eval_texts))
        timings["evaluate_s"] = time.perf_counter() - start
        return Fitted(cls(slim(vectorizer), fused, options), scores, timings, reference=ovr)

    def explain(
        self, title: str, body: str, tags: Sequence[str], vocabulary: np.ndarray, n_terms: int
    ) -> list[TagExplanation]:
        features = self.features.transform(self.texts([title], [body]))
        scores = self.estimator.scores(features)[0]
        note = f"{self.name}: the features are embeddings, not terms; their share is not broken down"
        names = term_names(self.vectorizer)
        return linear_explanations(self.estimator, features, names, scores, tags, vocabulary, n_terms, None, note)

    def term_weights(self) -> tuple[np.ndarray, np.ndarray] | None:
        names = term_names(self.vectorizer)
        return None if names is None else (names, self.estimator.weights)


class BowKind(LinearKind):
    """Binary bag of words (unigrams and bigrams by default)."""

    name = "bow"

    @classmethod
    def new_vectorizer(cls, config: Any) -> BaseEstimator:
        return count_vectorizer(max_features=config.max_features, ngram_max=config.ngram_max, min_df=config.min_df)


class TfidfKind(LinearKind):
    """Sublinear TF-IDF."""

    name = "tfidf"

    @classmethod
    def new_vectorizer(cls, config: Any) -> BaseEstimator:
        return tfidf_vectorizer(max_features=config.max_features, ngram_max=config.ngram_max, min_df=config.min_df)


class SbertKind(LinearKind):
    """Sentence embeddings (all-MiniLM-L6-v2, weights from the installed package) as features."""

    name = "sbert"
    requirements = SBERT_REQUIREMENTS

    @classmethod
    def training_overrides(cls, config: Any) -> dict[str, Any]:
        # Natural sentences for a sentence encoder; dense, low-dimensional features want more regularisation.
        return {"title_repeat": 1, "C": min(config.C, 10.0)}

    @classmethod
    def new_vectorizer(cls, config: Any) -> BaseEstimator:
        return SbertVectorizer(cache_path=str(config.cache_dir / "embeddings.sqlite"))

    @classmethod
    def embedded_texts(cls, frame: pd.DataFrame, config: Any) -> list[str]:
        return question_texts(frame["title"], frame["body"], config.keep_code, config.title_repeat)
