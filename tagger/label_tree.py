"""A probabilistic label tree (PLT, through `napkinxc`) for vocabularies of thousands of tags.

One-vs-rest fits one linear model per tag over every question, so its training time grows linearly with the
vocabulary. A label tree clusters the tags (balanced hierarchical 2-means over the mean feature vector of each
tag's questions) and fits one logistic regression per tree node, each on the questions that reach that node's
parent; a tag's score is the product of the node probabilities on its path, P(tag | question), and the best k tags
come from an exact best-first search that visits a few dozen of the thousands of nodes.

`LabelTree` is the estimator: `fit(features, tag_ids, n_tags)` on a CSR matrix and each question's tag ids
(columns of the vocabulary), then `top_k(features, k)` (ids and scores, best first) or `scores(features)` (dense,
n x n_tags; a tag outside a row's best `depth` scores 0). Dense scores for 2,000 tags cost a 16 KB row per question
and the search, not the matrix, is what takes time, so `scores` keeps the (n, n_tags) contract of the other kinds.
It pickles (joblib) by carrying napkinxc's saved model directory as bytes.

Determinism: napkinxc seeds its tree building with `seed`, but its node classifiers are liblinear's, which shuffle
with the C library's global `rand()`. `fit` re-seeds `rand()` with `seed` first, so a fit on one thread is
reproducible bit for bit, in any process. On several threads the node classifiers draw from that one generator in
whichever order the threads run: scores then agree to liblinear's tolerance, not bit for bit.
"""

from __future__ import annotations

import ctypes
import io
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class TreeSettings:
    """napkinxc PLT hyper-parameters sotag sets (napkinxc's names). Defaults: napkinxc's, 2-way k-means with at
    most `max_leaves` tags under a node, logistic loss, C = `liblinear_c`, weights below `weights_threshold` pruned,
    `ensemble` trees, exact best-first search (or a beam of `beam_search_width`), weights held as hash maps."""

    arity: int = 2
    max_leaves: int = 100
    liblinear_c: float = 10.0
    loss: str = "log"
    weights_threshold: float = 0.1
    ensemble: int = 1
    tree_search_type: str = "exact"
    beam_search_width: int = 10
    load_as: str = "map"
    seed: int = 7
    threads: int = 1

    def __post_init__(self) -> None:
        # A napkinxc ensemble looks for its members under the directory it was fitted in (seen: after the move
        # into memory, prediction fails with "Invalid filename: …/member_0/tree.bin"), so it cannot be pickled.
        if self.ensemble != 1:
            raise ValueError(f"ensemble: {self.ensemble} trees; only 1 is supported (napkinxc cannot move ensembles)")


def _reseed_c_rand(seed: int) -> None:
    """liblinear shuffles with libc's rand(): seed it so a single-threaded fit is reproducible."""
    ctypes.CDLL(None).srand(ctypes.c_uint(seed))


@dataclass
class LabelTree:
    """A PLT over sparse features; see the module docstring."""

    settings: TreeSettings = field(default_factory=TreeSettings)
    n_tags: int = 0
    n_features: int = 0
    _archive: bytes | None = field(default=None, repr=False)
    _model: object = field(default=None, repr=False)

    def fit(self, features: sp.spmatrix, tag_ids: Sequence[Sequence[int]], n_tags: int) -> LabelTree:
        """Fit on (n, n_features) CSR `features`; `tag_ids[i]`: question i's tags as column ids in [0, n_tags).

        Questions without a vocabulary tag are kept (they are negatives for the root). Raises ValueError for an
        id outside [0, n_tags), a row count that differs from `features`, or no tag at all.
        """
        features = sp.csr_matrix(features, dtype=np.float32)
        if features.shape[0] != len(tag_ids):
            raise ValueError(f"tag_ids: {len(tag_ids)} rows for {features.shape[0]} feature rows")
        flat = [t for row in tag_ids for t in row]
        if not flat:
            raise ValueError("tag_ids: no question carries a vocabulary tag")
        bad = next((t for t in flat if not 0 <= t < n_tags), None)
        if bad is not None:
            raise ValueError(f"tag_ids: id {bad} is outside [0, {n_tags})")
        if len(set(flat)) < n_tags:
            missing = sorted(set(range(n_tags)) - set(flat))[:3]
            raise ValueError(f"tag_ids: tag ids {missing} never occur; every vocabulary tag needs a question")
        with tempfile.TemporaryDirectory(prefix="sotag-plt-") as tmp:
            model = self._new_model(Path(tmp) / "model")
            _reseed_c_rand(self.settings.seed)
            model.fit(features, [list(map(int, row)) for row in tag_ids])
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                tar.add(Path(tmp) / "model", arcname="model")
        self._archive = buffer.getvalue()
        self._model, self.n_tags, self.n_features = self._load(self._archive), n_tags, features.shape[1]
        return self

    def _new_model(self, directory: Path) -> object:
        from napkinxc.models import PLT

        return PLT(str(directory), **asdict(self.settings))

    def _checked(self, features: sp.spmatrix) -> sp.csr_matrix:
        if self._model is None:
            raise ValueError("LabelTree: not fitted")
        features = sp.csr_matrix(features, dtype=np.float32)
        if features.shape[1] != self.n_features:
            raise ValueError(f"features: {features.shape[1]} columns, the tree was fitted on {self.n_features}")
        return features

    def top_k(self, features: sp.spmatrix, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each (n, k), best first; scores are P(tag | question) in [0, 1]. A row with fewer than
        k reachable tags pads with id -1, score 0."""
        features = self._checked(features)
        found = self._model.predict_proba(features, top_k=k)
        ids = np.full((features.shape[0], k), -1, dtype=np.int64)
        scores = np.zeros((features.shape[0], k), dtype=np.float64)
        for i, row in enumerate(found):
            row = sorted(row, key=lambda pair: -pair[1])[:k]  # a beam search returns every label it reached
            if row:
                labels, values = zip(*row, strict=True)
                ids[i, : len(row)] = labels
                scores[i, : len(row)] = values
        return ids, scores

    def scores(self, features: sp.spmatrix, depth: int = 50) -> np.ndarray:
        """(n, n_tags) dense scores: each row's `depth` best tags' probabilities, 0 elsewhere."""
        ids, values = self.top_k(features, min(depth, self.n_tags))
        out = np.zeros((ids.shape[0], self.n_tags), dtype=np.float64)
        rows, cols = np.nonzero(ids >= 0)
        out[rows, ids[rows, cols]] = values[rows, cols]
        return out

    # Pickling: napkinxc's model is a C++ object; carry the files its fit saved, as a tar archive made at fit time.
    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "_model"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._model = None
        if self._archive is not None:
            self._model = self._load(self._archive)

    def _load(self, archive: bytes) -> object:
        with tempfile.TemporaryDirectory(prefix="sotag-plt-") as tmp:
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
                tar.extractall(tmp, filter="data")
            model = self._new_model(Path(tmp) / "model")
            model.load()  # into memory: the directory can go
        return model
