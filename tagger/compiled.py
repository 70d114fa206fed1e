"""A fast `transform` for a fitted CountVectorizer / TfidfVectorizer.

sklearn builds a scipy matrix through several validation layers per call: about 1 ms for a
single question, forty times the cost of scoring it with the fused matrix. This reproduces the
same analysis (token regex, word n-grams, vocabulary lookup, binary or sublinear tf, idf, l2
norm) in one pass and returns the CSR matrix directly. A test asserts equality with sklearn.

Written by hand because it is what makes batch scoring fast: for unigrams and bigrams (every model
we train) the vocabulary lookup is vectorised. Tokens become ids in one hash-table call over the
whole batch, a bigram becomes a pair of token ids found with a binary search, and the counts come
from one sort; a dict lookup per n-gram in Python was 60% of a batch's time. A few questions (the
REST path) get their token ids from a dict instead (`map(dict.get)`, no Python loop per token) and
their bigrams by `np.searchsorted`: 0.06 ms for a question where the str-keyed n-gram loop took 0.1 ms.

The steps are public for the fused scorers (tagger.kinds.plt): `tokens` of a text, `counts` of
tokenised texts, `weigh` (tf, idf, norm) into the CSR arrays; `transform` chains them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain, pairwise, repeat

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

# Batches at least this long take the vectorised lookup (per question: 0.047 ms against 0.052 ms for `_dict_counts`
# at 16 questions; 0.12 ms against 0.06 ms for one).
VECTORISED_FROM = 16
# A CSR's arrays: (data float32, indices int32, indptr int32), what `CompiledVectorizer.weigh` returns.
CsrArrays = tuple[np.ndarray, np.ndarray, np.ndarray]

# sotag's token pattern (tagger.vectorizers.TOKEN_PATTERN) on lower-cased ASCII text is "runs of
# [a-z0-9_#+.-], stripped of leading and trailing . and -": bytes.translate + split find the runs in C,
# three times faster than the regex. Non-ASCII texts, and any other pattern, take the regex.
_TOKEN_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_#+.-")
_SPLIT_TABLE = bytes(c if c in _TOKEN_BYTES else 32 for c in range(256))


def ascii_tokens(text: str) -> list[bytes]:
    """TOKEN_PATTERN's tokens of a lower-cased ASCII `text`, as bytes (a test holds it equal to the regex)."""
    return [t for run in text.encode("ascii").translate(_SPLIT_TABLE).split() if (t := run.strip(b".-"))]


