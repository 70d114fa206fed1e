"""Scores that mean what they say: a kind's raw scores mapped to the probability that a tag is one the asker chose.

A kind's raw scores are not probabilities (the label tree's are products of per-node terms over thousands of tags,
a one-vs-rest head's are per-tag logistic outputs fitted on a different balance), so no threshold meant the same
thing across kinds or versions. A training run fits one monotone map per model (isotonic regression, scikit-learn's)
on questions the model was not fitted on (the newest slice of the training window, scored by a model of the same
kind fitted on the rest of it), over each question's best-ranked suggestions against every tag its asker chose.

The map is kept in config.json as its knots (no pickle: nothing to unpickle, nothing new to digest) and applied
with `numpy.interp`. Isotonic regression is flat between some knots; a flat stretch would tie tags the raw scores
ordered, and ties are broken arbitrarily by the top-k selection, so the applied map adds `TIE_BREAK` times a
strictly increasing squash of the raw score: the ranking is the raw ranking exactly (precision@k does not move),
and the probabilities move by at most 1e-6. (Written here rather than taken from scikit-learn's
CalibratedClassifierCV because that wraps one estimator per class and refits it; sotag's kinds score all tags at
once, and the map must live in config.json.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

from sotag.tagger.errors import ArtifactError
from sotag.tagger.metrics import suggestion_hits, top_k_indices

METHOD = "isotonic"
TIE_BREAK = 1e-6
PRIOR = 2.0  # pseudo-pairs at the overall share added to each isotonic block (fit_calibration)
# Fitted on each question's 10 best suggestions: covers the served top_k (5 by default, at most 50 per request,
# where the map's last knot holds), and the low scores that decide whether a fourth or fifth tag is served.
DEPTH = 10
# Calibration.top_k: the least margin between the k-th calibrated score and the next raw score's calibrated score
# for the shortcut to be exact (numpy.interp's rounding can break the map's monotony by a few 1e-16).
_GAP = 1e-12


@dataclass(frozen=True)
class Calibration:
    """A monotone map from raw scores to calibrated probabilities (isotonic knots) and what it was fitted on."""

    x: tuple[float, ...]  # raw scores, ascending
    y: tuple[float, ...]  # probabilities, non-decreasing
    pairs: int  # (question, suggested tag) pairs it was fitted on
    depth: int = DEPTH
    method: str = METHOD

    def knots(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) as arrays, made once (numpy.interp converts tuples on every call: most of a question's map)."""
        knots = self.__dict__.get("_knots")
        if knots is None:
            knots = (np.asarray(self.x, dtype=np.float64), np.asarray(self.y, dtype=np.float64))
            object.__setattr__(self, "_knots", knots)
        return knots

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for a raw score array of any shape; the order of the raw scores is kept."""
        raw = np.asarray(scores, dtype=np.float64)
        mapped = np.interp(raw, *self.knots())
        squash = 0.5 + 0.5 * raw / (1.0 + np.abs(raw))  # strictly increasing, in (0, 1)
        return (1.0 - TIE_BREAK) * mapped + TIE_BREAK * squash

    def top_k(self, raw: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ranked, calibrated): each row's `k` best columns by calibrated score, best first, and those scores; the
        same arrays as `top_k_indices(self.apply(raw), k)` and the calibrated scores it picks, from the calibrated
        scores of each row's `k + 1` best raw scores only (a served suggestion needs five of 2,000 columns).

        The map is monotone (up to a few units in the last place of `numpy.interp`'s arithmetic), so the calibrated
        top `k` lie among the raw top `k + 1`. A row is answered so where its calibrated top `k` are strictly
        ordered and above the (k+1)-th raw score's calibrated score by more than `_GAP`: then the reference's
        answer is that one, whatever its ties rule. Other rows (ties, a flat stretch of the map at the k-th score)
        are calibrated whole and ranked by `top_k_indices`, the reference itself.

        Written by hand: calibrating every column was a quarter of a batch's scoring time, and the partial sort
        (`argpartition`, 0.02 ms a row) a tenth. The raw top `k + 1` are found instead among the scores at least
        the (k+1)-th largest of the rows' block maxima (at least k + 1 scores reach it; ten or so on a default
        model): two passes over the scores, then a sort of those few."""
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or not 1 <= k < raw.shape[1]:
            return self._reference_top_k(raw, k)
        n, m = raw.shape
        blocks = min(m, max(4 * (k + 1), 24))
        starts = (np.arange(blocks) * m) // blocks
        if n == 1:  # the REST path: the same steps on the row itself, a third of the small numpy calls
            row = raw[0]
            floor = np.partition(np.maximum.reduceat(row, starts), blocks - k - 1)[blocks - k - 1]
            candidates = np.flatnonzero(row >= floor)
            part = candidates[np.argsort(-row[candidates], kind="stable")[: k + 1]]
            calibrated = self.apply(row[part])
            order = np.argsort(-calibrated[:k], kind="stable")
            top = calibrated[order]
            if len(part) > k and top[-1] > calibrated[k] + _GAP and (top[:-1] > top[1:]).all():
                return part[order][None, :], top[None, :]
            return self._reference_top_k(raw, k)
        floor = np.partition(np.maximum.reduceat(raw, starts, axis=1), blocks - k - 1, axis=1)[:, blocks - k - 1]
        rows, columns = np.nonzero(raw >= floor[:, None])
        order = np.lexsort((-raw[rows, columns], rows))  # by row, best raw score first
        rows, columns = rows[order], columns[order]
        first = np.searchsorted(rows, np.arange(n + 1))
        rank = np.arange(len(rows)) - first[rows]
        kept = rank <= k
        part = np.zeros((n, k + 1), dtype=np.intp)  # the k best raw scores, then the (k+1)-th
        part[rows[kept], rank[kept]] = columns[kept]
        calibrated = self.apply(np.take_along_axis(raw, part, axis=1))
        order = np.argsort(-calibrated[:, :k], axis=1, kind="stable")
        ranked = np.take_along_axis(part, order, axis=1)
        top = np.take_along_axis(calibrated, order, axis=1)
        exact = (
            (np.diff(first) > k)  # k + 1 candidates (a row with NaN scores may have fewer)
            & (top[:, -1] > calibrated[:, k] + _GAP)
            & (top[:, :-1] > top[:, 1:]).all(axis=1)
        )
        if not exact.all():
            rows = np.flatnonzero(~exact)
            ranked[rows], top[rows] = self._reference_top_k(raw[rows], k)
        return ranked, top

    def _reference_top_k(self, raw: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`top_k`'s arrays from every column calibrated."""
        scores = self.apply(raw)
        ranked = top_k_indices(scores, k)
        return ranked, np.take_along_axis(scores, ranked, axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "x": list(self.x), "y": list(self.y), "pairs": self.pairs, "depth": self.depth}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any], where: str) -> Calibration:
        """From config.json's `calibration`; ArtifactError naming what does not fit."""
        if not isinstance(payload, Mapping) or payload.get("method") != METHOD:
            raise ArtifactError(f"{where}: calibration must be an object with method {METHOD!r}")
        try:
            x = tuple(float(v) for v in payload["x"])
            y = tuple(float(v) for v in payload["y"])
            pairs, depth = int(payload["pairs"]), int(payload.get("depth", DEPTH))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{where}: calibration needs numeric lists x, y and a count pairs ({exc})") from None
        if not x or len(x) != len(y):
            raise ArtifactError(f"{where}: calibration x and y must be non-empty lists of one length")
        if any(b < a for a, b in pairwise(x)) or any(b < a for a, b in pairwise(y)):
            raise ArtifactError(f"{where}: calibration x and y must be non-decreasing")
        if y[0] < 0 or y[-1] > 1:
            raise ArtifactError(f"{where}: calibration y must lie in [0, 1]")
        return cls(x=x, y=y, pairs=pairs, depth=depth)


