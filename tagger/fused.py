"""One-matrix scoring for a fitted one-vs-rest linear classifier.

`OneVsRestClassifier.predict_proba` calls every per-tag estimator in a Python loop, each
with its own input validation. Stacking the per-tag coefficients into one (features x tags)
matrix turns scoring into one matrix product, a sigmoid and a partial sort for top-k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.multiclass import OneVsRestClassifier

# float32 halves the artifact and the memory traffic of the product; the scores still
# match the float64 sklearn path to well under 1e-6 (asserted in the tests).
DTYPE = np.float32


LINKS = ("sigmoid", "identity")


@dataclass
class FusedLinearModel:
    """Per-tag linear models fused into `weights` (n_features, n_tags) and `bias` (n_tags,).

    `link` says what a score is: "sigmoid" for logistic models (probabilities, as `predict_proba`),
    "identity" for margin models such as LinearSVC (the `decision_function` itself). Models pickled
    before the field existed read the class default, "sigmoid".
    """

    weights: np.ndarray
    bias: np.ndarray
    link: str = "sigmoid"

    @classmethod
    def from_one_vs_rest(cls, ovr: OneVsRestClassifier, link: str = "sigmoid") -> FusedLinearModel:
        """Stack the coefficients of a fitted one-vs-rest linear classifier."""
        columns, bias = [], []
        for est in ovr.estimators_:
            if hasattr(est, "coef_"):
                columns.append(np.asarray(est.coef_, dtype=np.float64).ravel())
                bias.append(float(np.ravel(est.intercept_)[0]))
            else:
                # sklearn's _ConstantPredictor: a tag that was always (or never) present in
                # training. A zero weight vector and a saturated bias reproduce its constant.
                p = float(np.ravel(est.y_)[0])
                columns.append(None)
                bias.append(40.0 if p >= 0.5 else -40.0)
        n_features = next((len(c) for c in columns if c is not None), 0)
        weights = np.column_stack([c if c is not None else np.zeros(n_features) for c in columns])
        return cls(weights=np.ascontiguousarray(weights, dtype=DTYPE), bias=np.asarray(bias, dtype=DTYPE), link=link)

    @property
    def n_tags(self) -> int:
        return self.weights.shape[1]

    def decision_function(self, features: sp.spmatrix | np.ndarray) -> np.ndarray:
        """Logits for every question and tag: one product with the stacked weights."""
        if sp.issparse(features) and features.shape[0] == 1:
            row = features.tocsr()
            return self.row_logits(row.data, row.indices)
        if sp.issparse(features):
            features = features.astype(DTYPE, copy=False)
            logits = np.asarray(features @ self.weights)
        else:
            logits = np.asarray(features, dtype=DTYPE) @ self.weights
        logits += self.bias
        return logits

    def row_logits(self, data: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """One question's (1, n_tags) logits from its CSR row's `data` and feature `indices`: its few weight rows
        gathered (scipy's matmul overhead dominates for one row)."""
        logits = (data.astype(DTYPE, copy=False) @ self.weights[indices])[None, :]
        logits += self.bias
        return logits

    def scores(self, features: sp.spmatrix | np.ndarray) -> np.ndarray:
        """What the model ranks by: probabilities (sigmoid link) or margins (identity link)."""
        if self.link == "identity":
            return self.decision_function(features).astype(np.float64, copy=False)
        return self.predict_proba(features)

    def predict_proba(self, features: sp.spmatrix | np.ndarray) -> np.ndarray:
        """Per-tag probabilities, as `OneVsRestClassifier.predict_proba` returns them."""
        return sigmoid(self.decision_function(features))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """`FusedLinearModel.predict_proba` from its logits: float64 probabilities."""
    logits = logits.astype(np.float64, copy=False)
    return 1.0 / (1.0 + np.exp(-logits))
