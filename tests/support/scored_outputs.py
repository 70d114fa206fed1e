"""Comparing two `sotag score` outputs (tests/serving/test_batch.py and `make bench-batch`: Spark against local)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def equal_outputs(left: pd.DataFrame, right: pd.DataFrame, tolerance: float = 1e-6) -> tuple[bool, str]:
    """Same ids, and per id the same tags in order and scores within `tolerance`."""
    if len(left) != len(right):
        return False, f"{len(left)} rows against {len(right)}"
    a = left.sort_values("id", kind="stable").reset_index(drop=True)
    b = right.sort_values("id", kind="stable").reset_index(drop=True)
    if not np.array_equal(a["id"].to_numpy(), b["id"].to_numpy()):
        return False, "different ids"
    for column in ("tags", "scores"):
        la = a[column].map(len).to_numpy()
        if not np.array_equal(la, b[column].map(len).to_numpy()):
            return False, f"{column}: different lengths"
    tags_a = np.concatenate([np.asarray(t, dtype=object) for t in a["tags"]] or [np.empty(0, dtype=object)])
    tags_b = np.concatenate([np.asarray(t, dtype=object) for t in b["tags"]] or [np.empty(0, dtype=object)])
    if not np.array_equal(tags_a, tags_b):
        return False, "different tags"
    scores_a = np.concatenate([np.asarray(s, dtype=float) for s in a["scores"]] or [np.empty(0)])
    scores_b = np.concatenate([np.asarray(s, dtype=float) for s in b["scores"]] or [np.empty(0)])
    worst = float(np.max(np.abs(scores_a - scores_b), initial=0.0))
    if worst > tolerance:
        return False, f"scores differ by up to {worst:.2e}"
    return True, f"{len(a)} rows equal (largest score difference {worst:.1e})"
