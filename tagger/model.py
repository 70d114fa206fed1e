"""The inference service: four artifacts in, ranked tags out.

One class used by the MLflow pyfunc (and so by `mlflow models serve`, the gateway and monitoring).
It knows the model kind only through its interface (tagger.kinds.base.ModelKind): the kind scores
the questions and selects the tags; `Tagger` adds the vocabulary and the inference defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sotag.tagger.artifacts import LoadedArtifacts, ModelConfig, load_artifacts, write_artifacts
from sotag.tagger.errors import ArtifactError
from sotag.tagger.kinds import kind_class
from sotag.tagger.kinds.base import ModelKind, Suggestion, ranked_suggestions

__all__ = ["Suggestion", "Tagger"]


class Tagger:
    """A loaded model: a fitted model kind + tag vocabulary + inference defaults (config.json)."""

    def __init__(self, model: ModelKind, vocabulary: Sequence[str], config: ModelConfig):
        if model.name != config.kind:
            raise ArtifactError(f"config.json: kind {config.kind!r}, but the model is a {model.name} model")
        if model.n_tags != len(vocabulary):
            raise ArtifactError(
                f"estimator.joblib: scores {model.n_tags} tags but the vocabulary has {len(vocabulary)}"
            )
        model.use_preprocessing(config.preprocessing_version)
        self.model = model
        self.vocabulary = np.asarray(vocabulary, dtype=object)
        self.config = config

    @classmethod
    def from_artifacts(cls, loaded: LoadedArtifacts) -> Tagger:
        """The model from its unpickled artifacts (tagger.artifacts.load_artifacts), its kind from config.json."""
        vocabulary = list(loaded.mlb.classes_)
        if vocabulary != list(loaded.config.vocabulary):
            raise ArtifactError("mlb.joblib: its classes differ from the vocabulary in config.json")
        kind = kind_class(loaded.config.kind)
        return cls(
            kind.from_artifacts(loaded.vectorizer, loaded.estimator, loaded.config.options), vocabulary, loaded.config
        )

    @classmethod
    def from_directory(cls, directory: str | Path) -> Tagger:
        """Verify every sha256, then load."""
        return cls.from_artifacts(load_artifacts(directory))

    def save(self, directory: str | Path, mlb: object) -> Path:
        """The four files (tagger.artifacts.write_artifacts); `mlb` is the fitted MultiLabelBinarizer."""
        return write_artifacts(directory, self.model.vectorizer, self.model.estimator, mlb, self.config)

    @property
    def vectorizer(self) -> object:
        """What vectorizer.joblib holds."""
        return self.model.vectorizer

    @property
    def estimator(self) -> object:
        """What estimator.joblib holds."""
        return self.model.estimator

    def scores(self, titles: Sequence[str], bodies: Sequence[str]) -> np.ndarray:
        """(n, n_tags) scores: calibrated probabilities when the version has a calibration (tagger.calibration),
        else the kind's raw scores: probabilities, or margins for a margin model (config.score_kind)."""
        raw = self.model.scores(titles, bodies)
        return raw if self.config.calibration is None else self.config.calibration.apply(raw)

    def suggest(
        self, titles: Sequence[str], bodies: Sequence[str], top_k: int | None = None, threshold: float | None = None
    ) -> list[Suggestion]:
        """For each question its tags, best first, by the kind's selection rule (config.selection): the best
        `top_k` whose score is at least `threshold`, or for the original Tagger API's model the best `top_k`
        plus every tag >= `threshold`. A version with `min_tags` gives each question at least that many (its best)."""
        top_k = self.config.top_k if top_k is None else top_k
        threshold = self.config.threshold if threshold is None else threshold
        if not titles:
            return []
        raw = self.model.scores(titles, bodies)
        calibration, min_tags = self.config.calibration, min(self.config.min_tags, top_k)
        if calibration is not None and type(self.model).suggest is ModelKind.suggest:
            # The default rule on calibrated scores: only the columns it can pick are calibrated (the same answers).
            ranked, top = calibration.top_k(raw, top_k)
            return ranked_suggestions(ranked, top, self.vocabulary, threshold, min_tags)
        scores = raw if calibration is None else calibration.apply(raw)
        return self.model.suggest(scores, self.vocabulary, top_k, threshold, min_tags)
