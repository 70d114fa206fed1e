"""Text vectorizers: bag of words, TF-IDF and SBERT, all fed with `tagger.text.clean_question` output."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from tagger import sbert

# "ensemble": a TF-IDF head and an SBERT head, their probabilities averaged (tagger.ensemble; training.fit).
VECTORIZER_KINDS = ("bow", "tfidf", "sbert", "ensemble")

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


def build_vectorizer(
    kind: str, *, max_features: int | None, ngram_max: int, min_df: int, sbert_cache: str | None
) -> BaseEstimator:
    """A fresh, unfitted vectorizer of the given kind."""
    words = dict(
        token_pattern=TOKEN_PATTERN,
        ngram_range=(1, ngram_max),
        min_df=min_df,
        max_df=0.5,
        max_features=max_features,
        dtype=np.float32,
    )
    if kind == "tfidf":
        return TfidfVectorizer(**words, sublinear_tf=True)
    if kind == "bow":
        return CountVectorizer(**words, binary=True)
    if kind == "sbert":
        return SbertVectorizer(cache_path=sbert_cache)
    raise ValueError(f"vectorizer: unknown kind '{kind}' (choose from {', '.join(VECTORIZER_KINDS)})")


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
