import io

import joblib
import numpy as np
import pytest
import scipy.sparse as sp

from sotag.tagger.label_tree import LabelTree, TreeSettings, balanced_split, tag_indicator

N_TAGS = 40
N_FEATURES = 120


def synthetic(n: int = 600, seed: int = 0) -> tuple[sp.csr_matrix, list[list[int]]]:
    """Each question has 1-2 tags; tag t switches on features 3t..3t+2, plus noise features. A few untagged rows."""
    rng = np.random.default_rng(seed)
    rows, cols, vals, tags = [], [], [], []
    for i in range(n):
        chosen = sorted(set(rng.integers(0, N_TAGS, size=rng.integers(1, 3)).tolist())) if i % 50 else []
        features = {int(f) for t in chosen for f in (3 * t, 3 * t + 1, 3 * t + 2)}
        features |= set(rng.integers(0, N_FEATURES, size=3).tolist())
        for f in sorted(features):
            rows.append(i)
            cols.append(f)
            vals.append(1.0 if f // 3 in chosen else 0.3)
        tags.append(chosen)
    x = sp.csr_matrix((vals, (rows, cols)), shape=(n, N_FEATURES), dtype=np.float32)
    return x, tags


# Deep trees of logistic nodes (the first plt recipe): every path has several nodes to multiply.
LOGISTIC = dict(max_leaves=4, prune=0.0, loss="log", C=10.0)


@pytest.fixture(scope="module")
def fitted() -> tuple[LabelTree, sp.csr_matrix, list[list[int]]]:
    x, tags = synthetic()
    return LabelTree(TreeSettings(**LOGISTIC)).fit(x, tag_indicator(tags, N_TAGS)), x, tags


@pytest.fixture(scope="module")
def forest() -> tuple[LabelTree, sp.csr_matrix, list[list[int]]]:
    """Three squared-hinge trees (the kind's node classifiers), small groups so the paths are deep."""
    x, tags = synthetic()
    settings = TreeSettings(max_leaves=4, prune=0.0, n_trees=3)
    return LabelTree(settings).fit(x, tag_indicator(tags, N_TAGS)), x, tags


def test_the_tree_has_one_leaf_per_tag_and_groups_of_at_most_max_leaves(fitted):
    tree, _, _ = fitted
    assert tree.n_tags == N_TAGS and len(set(tree.leaf.ravel().tolist())) == N_TAGS
    assert tree.parent[0] == -1 and np.all(tree.parent[1:] >= 0)
    groups = np.bincount(tree.parent[tree.leaves[0]], minlength=tree.n_nodes)
    assert groups.max() <= 4
    # 40 tags split in balanced halves down to groups of <= 4: 40 -> 20 -> 10 -> 5 -> 3/2 ... every path is deep
    assert all(len(tree.path(t)) >= 5 for t in range(N_TAGS))


def test_stacked_scores_equal_the_brute_force_path_product(fitted):
    tree, x, _ = fitted
    stacked = tree.scores(x[:50])
    brute = tree.brute_force_scores(x[:50])
    assert stacked.shape == (50, N_TAGS)
    np.testing.assert_allclose(stacked, brute, rtol=1e-5, atol=1e-7)
    # and by hand for one tag: the product of the sigmoids of the nodes on its path
    z = tree.node_logits(x[:1])[0].astype(np.float64)
    by_hand = np.prod([1 / (1 + np.exp(-z[n])) for n in tree.path(7)])
    assert stacked[0, 7] == pytest.approx(by_hand, rel=1e-5)


def test_scores_learn_the_tags_and_are_probabilities(fitted):
    tree, x, tags = fitted
    scores = tree.scores(x)
    assert np.all((scores >= 0) & (scores <= 1))
    tagged = [i for i, t in enumerate(tags) if t]
    first_right = np.mean([int(np.argmax(scores[i])) in tags[i] for i in tagged])
    assert first_right > 0.9  # each tag has its own features: the tree must find them
    # a child's probability never exceeds its parent's (probabilities multiply down the path)
    assert np.all(scores.sum(axis=1) < 3.0)


def test_one_row_and_chunked_batches_score_the_same(fitted, monkeypatch):
    tree, x, _ = fitted
    whole = tree.scores(x[:30])
    monkeypatch.setattr("sotag.tagger.label_tree.CHUNK", 7)
    np.testing.assert_array_equal(tree.scores(x[:30]), whole)
    np.testing.assert_allclose(tree.scores(x[3]), whole[3:4], rtol=1e-6)


def test_a_pickle_round_trip_scores_identically_and_a_refit_is_identical(fitted):
    tree, x, tags = fitted
    buffer = io.BytesIO()
    joblib.dump(tree, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).scores(x[:40]), tree.scores(x[:40]))
    again = LabelTree(TreeSettings(**LOGISTIC, threads=1)).fit(x, tag_indicator(tags, N_TAGS))
    np.testing.assert_array_equal(again.scores(x[:40]), tree.scores(x[:40]))  # seeded: threads do not matter


def test_pruning_drops_small_weights_and_keeps_the_ranking(fitted):
    tree, x, tags = fitted
    pruned = LabelTree(TreeSettings(**{**LOGISTIC, "prune": 0.05})).fit(x, tag_indicator(tags, N_TAGS))
    assert pruned.weights.nnz < tree.weights.nnz
    assert np.mean(pruned.scores(x).argmax(1) == tree.scores(x).argmax(1)) > 0.95


