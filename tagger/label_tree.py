"""Label trees (Parabel / PLT) with linear node classifiers, scored exactly by stacked sparse products.

One-vs-rest fits one linear model per tag over every question, so its training time grows linearly with the
vocabulary. A label tree groups the tags and fits one linear classifier per tree node, each on the questions that
reach the node's parent only; a tag's score is the product of the node scores on its path (root to the tag's
leaf). Node scores: exp(-max(0, 1 - z)^2) for squared-hinge nodes (Parabel's), sigmoid(z) for logistic ones (then
the product is P(tag | question)). A forest of `n_trees` such trees, built from different seeds, averages them.

Written here rather than called from a library (napkinxc, omikuji) because it makes scoring an order of magnitude
faster: those libraries answer with a best-first or beam search, one Python call per question, 6-10 ms each. The
node classifiers are linear, so the whole forest scores exactly with stacked sparse products and no search:

* every node's logit at once: `Z = X @ W + b`, `W` the sparse (n_features, n_nodes) stacked node weights of all
  the trees;
* every node's log-score (elementwise), then the sums along every path, level by level (each node adds its
  parent's sum); a tag's log-score in a tree is its leaf's sum; scores = exp, averaged over the trees.

That is the dense (n, n_tags) score matrix every model kind returns, for one question or a batch (batches go in
chunks of `CHUNK` rows to bound memory).

Training (Parabel-style): each tag is represented by the l2-normalised sum of its questions' feature rows; the
tags are split by balanced spherical 2-means, recursively, until a group has at most `max_leaves` tags, whose
leaves (one per tag) hang under it. Each node is a binary linear classifier (liblinear: a primal squared-hinge SVM
with tolerance 0.1, as omikuji, or a dual logistic regression) fitted on the questions that reach its parent (the
root's: every question), positive when the question has a tag under the node, over the features those questions
use. Deterministic: the 2-means starts from seeded draws and every liblinear problem gets the same `seed`; the
`threads` workers are processes (liblinear's generator is process-global), so the fit is the same bit for bit
whatever their number or timing. Weights with |w| < `prune` are dropped in the workers, which keeps what they
send back and the artifact small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import joblib
import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC

try:  # scipy's sparse kernels, called directly by RowScorer (scipy's own product calls them so)
    from scipy.sparse import _sparsetools
except ImportError:  # pragma: no cover - a scipy without them: RowScorer takes scipy's public product
    _sparsetools = None

LOSSES = ("log", "squared_hinge")
CHUNK = 2048  # rows scored at once: the (CHUNK, n_nodes) logits are the largest temporary
ROW_CHUNK = 128  # RowScorer's rows at once (measured fastest: 64-128 rows, 0.08 ms a question against 0.13)
DTYPE = np.float32


@dataclass(frozen=True)
class TreeSettings:
    """`max_leaves`: most tags under one group node; `C`: each node's inverse regularisation; `prune`: weights
    with a smaller magnitude are dropped; `kmeans_iterations` per split; `seed`; `threads` fitting nodes;
    `loss`: the node classifiers' ("squared_hinge": linear SVMs scored exp(-max(0, 1 - z)^2), Parabel's;
    "log": logistic regressions scored sigmoid(z)); `n_trees`: trees fitted (seeds `seed`, `seed` + 1, …) whose
    scores are averaged.

    The defaults are Parabel's (omikuji's): groups of up to 100 tags, squared hinge, C 1, prune 0.1; the plt
    kind sets its own number of trees, C and pruning (tagger.kinds.plt, measured in docs/benchmarks.md). Trees saved
    before `loss` and `n_trees` existed used logistic nodes and one tree: their pickles read back so
    (`__setstate__`)."""

    max_leaves: int = 100
    C: float = 1.0
    prune: float = 0.1
    kmeans_iterations: int = 10
    seed: int = 7
    threads: int = 2
    loss: str = "squared_hinge"
    n_trees: int = 1

    def __post_init__(self) -> None:
        if self.max_leaves < 2:
            raise ValueError(f"max_leaves: {self.max_leaves}; a group node needs at least 2 tags")
        if self.loss not in LOSSES:
            raise ValueError(f"loss: {self.loss!r}; one of {', '.join(LOSSES)}")
        if self.n_trees < 1:
            raise ValueError(f"n_trees: {self.n_trees}; at least 1")
        if self.C <= 0 or self.prune < 0:
            raise ValueError(f"C must be > 0 and prune >= 0 (got C={self.C}, prune={self.prune})")

    def __setstate__(self, state: dict[str, object]) -> None:
        for key, value in {**LEGACY_SETTINGS, **state}.items():
            object.__setattr__(self, key, value)


# What a TreeSettings pickled before `loss` and `n_trees` existed was fitted with (logistic nodes, one tree).
LEGACY_SETTINGS = {"loss": "log", "n_trees": 1}


def balanced_split(vectors: sp.csr_matrix, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """Balanced spherical 2-means of l2-normalised rows: a boolean mask, True for the first half (sizes differ
    by at most one). Each round ranks the rows by (similarity to centroid 0 - to centroid 1) and cuts in the
    middle, so both halves are always the same size (Parabel's clustering)."""
    n = vectors.shape[0]
    first = np.zeros(n, dtype=bool)
    a, b = rng.choice(n, size=2, replace=False)
    centroids = sp.vstack([vectors[a], vectors[b]]).toarray()
    for _ in range(iterations):
        sims = np.asarray(vectors @ centroids.T)
        order = np.argsort(sims[:, 1] - sims[:, 0], kind="stable")
        new = np.zeros(n, dtype=bool)
        new[order[: (n + 1) // 2]] = True
        if np.array_equal(new, first):
            break
        first = new
        centroids = np.vstack(
            [np.asarray(vectors[first].sum(axis=0)).ravel(), np.asarray(vectors[~first].sum(axis=0)).ravel()]
        )
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    return first


def _node_model(x: sp.csr_matrix, y: np.ndarray, settings: TreeSettings) -> tuple[np.ndarray, float]:
    """One node's (weights (n_features,), bias); a node whose questions are all positive (or all negative)
    is a constant: zero weights and a bias (logistic: the smoothed log-odds; squared hinge: +1 or -1, node
    scores 1 or e^-4)."""
    positives = int(y.sum())
    if positives in (0, len(y)):
        if settings.loss == "squared_hinge":  # score 0 when all are positive, -4 (e^-4) when none is
            return np.zeros(x.shape[1]), 1.0 if positives else -1.0
        return np.zeros(x.shape[1]), float(np.log((positives + 0.5) / (len(y) - positives + 0.5)))
    if settings.loss == "squared_hinge":
        model = LinearSVC(C=settings.C, loss="squared_hinge", dual=False, tol=0.1, random_state=settings.seed)
    else:
        model = LogisticRegression(
            C=settings.C, solver="liblinear", dual=True, max_iter=1000, random_state=settings.seed
        )
    model.fit(x, y)
    return model.coef_.ravel(), float(model.intercept_[0])


def _fit_nodes(
    x: sp.csr_matrix, covered: sp.csc_matrix, jobs: list[tuple[int, list[int]]], settings: TreeSettings
) -> list[tuple[int, np.ndarray, float]]:
    """Each job (parent, its children): the children's models, fitted on the questions the parent covers."""
    out = []
    for parent, nodes in jobs:
        rows = covered[:, parent].indices if parent >= 0 else np.arange(x.shape[0])
        sub, targets = x[rows], covered[:, nodes].tocsr()[rows].toarray()
        # Only the features these questions use: the solver's dense vectors shrink from every feature to those
        # (a leaf group's questions use a few thousand of the 100,000); the weights go back to full width.
        used = np.unique(sub.indices)
        sub = sub[:, used]
        for j, node in enumerate(nodes):
            w, b = _node_model(sub, targets[:, j], settings)
            kept = np.flatnonzero((np.abs(w) >= settings.prune) & (w != 0))
            out.append((node, used[kept], w[kept].astype(DTYPE), b))  # pruned here: workers send back little
    return out


def _log_squared_hinge(z: np.ndarray) -> np.ndarray:
    """Parabel's node score for squared-hinge classifiers, -max(0, 1 - z)^2, in place."""
    np.subtract(1.0, z, out=z)
    np.maximum(z, 0.0, out=z)
    np.square(z, out=z)
    np.negative(z, out=z)
    return z


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    """log(sigmoid(z)) = -log1p(exp(-z)), in place (float32). Where exp(-z) overflows (z < -88) the result is
    -inf, a probability of 0 where the true one is below 1e-38. About 3x faster than -logaddexp(0, -z)."""
    with np.errstate(over="ignore"):
        np.negative(z, out=z)
        np.exp(z, out=z)
        np.log1p(z, out=z)
        np.negative(z, out=z)
    return z


class LabelTree:
    """A fitted PLT, or several (`settings.n_trees`) whose scores are averaged, all nodes stacked in one
    numbering: `weights` (n_features, n_nodes) CSR, `bias` (n_nodes,), `paths` (n_nodes, n_tags) CSR 0/1 (the
    tags under each node), `parent` (n_nodes,) with -1 for each tree's root (the first tree's is node 0), `leaf`
    (n_trees, n_tags) each tag's leaf node in each tree (a tree pickled before forests: (n_tags,)). Picklable."""

    def __init__(self, settings: TreeSettings | None = None) -> None:
        self.settings = settings or TreeSettings()
        self.weights: sp.csr_matrix | None = None
        self.bias = np.zeros(0, dtype=DTYPE)
        self.paths: sp.csr_matrix | None = None
        self.parent = np.zeros(0, dtype=np.int64)
        self.leaf = np.zeros(0, dtype=np.int64)

    @property
    def n_tags(self) -> int:
        return self.leaf.shape[-1]

    @property
    def leaves(self) -> np.ndarray:
        """(n_trees, n_tags) each tag's leaf node in each tree."""
        return np.atleast_2d(self.leaf)

    @property
    def n_nodes(self) -> int:
        return len(self.parent)

    @property
    def n_features(self) -> int:
        return 0 if self.weights is None else self.weights.shape[0]

    # -- training ------------------------------------------------------------------------------------------
    def fit(self, features: sp.spmatrix, tags: sp.spmatrix | np.ndarray) -> LabelTree:
        """Fit on (n, n_features) `features` and (n, n_tags) 0/1 `tags`. Questions with no tag are kept (negatives
        of the root); a tag with no question gets a leaf that scores low. ValueError when the row counts differ or
        there are fewer than 2 tags or no tagged question."""
        x = sp.csr_matrix(features, dtype=np.float64)
        y = sp.csr_matrix(tags, dtype=np.float64)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"tags: {y.shape[0]} rows for {x.shape[0]} feature rows")
        if y.shape[1] < 2 or y.nnz == 0:
            raise ValueError(f"tags: {y.shape[1]} tags, {y.nnz} tag uses; a tree needs 2 tags and a question")
        self._build_tree(normalize(sp.csr_matrix(y.T @ x)), y.shape[1])
        # Which questions each node covers: a question is positive at a node when one of its tags is under it.
        covered = sp.csc_matrix((y @ self.paths.T) > 0)
        children: dict[int, list[int]] = {}
        for node, parent in enumerate(self.parent.tolist()):
            if parent >= 0:
                children.setdefault(parent, []).append(node)
        # One job per parent: its children's problems share the parent's rows (the root's job: the root itself).
        roots = np.flatnonzero(self.parent < 0).tolist()
        jobs = [*((-1, [root]) for root in roots), *((parent, children[parent]) for parent in sorted(children))]
        workers = min(self.settings.threads, len(jobs))
        batches = [jobs[i::workers] for i in range(workers)]  # the root job and the large ones spread out
        if workers == 1:
            done = [_fit_nodes(x, covered, batches[0], self.settings)]
        else:
            # Processes, not threads: liblinear's random generator is process-global, so threads sharing it
            # would make the fit depend on their timing. Arrays go to the workers as memory maps (joblib).
            done = joblib.Parallel(n_jobs=workers, backend="loky")(
                joblib.delayed(_fit_nodes)(x, covered, batch, self.settings) for batch in batches
            )
        results = [r for batch in done for r in batch]
        results.sort(key=lambda r: r[0])
        self.bias = np.array([b for *_, b in results], dtype=DTYPE)
        indptr = np.cumsum([0] + [len(features) for _, features, _, _ in results])
        indices = np.concatenate([features for _, features, _, _ in results]).astype(np.int64)
        values = np.concatenate([w for _, _, w, _ in results]).astype(DTYPE)
        by_node = sp.csc_matrix((values, indices, indptr), shape=(x.shape[1], len(results)))
        self.weights = sp.csr_matrix(by_node, dtype=DTYPE)
        return self

    def _build_tree(self, label_vectors: sp.csr_matrix, n_tags: int) -> None:
        """Each tree's nodes in breadth-first order (its root, group nodes, each tag's leaf under its group), the
        trees one after the other; tree t splits with the generator seeded `seed + t`. A parent is always numbered
        before its children."""
        parent: list[int] = []
        under: list[np.ndarray] = []  # the tags under each node
        leaf = np.full((self.settings.n_trees, n_tags), -1, dtype=np.int64)
        for tree in range(self.settings.n_trees):
            rng = np.random.default_rng(self.settings.seed + tree)
            queue = [len(parent)]
            parent.append(-1)
            under.append(np.arange(n_tags))
            while queue:
                node = queue.pop(0)
                tags = under[node]
                if len(tags) <= self.settings.max_leaves:
                    for t in tags.tolist():
                        leaf[tree, t] = len(parent)
                        parent.append(node)
                        under.append(np.array([t]))
                    continue
                first = balanced_split(label_vectors[tags], self.settings.kmeans_iterations, rng)
                for half in (tags[first], tags[~first]):
                    queue.append(len(parent))
                    parent.append(node)
                    under.append(half)
        self.parent, self.leaf = np.asarray(parent, dtype=np.int64), leaf
        self._levels_cache = None
        rows = [node for node, tags in enumerate(under) for _ in range(len(tags))]
        cols = np.concatenate(under)
        self.paths = sp.csr_matrix(
            (np.ones(len(cols), dtype=DTYPE), (rows, cols)), shape=(len(parent), n_tags), dtype=DTYPE
        )

    # -- scoring -------------------------------------------------------------------------------------------
    def node_logits(self, features: sp.spmatrix) -> np.ndarray:
        """(n, n_nodes) logits of every node's classifier."""
        if self.weights is None:
            raise ValueError("LabelTree: not fitted")
        x = sp.csr_matrix(features, dtype=DTYPE)
        if x.shape[1] != self.n_features:
            raise ValueError(f"features: {x.shape[1]} columns, the tree was fitted on {self.n_features}")
        z = (x @ self.weights).toarray()
        z += self.bias
        return z

    def scores(self, features: sp.spmatrix) -> np.ndarray:
        """(n, n_tags) scores in [0, 1]: each tree's exp(sum of the node log-scores on the tag's path), exact over
        the whole tree (with logistic nodes, P(tag | question)), averaged over the trees.

        The sum over each path is taken level by level (nodes are numbered breadth first, so a node's parent is
        already summed when the node is reached): the same numbers as the sparse product with `paths`, with one
        contiguous gather per level instead of a sparse-times-dense product (faster, measured in docs/benchmarks.md)."""
        if self.paths is None:
            raise ValueError("LabelTree: not fitted")
        x = sp.csr_matrix(features, dtype=DTYPE)
        out = np.empty((x.shape[0], self.n_tags), dtype=np.float64)
        leaves = self.leaves
        for lo in range(0, x.shape[0], CHUNK):
            chunk = x if x.shape[0] <= CHUNK else x[lo : lo + CHUNK]
            path_sums = self._path_sums(self._log_node(self.node_logits(chunk).T.copy()))
            mean = np.exp(path_sums[leaves[0]])
            for tree_leaves in leaves[1:]:
                mean += np.exp(path_sums[tree_leaves])
            if len(leaves) > 1:
                mean /= len(leaves)
            out[lo : lo + CHUNK] = mean.T
        return out

    def _log_node(self, z: np.ndarray) -> np.ndarray:
        """Node logits -> node log-scores, in place."""
        return _log_squared_hinge(z) if self.settings.loss == "squared_hinge" else _log_sigmoid(z)

    def _path_sums(self, log_node: np.ndarray) -> np.ndarray:
        """(n_nodes, n) log-scores of the nodes -> (n_nodes, n) sums along each node's path from its root, in
        place by level (a tag's path sum in a tree: the row of its leaf there)."""
        for level in self._levels():
            log_node[level] += log_node[self.parent[level]]
        return log_node

    def _levels(self) -> list[np.ndarray]:
        """The non-root nodes by depth (cached; derived from `parent`)."""
        levels = getattr(self, "_levels_cache", None)
        if levels is None:
            depth = np.zeros(self.n_nodes, dtype=np.int64)
            for node, parent in enumerate(self.parent.tolist()):  # a parent is numbered first: its depth is known
                depth[node] = 0 if parent < 0 else depth[parent] + 1
            levels = [np.flatnonzero(depth == d) for d in range(1, int(depth.max()) + 1)]
            self._levels_cache = levels
        return levels

    def path(self, tag: int, tree: int = 0) -> list[int]:
        """The nodes from `tree`'s root to `tag`'s leaf in it."""
        nodes, node = [], int(self.leaves[tree, tag])
        while node >= 0:
            nodes.append(node)
            node = int(self.parent[node])
        return nodes[::-1]

    def brute_force_scores(self, features: sp.spmatrix) -> np.ndarray:
        """The same scores one tag and one tree at a time (the product of the node scores along each path,
        averaged over the trees): the reference the stacked product is tested against. Slow; for tests."""
        z = self.node_logits(features).astype(np.float64)
        if self.settings.loss == "squared_hinge":
            node = np.exp(-(np.maximum(0.0, 1.0 - z) ** 2))
        else:
            node = 1.0 / (1.0 + np.exp(-z))
        trees = range(len(self.leaves))
        return np.column_stack(
            [
                np.mean([np.prod(node[:, self.path(t, tree)], axis=1) for tree in trees], axis=0)
                for t in range(self.n_tags)
            ]
        )


class RowScorer:
    """`LabelTree.scores` of a few questions from their CSR arrays (tagger.compiled's `weigh`), the same numbers bit
    for bit; derived from a fitted tree when a model loads, never saved.

    Written by hand because one question's scoring was mostly overhead: scipy's product checks and builds two
    sparse matrices around the 13,000 multiply-adds it makes (its own kernels, `csr_matmat` and `csr_todense`, are
    called here directly, so every logit is summed in the same order: the same float32 bits), the path sums ran on
    a transposed copy, and the tags' leaves were summed in place and gathered again. Here the group nodes' path
    sums are taken level by level on (nodes, n) rows, and each tree's leaves are summed straight into the (n_tags,
    n) rows the exponential reads: the float32 operations `LabelTree.scores` makes, on the same operands in the same
    order. 0.07 ms for one question where `LabelTree.scores` took 0.2 ms."""

    def __init__(self, tree: LabelTree) -> None:
        if tree.weights is None:
            raise ValueError("LabelTree: not fitted")
        self.tree = tree
        weights = sp.csr_matrix(tree.weights, dtype=DTYPE)
        self.n_features, self.n_nodes = weights.shape
        self.index = np.int32 if max(weights.nnz, self.n_features, self.n_nodes) < 2**31 - 1 else np.int64
        self.indptr = weights.indptr.astype(self.index, copy=False)
        self.indices = weights.indices.astype(self.index, copy=False)
        self.data = weights.data
        self.bias = tree.bias
        self.log_node = tree._log_node
        # A tag's leaf has no children: only the other nodes' path sums are kept, and a leaf's is its parent's
        # plus its own log-score, taken when its tree's exponential needs it (LabelTree._path_sums adds the same).
        self.leaves = tree.leaves
        is_leaf = np.zeros(self.n_nodes, dtype=bool)
        is_leaf[self.leaves.ravel()] = True
        has_children = np.zeros(self.n_nodes, dtype=bool)
        has_children[tree.parent[tree.parent >= 0]] = True
        if (is_leaf & has_children).any():
            raise ValueError("LabelTree: a tag's leaf has children")
        self.steps = [(level[~is_leaf[level]], tree.parent[level[~is_leaf[level]]]) for level in tree._levels()]
        self.steps = [(level, parents) for level, parents in self.steps if len(level)]
        self.leaf_parents = tree.parent[self.leaves]
        # scipy's kernels are private: they serve only where they answer a probe as its public product does.
        self.direct = _sparsetools is not None
        probe = (np.ones(2, DTYPE), np.flatnonzero(np.diff(self.indptr))[:2].astype(self.index), np.array([0, 1, 2]))
        try:
            self.direct = self.direct and np.array_equal(self.logits(*probe), tree.node_logits(self._csr(*probe)))
        except (TypeError, ValueError):
            self.direct = False

    def _csr(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, self.n_features))

    def logits(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray) -> np.ndarray:
        """(n, n_nodes) float32 logits, `LabelTree.node_logits` of the CSR rows (data, indices, indptr)."""
        n = len(indptr) - 1
        if not self.direct or n * self.n_nodes >= 2**31 - 1:  # scipy's public product then
            z = (self._csr(data, indices, indptr) @ self.tree.weights).toarray()
        else:
            z = np.zeros((n, self.n_nodes), dtype=DTYPE)
            if len(data):
                data = data.astype(DTYPE, copy=False)
                indices, indptr = indices.astype(self.index, copy=False), indptr.astype(self.index, copy=False)
                # A row of the product has at most n_nodes entries: room for all of them, not scipy's count pass.
                out_ptr = np.empty(n + 1, dtype=self.index)
                out_idx = np.empty(n * self.n_nodes, dtype=self.index)
                out_data = np.empty(n * self.n_nodes, dtype=DTYPE)
                product = (self.indptr, self.indices, self.data, out_ptr, out_idx, out_data)
                _sparsetools.csr_matmat(n, self.n_nodes, indptr, indices, data, *product)
                _sparsetools.csr_todense(n, self.n_nodes, out_ptr, out_idx, out_data, z)
        z += self.bias
        return z

    def scores(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray) -> np.ndarray:
        """(n, n_tags) float64 scores of the CSR rows, `LabelTree.scores`' numbers; ROW_CHUNK rows at a time."""
        n = len(indptr) - 1
        if n <= ROW_CHUNK:
            return self._chunk_scores(data, indices, indptr)
        out = np.empty((n, self.leaves.shape[1]), dtype=np.float64)
        for lo in range(0, n, ROW_CHUNK):
            hi = min(lo + ROW_CHUNK, n)
            start, end = indptr[lo], indptr[hi]
            out[lo:hi] = self._chunk_scores(data[start:end], indices[start:end], indptr[lo : hi + 1] - start)
        return out

    def _chunk_scores(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray) -> np.ndarray:
        logits = self.logits(data, indices, indptr)
        log_node = self.log_node(logits.reshape(-1) if len(logits) == 1 else logits.T.copy())  # one: a vector
        for level, parents in self.steps:
            log_node[level] += log_node[parents]
        mean = None
        for leaves, parents in zip(self.leaves, self.leaf_parents, strict=True):
            paths = log_node[leaves]
            paths += log_node[parents]
            if mean is None:
                mean = np.exp(paths, out=paths)
            else:
                mean += np.exp(paths, out=paths)
        if len(self.leaves) > 1:
            mean /= len(self.leaves)
        return mean.T.astype(np.float64) if mean.ndim == 2 else mean.astype(np.float64)[None, :]


def tag_indicator(tag_ids: Sequence[Sequence[int]], n_tags: int) -> sp.csr_matrix:
    """(n, n_tags) 0/1 CSR from each question's tag ids."""
    indptr = np.cumsum([0] + [len(r) for r in tag_ids])
    indices = np.fromiter((i for r in tag_ids for i in r), dtype=np.int64, count=int(indptr[-1]))
    return sp.csr_matrix((np.ones(len(indices), dtype=DTYPE), indices, indptr), shape=(len(tag_ids), n_tags))
