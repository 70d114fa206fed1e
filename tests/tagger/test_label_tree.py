import io

import joblib
import numpy as np
import pytest
import scipy.sparse as sp

from tagger.label_tree import LabelTree, TreeSettings

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


@pytest.fixture(scope="module")
def fitted() -> tuple[LabelTree, sp.csr_matrix, list[list[int]]]:
    x, tags = synthetic()
    return LabelTree(TreeSettings(max_leaves=8)).fit(x, tags, N_TAGS), x, tags


def test_top_k_is_best_first_and_learns_the_tags(fitted):
    tree, x, tags = fitted
    ids, scores = tree.top_k(x, 5)
    assert ids.shape == scores.shape == (x.shape[0], 5)
    assert np.all(np.diff(scores, axis=1) <= 1e-12)  # best first
    assert np.all((scores >= 0) & (scores <= 1))
    tagged = [i for i, t in enumerate(tags) if t]
    first_right = np.mean([ids[i, 0] in tags[i] for i in tagged])
    assert first_right > 0.9  # each tag has its own features: the tree must find them


def test_scores_are_dense_over_the_vocabulary_and_match_top_k(fitted):
    tree, x, _ = fitted
    dense = tree.scores(x[:20], depth=5)
    ids, scores = tree.top_k(x[:20], 5)
    assert dense.shape == (20, N_TAGS)
    assert np.count_nonzero(dense, axis=1).max() <= 5
    np.testing.assert_array_equal(np.take_along_axis(dense, ids, axis=1), scores)


def test_same_seed_same_scores_and_joblib_round_trip(fitted):
    tree, x, tags = fitted
    again = LabelTree(TreeSettings(max_leaves=8)).fit(x, tags, N_TAGS)
    np.testing.assert_array_equal(again.scores(x), tree.scores(x))
    buffer = io.BytesIO()
    joblib.dump(tree, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert (loaded.n_tags, loaded.n_features) == (N_TAGS, N_FEATURES)
    np.testing.assert_array_equal(loaded.scores(x), tree.scores(x))


def test_a_question_without_known_features_still_gets_k_tags(fitted):
    tree, _, _ = fitted
    ids, scores = tree.top_k(sp.csr_matrix((1, N_FEATURES), dtype=np.float32), 3)
    assert np.all(ids >= 0) and np.all(scores > 0)


def test_bad_input_is_named(fitted):
    tree, x, tags = fitted
    with pytest.raises(ValueError, match="tag_ids: id 40 is outside"):
        LabelTree().fit(x, [*tags[:-1], [40]], N_TAGS)
    with pytest.raises(ValueError, match="tag_ids: 3 rows for 600"):
        LabelTree().fit(x, tags[:3], N_TAGS)
    with pytest.raises(ValueError, match="never occur"):
        LabelTree().fit(x, tags, N_TAGS + 1)
    with pytest.raises(ValueError, match="features: 7 columns"):
        tree.top_k(sp.csr_matrix((1, 7)), 3)
    with pytest.raises(ValueError, match="not fitted"):
        LabelTree().top_k(x, 3)


def test_beam_search_keeps_the_best_k():
    # napkinxc's beam search returns every label it reached, unordered: top_k must still give k, best first.
    x, tags = synthetic(300, seed=1)
    tree = LabelTree(TreeSettings(max_leaves=8, tree_search_type="beam", beam_search_width=3)).fit(x, tags, N_TAGS)
    ids, scores = tree.top_k(x, 4)
    assert ids.shape == (300, 4)
    assert np.all(np.diff(scores, axis=1) <= 1e-12)
    assert np.all(ids[:, 0] >= 0)


def test_an_ensemble_is_refused_with_its_reason():
    with pytest.raises(ValueError, match="ensemble: 3 trees; only 1 is supported"):
        TreeSettings(ensemble=3)