def test_balanced_split_halves_and_separates_two_groups():
    rng = np.random.default_rng(0)
    a = np.hstack([np.ones((5, 3)), np.zeros((5, 3))]) + rng.random((5, 6)) * 0.1
    b = np.hstack([np.zeros((6, 3)), np.ones((6, 3))]) + rng.random((6, 6)) * 0.1
    vectors = sp.csr_matrix(np.vstack([a, b]) / np.linalg.norm(np.vstack([a, b]), axis=1, keepdims=True))
    first = balanced_split(vectors, 10, np.random.default_rng(1))
    assert first.sum() == 6  # 11 rows: 6 and 5
    assert len(set(first[:5].tolist())) == 1  # the 5 rows of group a stay together


def test_bad_inputs_are_refused():
    x, tags = synthetic(100)
    with pytest.raises(ValueError, match="rows for"):
        LabelTree().fit(x[:50], tag_indicator(tags, N_TAGS))
    with pytest.raises(ValueError, match="a tree needs 2 tags and a question"):
        LabelTree().fit(x, tag_indicator([[] for _ in tags], N_TAGS))


def test_a_tag_without_questions_scores_low_and_the_others_still_rank():
    x, tags = synthetic(300)
    tree = LabelTree(TreeSettings(**LOGISTIC)).fit(x, tag_indicator(tags, N_TAGS + 2))  # tags 40, 41: no question
    scores = tree.scores(x)
    assert scores[:, N_TAGS:].max() < 0.1 and scores[:, N_TAGS:].mean() < 0.01
    tagged = [i for i, t in enumerate(tags) if t]
    assert np.mean([int(np.argmax(scores[i])) in tags[i] for i in tagged]) > 0.9
    with pytest.raises(ValueError, match="not fitted"):
        LabelTree().scores(x)
    with pytest.raises(ValueError, match="max_leaves"):
        TreeSettings(max_leaves=1)
    with pytest.raises(ValueError, match="loss: 'hinge'"):
        TreeSettings(loss="hinge")
    with pytest.raises(ValueError, match="n_trees: 0"):
        TreeSettings(n_trees=0)


def test_a_forest_has_one_leaf_per_tag_in_each_tree_and_its_trees_differ(forest):
    tree, _, _ = forest
    assert tree.leaves.shape == (3, N_TAGS) and tree.n_tags == N_TAGS
    roots = np.flatnonzero(tree.parent < 0)
    assert len(roots) == 3 and roots[0] == 0
    for t, root in enumerate(roots.tolist()):
        assert len(set(tree.leaves[t].tolist())) == N_TAGS
        assert all(tree.path(tag, t)[0] == root for tag in range(N_TAGS))
    assert np.all(tree.parent < np.arange(tree.n_nodes))  # a parent is numbered before its children
    # the trees split with different seeds: some tags share a leaf group in one tree and not in another
    groups = [
        {frozenset(np.flatnonzero(tree.parent[leaves] == g).tolist()) for g in set(tree.parent[leaves])}
        for leaves in tree.leaves
    ]
    assert groups[0] != groups[1] or groups[1] != groups[2]


def test_forest_scores_are_the_mean_of_each_trees_squared_hinge_path_product(forest):
    tree, x, tags = forest
    stacked = tree.scores(x[:50])
    np.testing.assert_allclose(stacked, tree.brute_force_scores(x[:50]), rtol=1e-5, atol=1e-7)
    # by hand for one tag: in each tree, the product of exp(-max(0, 1 - z)^2) over its path; then the mean
    z = tree.node_logits(x[:1])[0].astype(np.float64)
    per_tree = [np.prod([np.exp(-(max(0.0, 1.0 - z[n]) ** 2)) for n in tree.path(7, t)]) for t in range(3)]
    assert stacked[0, 7] == pytest.approx(np.mean(per_tree), rel=1e-5)
    scores = tree.scores(x)
    assert np.all((scores >= 0) & (scores <= 1))
    tagged = [i for i, t in enumerate(tags) if t]
    assert np.mean([int(np.argmax(scores[i])) in tags[i] for i in tagged]) > 0.9


def test_a_tree_pickled_before_forests_reads_back_as_one_logistic_tree(fitted):
    """Models saved before `loss` and `n_trees` existed: TreeSettings without those fields, `leaf` (n_tags,).
    They must score as they did (logistic nodes), not with the new defaults (squared hinge)."""
    tree, x, tags = fitted
    old = LabelTree(TreeSettings(**LOGISTIC)).fit(x, tag_indicator(tags, N_TAGS))
    old.leaf = old.leaf[0]
    for field in ("loss", "n_trees"):  # the instance attribute goes; the class default (squared hinge) shows
        object.__delattr__(old.settings, field)
    assert old.settings.loss == "squared_hinge"
    buffer = io.BytesIO()
    joblib.dump(old, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert loaded.settings.loss == "log" and loaded.settings.n_trees == 1 and loaded.leaves.shape == (1, N_TAGS)
    np.testing.assert_allclose(loaded.scores(x[:40]), tree.scores(x[:40]), rtol=1e-6)
