"""Drift statistics computed by hand where Evidently has no multi-label or PCA-component form.

Everything compares one month (current) with the reference window.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.decomposition import PCA

EPS = 1e-4


def centroid_cosine_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """1 - cosine similarity of the two mean embeddings (seed 001)."""
    a, b = reference.mean(axis=0), current.mean(axis=0)
    return float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def fit_pca(reference: np.ndarray, n_components: int = 5, seed: int = 0) -> PCA:
    return PCA(n_components=n_components, random_state=seed).fit(reference)


def pca_component_drift(pca: PCA, reference: np.ndarray, current: np.ndarray) -> dict[str, float]:
    """Wasserstein distance (in reference standard deviations) and KS test on each leading component."""
    ref, cur = pca.transform(reference), pca.transform(current)
    wasserstein, ks_p = [], []
    for j in range(ref.shape[1]):
        scale = ref[:, j].std() or 1.0
        wasserstein.append(stats.wasserstein_distance(ref[:, j], cur[:, j]) / scale)
        ks_p.append(stats.ks_2samp(ref[:, j], cur[:, j]).pvalue)
    out = {f"pca{j + 1}_wasserstein": float(w) for j, w in enumerate(wasserstein)}
    out |= {f"pca{j + 1}_ks_pvalue": float(p) for j, p in enumerate(ks_p)}
    out["pca_wasserstein_max"] = float(max(wasserstein))
    out["pca_ks_pvalue_min"] = float(min(ks_p))
    return out


def tag_distribution(predicted: np.ndarray) -> np.ndarray:
    """Counts of each predicted tag (columns of a 0/1 decision matrix)."""
    return predicted.sum(axis=0).astype(float)


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index over tags (shares floored at EPS so empty tags stay finite)."""
    p = np.maximum(reference_counts / max(reference_counts.sum(), 1.0), EPS)
    q = np.maximum(current_counts / max(current_counts.sum(), 1.0), EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def chi_square(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity on the tag counts (tags absent from both are left out)."""
    keep = (reference_counts + current_counts) > 0
    table = np.vstack([reference_counts[keep], current_counts[keep]])
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test on one numeric column (seed 004's KS): the statistic and its p-value."""
    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)
