"""The inference service: four artifacts in, ranked tags out.

One class used by the MLflow pyfunc (and so by `mlflow models serve`, the gateway and
monitoring). Scoring goes through the fused weight matrix, never the per-tag loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tagger.artifacts import ModelConfig, load_artifacts
from tagger.compiled import compile_vectorizer
from tagger.ensemble import EnsembleModel, EnsembleVectorizer
from tagger.errors import ArtifactError
from tagger.fused import FusedLinearModel
from tagger.metrics import top_k_indices
from tagger.text import PREPROCESSING_VERSIONS, clean_question, normalize_newlines

PREPROCESSING_MODES = ("sotag", "raw")
SELECTIONS = ("top_k_above_threshold", "top_k_or_threshold")


def raw_text(title: str, body: str) -> str:
    """The original Tagger API's input: `text` = "<title>\n\n<body>" (the title alone without a body)."""
    return f"{title}\n\n{body}" if body else title


def split_text(text: str) -> tuple[str, str]:
    """`text` as (title, body): before and after its first blank line, else all title; `raw_text` inverts it.
    Line endings are normalised first (tagger.text.normalize_newlines): a CRLF blank line splits the same."""
    text = normalize_newlines(text)
    title, blank, body = text.partition("\n\n")
    return (title, body) if blank and title.strip() else (text, "")


@dataclass(frozen=True)
class Suggestion:
    tags: list[str]
    scores: list[float]


class Tagger:
    """A loaded model: vectorizer + fused estimator + tag vocabulary + inference defaults."""

    def __init__(
        self,
        vectorizer: object,
        estimator: FusedLinearModel | EnsembleModel,
        vocabulary: Sequence[str],
        config: ModelConfig,
    ):
        if not isinstance(estimator, FusedLinearModel | EnsembleModel):
            raise ArtifactError(
                f"estimator.joblib: expected a FusedLinearModel or an EnsembleModel, got {type(estimator).__name__}"
            )
        if estimator.n_tags != len(vocabulary):
            raise ArtifactError(
                f"estimator.joblib: scores {estimator.n_tags} tags but the vocabulary has {len(vocabulary)}"
            )
        if config.preprocessing not in PREPROCESSING_MODES:
            raise ArtifactError(f"config.json: preprocessing {config.preprocessing!r} is not one of sotag, raw")
        if config.selection not in SELECTIONS:
            raise ArtifactError(f"config.json: selection {config.selection!r} is not one of {SELECTIONS}")
        # A model is served with the cleaning rules of the version it was trained under (clean_question keeps
        # every version in PREPROCESSING_VERSIONS); only a version this code does not know is refused.
        if config.preprocessing == "sotag" and config.preprocessing_version not in PREPROCESSING_VERSIONS:
            raise ArtifactError(
                f"config.json: preprocessing_version {config.preprocessing_version} is not one this code applies "
                f"({', '.join(PREPROCESSING_VERSIONS)}); retrain or install the matching sotag version"
            )
        self.vectorizer = vectorizer
        # Same features as `vectorizer.transform`, without sklearn's per-call overhead.
        if isinstance(vectorizer, EnsembleVectorizer):
            self.features = vectorizer.compiled()
        else:
            self.features = compile_vectorizer(vectorizer)
        self.estimator = estimator
        self.vocabulary = np.asarray(vocabulary, dtype=object)
        self.config = config

    @classmethod
    def from_directory(cls, directory: str | Path) -> Tagger:
        """Verify every sha256, then load."""
        loaded = load_artifacts(directory)
        vocabulary = list(loaded.mlb.classes_)
        if vocabulary != list(loaded.config.vocabulary):
            raise ArtifactError("mlb.joblib: its classes differ from the vocabulary in config.json")
        return cls(loaded.vectorizer, loaded.estimator, vocabulary, loaded.config)

    def texts(self, titles: Sequence[str], bodies: Sequence[str]) -> list[str]:
        if self.config.preprocessing == "raw":
            return [raw_text(t, b) for t, b in zip(titles, bodies, strict=True)]
        extra = self.config.extra
        return [
            clean_question(
                t,
                b,
                keep_code=self.config.keep_code,
                title_repeat=int(extra.get("title_repeat", 1)),
                version=self.config.preprocessing_version,
            )
            for t, b in zip(titles, bodies, strict=True)
        ]

    def featurize(self, titles: Sequence[str], bodies: Sequence[str]) -> object:
        """What the estimator scores: one feature matrix, or both heads' features for an ensemble."""
        if isinstance(self.features, EnsembleVectorizer):
            return self.features.transform_questions(titles, bodies, self.config.preprocessing_version)
        return self.features.transform(self.texts(titles, bodies))

    def scores(self, titles: Sequence[str], bodies: Sequence[str]) -> np.ndarray:
        """(n, n_tags) scores: probabilities, or margins for a margin model (config.score_kind)."""
        return self.estimator.scores(self.featurize(titles, bodies))

    def suggest(
        self, titles: Sequence[str], bodies: Sequence[str], top_k: int | None = None, threshold: float | None = None
    ) -> list[Suggestion]:
        """For each question its tags, best first: the best `top_k` whose score is at least `threshold`, or,
        for a model converted from the original Tagger API, the best `top_k` plus every tag >= `threshold`."""
        top_k = self.config.top_k if top_k is None else top_k
        threshold = self.config.threshold if threshold is None else threshold
        if not titles:
            return []
        scores = self.scores(titles, bodies)
        ranked = top_k_indices(scores, top_k)
        if self.config.selection == "top_k_or_threshold":
            return [self._union(row, idx, threshold) for row, idx in zip(scores, ranked, strict=True)]
        # Best first, so the tags at or above the threshold are a prefix of each ranked row: one rounding and
        # one tolist for the batch, then a slice per question (a batch path, not a loop of small numpy calls).
        top = np.take_along_axis(scores, ranked, axis=1)
        kept = (top >= threshold).sum(axis=1).tolist()
        tags = self.vocabulary[ranked].tolist()
        rounded = np.round(top, 6).tolist()
        return [Suggestion(tags=t[:n], scores=r[:n]) for t, r, n in zip(tags, rounded, kept, strict=True)]

    def _union(self, row: np.ndarray, idx: np.ndarray, threshold: float) -> Suggestion:
        """The original Tagger API's selection: the best `top_k` plus every tag at or above the threshold."""
        picked = np.union1d(idx, np.flatnonzero(row >= threshold))
        picked = picked[np.argsort(-row[picked], kind="stable")]
        return Suggestion(tags=self.vocabulary[picked].tolist(), scores=np.round(row[picked], 6).tolist())
