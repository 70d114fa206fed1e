"""The ensemble model kind: a TF-IDF head and an SBERT head, their probabilities averaged.

The two heads make different mistakes (words vs meaning), so a weighted mean of their per-tag
probabilities ranks better than either. It stays inside the four-artifact contract:
`vectorizer.joblib` holds an `EnsembleVectorizer` (the fitted TF-IDF vectorizer and the SBERT
settings; the SBERT weights come from the installed package), `estimator.joblib` an
`EnsembleModel` (both fused heads and the TF-IDF weight). Scores are probabilities in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from tagger.compiled import compile_vectorizer
from tagger.fused import FusedLinearModel
from tagger.text import PREPROCESSING_VERSION, clean_question


@dataclass(frozen=True)
class EnsembleFeatures:
    words: sp.spmatrix  # the TF-IDF head's features
    embeddings: np.ndarray  # the SBERT head's features


def head_texts(
    titles: Sequence[str],
    bodies: Sequence[str],
    keep_code: bool,
    title_repeat: int,
    version: str = PREPROCESSING_VERSION,
) -> tuple[list[str], list[str]]:
    """(TF-IDF texts, SBERT texts): the title repeated for the bag of words, once for the sentence encoder.

    Both come from one cleaning of each question: `clean_question` with a repeated title is the
    title's prefix in front of the natural text.
    """
    natural = [
        clean_question(t, b, keep_code=keep_code, title_repeat=1, version=version)
        for t, b in zip(titles, bodies, strict=True)
    ]
    if title_repeat <= 1:
        return natural, natural
    prefixes = [clean_question(t, "", title_repeat=title_repeat - 1, version=version) for t in titles]
    return [p + n for p, n in zip(prefixes, natural, strict=True)], natural


class EnsembleVectorizer:
    """The fitted TF-IDF vectorizer and the SBERT vectorizer, applied to (title, body) pairs."""

    def __init__(self, tfidf: object, sbert: object, keep_code: bool = True, title_repeat: int = 2) -> None:
        self.tfidf = tfidf
        self.sbert = sbert
        self.keep_code = keep_code
        self.title_repeat = title_repeat

    def transform_questions(
        self, titles: Sequence[str], bodies: Sequence[str], version: str = PREPROCESSING_VERSION
    ) -> EnsembleFeatures:
        """Both heads' features, the questions cleaned under preprocessing `version` (the model's)."""
        words, natural = head_texts(titles, bodies, self.keep_code, self.title_repeat, version)
        return EnsembleFeatures(self.tfidf.transform(words), self.sbert.transform(natural))

    def compiled(self) -> EnsembleVectorizer:
        """The same, with the TF-IDF transform compiled (tagger.compiled); built at load time, never saved."""
        return EnsembleVectorizer(compile_vectorizer(self.tfidf), self.sbert, self.keep_code, self.title_repeat)

    def get_feature_names_out(self) -> np.ndarray:
        """The TF-IDF head's terms (the SBERT head has none)."""
        return self.tfidf.get_feature_names_out()

    @property
    def vocabulary_(self) -> dict[str, int]:
        return self.tfidf.vocabulary_


@dataclass
class EnsembleModel:
    """`weight` x TF-IDF head + (1 - weight) x SBERT head, on probabilities."""

    words: FusedLinearModel
    embeddings: FusedLinearModel
    weight: float  # on the TF-IDF head, chosen on a validation slice of the training window

    @property
    def n_tags(self) -> int:
        return self.words.n_tags

    def scores(self, features: EnsembleFeatures) -> np.ndarray:
        return combine(
            self.words.predict_proba(features.words), self.embeddings.predict_proba(features.embeddings), self.weight
        )


def combine(words: np.ndarray, embeddings: np.ndarray, weight: float) -> np.ndarray:
    """The ensemble's probability: the weighted mean of the two heads' probabilities."""
    return weight * words + (1.0 - weight) * embeddings