def fit_calibration(
    scores: np.ndarray, vocabulary: Sequence[str], true_tags: Sequence[Sequence[str]], depth: int = DEPTH
) -> Calibration:
    """The isotonic map from raw scores to the share of suggestions the askers chose, on held-out questions'
    `depth` best suggestions. ValueError when there is nothing to fit on."""
    raw, hits = suggestion_hits(scores, vocabulary, true_tags, depth)
    if raw.size == 0:
        raise ValueError("calibration: no suggestions to fit on")
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(raw, hits)
    knots_x, knots_y = iso.X_thresholds_, iso.y_thresholds_
    # Each isotonic block's share, shrunk by PRIOR pairs towards the overall share: a block of a few pairs all
    # chosen (the top scores, often) would otherwise say 1.0, certainty no held-out slice can show. Shrinking
    # can reorder neighbouring blocks of different sizes, so the shrunk knots are made monotone again (weighted).
    fitted = np.round(iso.predict(raw), 12)
    values, block = np.unique(fitted, return_inverse=True)
    pairs, chosen = np.bincount(block), np.bincount(block, weights=hits)
    shrunk = (chosen + PRIOR * hits.mean()) / (pairs + PRIOR)
    which = np.clip(np.searchsorted(values, np.round(knots_y, 12)), 0, len(values) - 1)
    knots_y = IsotonicRegression(y_min=0.0, y_max=1.0).fit_transform(knots_x, shrunk[which], sample_weight=pairs[which])
    return Calibration(x=tuple(float(v) for v in knots_x), y=tuple(float(v) for v in knots_y), pairs=int(raw.size))
