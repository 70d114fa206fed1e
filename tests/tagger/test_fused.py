import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from sotag.tagger.fused import FusedLinearModel


def _data(seed=0, n=300, f=500, t=8):
    rng = np.random.default_rng(seed)
    x = sp.random(n, f, density=0.05, format="csr", random_state=seed, dtype=np.float64)
    w = rng.normal(size=(f, t))
    y = (x @ w + rng.normal(scale=0.1, size=(n, t)) > 0.3).astype(int)
    return x, y


def test_fused_scores_equal_one_vs_rest_predict_proba():
    x, y = _data()
    ovr = OneVsRestClassifier(LogisticRegression(C=10, solver="liblinear", dual=True)).fit(x, y)
    fused = FusedLinearModel.from_one_vs_rest(ovr)
    x_new, _ = _data(seed=1)
    np.testing.assert_allclose(fused.predict_proba(x_new), ovr.predict_proba(x_new), atol=1e-6, rtol=0)
    assert fused.weights.shape == (500, 8) and fused.weights.flags.c_contiguous


def test_fused_handles_dense_features_and_constant_tags():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    y = np.column_stack([(x[:, 0] > 0).astype(int), np.zeros(200, dtype=int)])  # second tag never present
    ovr = OneVsRestClassifier(LogisticRegression(solver="liblinear")).fit(x, y)
    fused = FusedLinearModel.from_one_vs_rest(ovr)
    np.testing.assert_allclose(fused.predict_proba(x), ovr.predict_proba(x), atol=1e-6, rtol=0)


def test_single_row_path_equals_batch_path():
    x, y = _data()
    ovr = OneVsRestClassifier(LogisticRegression(solver="liblinear")).fit(x, y)
    fused = FusedLinearModel.from_one_vs_rest(ovr)
    batch = fused.predict_proba(x[:5])
    for i in range(5):
        np.testing.assert_allclose(fused.predict_proba(x[i]), batch[i : i + 1], atol=1e-6)
    empty = sp.csr_matrix((1, x.shape[1]))
    np.testing.assert_allclose(fused.predict_proba(empty), 1 / (1 + np.exp(-fused.bias[None, :])), atol=1e-6)