class CompiledVectorizer:
    """Derived at load time from a fitted word-level vectorizer; never saved."""

    def __init__(self, fitted: CountVectorizer) -> None:
        if fitted.analyzer != "word" or fitted.tokenizer is not None or fitted.preprocessor is not None:
            raise ValueError("only word analyzers with the default tokenizer and preprocessor can be compiled")
        if fitted.stop_words is not None or fitted.strip_accents is not None:
            raise ValueError("stop words and accent stripping are not supported by the compiled path")
        self.lowercase = fitted.lowercase
        self.pattern = re.compile(fitted.token_pattern)
        from sotag.tagger.vectorizers import TOKEN_PATTERN

        self.ascii_fast = self.lowercase and fitted.token_pattern == TOKEN_PATTERN
        self.min_n, self.max_n = fitted.ngram_range
        self.vocabulary: dict[str, int] = fitted.vocabulary_
        self.n_features = len(self.vocabulary)
        self.binary = fitted.binary
        self.idf: np.ndarray | None = None
        self.sublinear = False
        self.norm = None
        if isinstance(fitted, TfidfVectorizer):
            self.idf = np.asarray(fitted.idf_, dtype=np.float64) if fitted.use_idf else None
            self.sublinear = fitted.sublinear_tf
            self.norm = fitted.norm
            if self.norm not in (None, "l2"):
                raise ValueError(f"norm '{self.norm}' is not supported by the compiled path")
        if self.max_n <= 2:
            self._index_grams()

    def _index_grams(self) -> None:
        """Token ids for every token of the vocabulary (keyed by its UTF-8 bytes); unigram and bigram features
        keyed by them."""
        tokens: dict[str, int] = {}
        for gram in self.vocabulary:
            for token in gram.split(" "):
                tokens.setdefault(token, len(tokens))
        self.token_index = pd.Index([t.encode("utf-8") for t in tokens], dtype=object)
        n_tokens = len(tokens)
        self.unigram_feature = np.full(n_tokens + 1, -1, dtype=np.int64)  # the last slot: unknown tokens
        bigram_keys, bigram_features = [], []
        for gram, j in self.vocabulary.items():
            parts = gram.split(" ")
            if len(parts) == 1:
                self.unigram_feature[tokens[parts[0]]] = j
            else:
                bigram_keys.append(tokens[parts[0]] * n_tokens + tokens[parts[1]])
                bigram_features.append(j)
        self.bigram_index = pd.Index(np.asarray(bigram_keys, dtype=np.int64))
        self.bigram_features = np.asarray(bigram_features, dtype=np.int64)
        self.n_tokens = n_tokens
        # The same lookups for a few texts (`_dict_counts`): token ids in a dict, the bigram keys sorted.
        self.token_ids: dict[bytes, int] = {token: i for i, token in enumerate(self.token_index)}
        order = np.argsort(self.bigram_index.to_numpy(), kind="stable")
        self.bigram_sorted_keys = np.ascontiguousarray(self.bigram_index.to_numpy()[order])
        self.bigram_sorted_features = self.bigram_features[order]

    def _counts(self, text: str) -> dict[int, int]:
        if self.lowercase:
            text = text.lower()
        tokens = self.pattern.findall(text)
        vocab = self.vocabulary
        counts: dict[int, int] = {}
        n_tokens = len(tokens)
        for n in range(self.min_n, min(self.max_n, n_tokens) + 1):
            if n == 1:
                grams = tokens
            elif n == 2:
                grams = [a + " " + b for a, b in pairwise(tokens)]  # the common case, twice as fast
            else:
                grams = [" ".join(tokens[i : i + n]) for i in range(n_tokens - n + 1)]
            for gram in grams:
                j = vocab.get(gram)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
        return counts

    def tokens(self, text: str) -> list[bytes]:
        """The vectorizer's tokens of `text` (lower-cased first when it lower-cases), as UTF-8 bytes."""
        if self.lowercase:
            text = text.lower()
        if self.ascii_fast and text.isascii():
            return ascii_tokens(text)
        return [t.encode("utf-8") for t in self.pattern.findall(text)]

    def counts(self, per_text: Sequence[list[bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, feature indices ascending per text, counts) of tokenised texts (`tokens`); unigram and bigram
        vocabularies only (`max_n` <= 2): vectorised from VECTORISED_FROM texts, per text below."""
        if len(per_text) >= VECTORISED_FROM:
            return self._vectorised_counts(per_text)
        return self._dict_counts(per_text)

    def _dict_counts(self, per_text: Sequence[list[bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`counts` of a few texts: token ids from a dict (`map(dict.get)` over the batch's tokens), bigram keys
        found by binary search in the sorted keys, counts from one sort; the same arrays as
        `_vectorised_counts`, without the fixed cost of its hash-table calls (0.06 ms against 0.12 ms for one
        question, the same from 8 questions; tests hold both equal to `_loop_counts`)."""
        n_tokens, n_features = self.n_tokens, max(self.n_features, 1)
        lengths = np.fromiter(map(len, per_text), dtype=np.int64, count=len(per_text))
        total = int(lengths.sum())
        ids = np.fromiter(
            map(self.token_ids.get, chain.from_iterable(per_text), repeat(n_tokens)), dtype=np.int64, count=total
        )
        rows = np.repeat(np.arange(len(per_text), dtype=np.int64), lengths)
        feature_parts, row_parts = [], []
        if self.min_n <= 1:
            unigrams = self.unigram_feature[ids]
            known = unigrams >= 0
            feature_parts.append(unigrams[known])
            row_parts.append(rows[known])
        if self.max_n >= 2 and total > 1 and len(self.bigram_sorted_keys):
            left, right = ids[:-1], ids[1:]
            valid = (rows[:-1] == rows[1:]) & (left < n_tokens) & (right < n_tokens)
            keys = left[valid] * n_tokens + right[valid]
            pos = np.searchsorted(self.bigram_sorted_keys, keys)
            pos[pos == len(self.bigram_sorted_keys)] = 0
            found = self.bigram_sorted_keys[pos] == keys
            feature_parts.append(self.bigram_sorted_features[pos[found]])
            row_parts.append(rows[:-1][valid][found])
        features = np.concatenate(feature_parts) if feature_parts else np.empty(0, dtype=np.int64)
        grams_rows = np.concatenate(row_parts) if row_parts else np.empty(0, dtype=np.int64)
        cells = np.sort(grams_rows * n_features + features)  # np.unique(return_counts=True), without its overhead
        starts = np.flatnonzero(np.concatenate(([True], cells[1:] != cells[:-1]))) if len(cells) else cells
        counts = np.diff(np.append(starts, len(cells)))
        cells = cells[starts]
        indptr = np.searchsorted(cells // n_features, np.arange(len(per_text) + 1), side="left")
        return indptr, cells % n_features, counts

    def _batch_counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, feature indices, counts) for unigrams and bigrams, vectorised over the batch."""
        return self._vectorised_counts([self.tokens(t) for t in texts])

    def _vectorised_counts(self, per_text: Sequence[list[bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`_batch_counts` of tokenised texts."""
        lengths = np.fromiter((len(t) for t in per_text), dtype=np.int64, count=len(per_text))
        flat = np.fromiter(chain.from_iterable(per_text), dtype=object, count=int(lengths.sum()))
        ids = self.token_index.get_indexer(flat)
        ids[ids < 0] = self.n_tokens
        rows = np.repeat(np.arange(len(per_text), dtype=np.int64), lengths)
        feature_parts, row_parts = [], []
        if self.min_n <= 1:
            feature_parts.append(self.unigram_feature[ids])
            row_parts.append(rows)
        if self.max_n >= 2 and len(ids) > 1 and len(self.bigram_features):
            left, right = ids[:-1], ids[1:]
            # Pairs inside one text, both tokens known: their key, searched among the bigram keys.
            valid = (rows[:-1] == rows[1:]) & (left < self.n_tokens) & (right < self.n_tokens)
            keys = left[valid] * self.n_tokens + right[valid]
            pos = self.bigram_index.get_indexer(keys)
            feature_parts.append(np.where(pos >= 0, self.bigram_features[pos], -1))
            row_parts.append(rows[:-1][valid])
        features = np.concatenate(feature_parts) if feature_parts else np.empty(0, dtype=np.int64)
        grams_rows = np.concatenate(row_parts) if row_parts else np.empty(0, dtype=np.int64)
        known = features >= 0
        cells, counts = np.unique(grams_rows[known] * self.n_features + features[known], return_counts=True)
        cell_rows = cells // max(self.n_features, 1)
        indptr = np.searchsorted(cell_rows, np.arange(len(per_text) + 1), side="left")
        return indptr, cells % max(self.n_features, 1), counts

    def _loop_counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The same for any n-gram range, one text at a time."""
        indptr = [0]
        indices: list[int] = []
        counts_out: list[int] = []
        for text in texts:
            counts = self._counts(text)
            keys = sorted(counts)
            indices.extend(keys)
            counts_out.extend(counts[k] for k in keys)
            indptr.append(len(indices))
        return np.asarray(indptr), np.asarray(indices, dtype=np.int64), np.asarray(counts_out)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self.to_csr(self.arrays(texts))

    def arrays(self, texts: Sequence[str]) -> CsrArrays:
        """`transform`'s CSR arrays (data, indices, indptr), without the scipy matrix."""
        if self.max_n <= 2:
            # A few questions (the REST path): the vectorised lookup's fixed cost is larger than the dict lookups.
            ptr, idx, counts = self.counts([self.tokens(t) for t in texts])
        else:
            ptr, idx, counts = self._loop_counts(texts)
        return self.weigh(ptr, idx, counts)

    def to_csr(self, arrays: CsrArrays) -> sp.csr_matrix:
        """The (n, n_features) CSR matrix of `arrays` (`weigh`'s)."""
        return sp.csr_matrix(arrays, shape=(len(arrays[2]) - 1, self.n_features))

    def weigh(self, ptr: np.ndarray, idx: np.ndarray, counts: np.ndarray) -> CsrArrays:
        """(data float32, indices int32, indptr int32) of the CSR rows from `counts`' arrays: binary or sublinear tf,
        idf, l2 norm, as the fitted vectorizer weighs them."""
        n = len(ptr) - 1
        idx = idx.astype(np.int32)
        ptr = ptr.astype(np.int32)
        data = counts.astype(np.float64)
        if self.binary:
            data[:] = 1.0
        if self.sublinear:
            np.log(data, out=data)
            data += 1.0
        if self.idf is not None:
            data *= self.idf[idx]
        if self.norm == "l2":
            lengths = np.diff(ptr)
            # bincount, not reduceat: reduceat fails when trailing rows have no known token.
            rows = np.repeat(np.arange(n), lengths)
            sq = np.bincount(rows, weights=data * data, minlength=n)
            sq[lengths == 0] = 1.0
            data /= np.repeat(np.sqrt(sq), lengths)
        return data.astype(np.float32), idx, ptr


def compile_vectorizer(vectorizer: object) -> object:
    """The compiled transform where possible, else the vectorizer itself."""
    if isinstance(vectorizer, CountVectorizer):
        try:
            return CompiledVectorizer(vectorizer)
        except ValueError:
            return vectorizer
    return vectorizer
