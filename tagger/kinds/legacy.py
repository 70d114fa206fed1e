"""The converted original Tagger API model (`sotag convert-legacy`, serving.legacy): its rules live here.

The original inference, kept so the converted model tags as it did:
* the text reaches the vectorizer as sent (`raw` preprocessing): "<title>\\n\\n<body>", or the title alone;
* scores are probabilities, or margins (a `decision_function`) when the estimator had no `predict_proba`
  (config.json's score_kind; the fused head's identity link);
* the selection is the best `top_k` plus every tag whose score is >= the threshold (`top_k_or_threshold`).

Artifacts as for a linear kind: the original fitted CountVectorizer / TfidfVectorizer and the fused head.
It is made by conversion, never trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sotag.tagger.kinds.base import KindOptions, Suggestion
from sotag.tagger.kinds.linear import LinearKind
from sotag.tagger.metrics import top_k_indices


def raw_text(title: str, body: str) -> str:
    """The original Tagger API's input: `text` = "<title>\\n\\n<body>" (the title alone without a body)."""
    return f"{title}\n\n{body}" if body else title


@dataclass(frozen=True)
class LegacyOptions(KindOptions):
    """Where the model came from: the converted file (or folder) and its sha256."""

    converted_from: str = ""
    bundle_sha256: str = ""


class LegacyKind(LinearKind):
    """The original API's vectorizer and fused per-tag head, behind its own text and selection rules."""

    name = "legacy"
    Options = LegacyOptions
    trainable = False
    preprocessing = "raw"
    selection = "top_k_or_threshold"

    def texts(self, titles: Sequence[str], bodies: Sequence[str]) -> list[str]:
        return [raw_text(t, b) for t, b in zip(titles, bodies, strict=True)]

    def suggest(
        self, scores: np.ndarray, vocabulary: np.ndarray, top_k: int, threshold: float, min_tags: int = 0
    ) -> list[Suggestion]:
        """The best `top_k` plus every tag at or above the threshold, best first (always top_k >= min_tags tags)."""
        ranked = top_k_indices(scores, top_k)
        return [union(row, idx, threshold, vocabulary) for row, idx in zip(scores, ranked, strict=True)]


def union(row: np.ndarray, idx: np.ndarray, threshold: float, vocabulary: np.ndarray) -> Suggestion:
    """One question: the tags ranked `idx` and those scoring >= `threshold`, by score, best first."""
    picked = np.union1d(idx, np.flatnonzero(row >= threshold))
    picked = picked[np.argsort(-row[picked], kind="stable")]
    return Suggestion(tags=vocabulary[picked].tolist(), scores=np.round(row[picked], 6).tolist())
