"""What every model kind is: one interface that `Tagger`, the pyfunc, training, the gate and monitoring use.

A kind is a class in a module of `tagger/kinds/` and one entry in the kinds table (`tagger.kinds.KINDS`).
An instance is a fitted model of that kind. It owns:

* its artifact objects: `vectorizer` (saved as vectorizer.joblib) and `estimator` (estimator.joblib), any
  picklable objects the kind chooses (a fused weight matrix, a tree ensemble, a wrapper around both);
* its typed options (`Options`, a frozen dataclass: config.json's `options`);
* `scores(titles, bodies)`: an (n, n_tags) float array, one column per tag of the vocabulary;
* `fit` (a classmethod) on the training questions, however the kind learns (one-vs-rest, a label tree...);
* `explain` where it can break a score down (linear heads), else `NotExplainable`.

The selection rule (which tags a score matrix suggests) is the kind's too: the default is the best `top_k`
whose score reaches the threshold; the converted original-API model overrides it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from sotag.tagger.errors import ArtifactError, SotagError
from sotag.tagger.metrics import top_k_indices
from sotag.tagger.text import PREPROCESSING_VERSION, PREPROCESSING_VERSIONS
from sotag.tagger.vocabulary import tag_vocabulary

if TYPE_CHECKING:
    from sotag.tagger.explain import TagExplanation


@dataclass(frozen=True)
class Suggestion:
    tags: list[str]
    scores: list[float]


def ranked_suggestions(
    ranked: np.ndarray, top: np.ndarray, vocabulary: np.ndarray, threshold: float, min_tags: int
) -> list[Suggestion]:
    """The default selection rule's suggestions from each row's best columns `ranked` (best first) and their scores
    `top`: the tags scoring at least `threshold`, at least the best `min_tags`."""
    # Best first, so the tags at or above the threshold are a prefix of each ranked row: one rounding and
    # one tolist for the batch, then a slice per question (a batch path, not a loop of small numpy calls).
    kept = np.maximum((top >= threshold).sum(axis=1), min_tags).tolist()
    tags = vocabulary[ranked].tolist()
    rounded = np.round(top, 6).tolist()
    return [Suggestion(tags=t[:n], scores=r[:n]) for t, r, n in zip(tags, rounded, kept, strict=True)]


@dataclass(frozen=True)
class KindOptions:
    """A kind's typed settings, saved in config.json's `options`; each kind subclasses it (frozen dataclass)."""

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str) -> KindOptions:
        """From config.json; an unknown or mistyped field is an ArtifactError naming it."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ArtifactError(f"{where}: options has unknown field(s) {', '.join(unknown)}")
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class NotExplainable(SotagError):
    """The model kind cannot break its scores down into the question's terms."""


@dataclass(frozen=True)
class TrainingQuestions:
    """Questions with their labels: `frame` has title, body and creation_date; `y` is (n, n_tags) 0/1."""

    frame: pd.DataFrame
    y: np.ndarray
    vocabulary: list[str]

    @property
    def titles(self) -> list[str]:
        return self.frame["title"].tolist()

    @property
    def bodies(self) -> list[str]:
        return self.frame["body"].tolist()


class FitConfig(Protocol):
    """The training knobs every kind may read (training.config.TrainConfig); a kind reads the ones it uses."""

    keep_code: bool
    title_repeat: int
    top_n_tags: int
    min_tag_questions: int
    max_features: int
    ngram_max: int
    min_df: int
    C: float
    top_k: int
    threshold: float | None  # None: chosen after the fit, on calibrated scores (training.fit)
    n_jobs: int
    cache_dir: Path


@dataclass
class RunRecord:
    """What a kind adds to its training run, beyond the common metrics: MLflow params, metrics and tables."""

    params: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # artifact path (…/name.json) -> table


@dataclass
class Fitted:
    """A kind's fit: the model, its scores on the evaluation questions, and what the run records."""

    model: ModelKind
    eval_scores: np.ndarray  # (n_eval, n_tags)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, logged as metrics
    details: dict[str, object] = field(default_factory=dict)  # kind specifics, for benchmarks and tests
    reference: object | None = None  # the fitted library estimator the model was made from (one-vs-rest), if any
    record: RunRecord = field(default_factory=RunRecord)  # what training.mlflow_log logs for the kind


class ModelKind(ABC):
    """One fitted model of one kind. Subclasses set the class attributes and implement the abstract methods."""

    name: ClassVar[str]  # its key in the kinds table; config.json's `kind`
    Options: ClassVar[type[KindOptions]]
    trainable: ClassVar[bool] = True  # `sotag train --vectorizer NAME` offers it
    requirements: ClassVar[tuple[str, ...]] = ()  # pip packages the served model needs beyond the base set
    preprocessing: ClassVar[str] = "sotag"  # "sotag": tagger.text cleans the question first (/model_info says)
    selection: ClassVar[str] = "top_k_above_threshold"  # the selection rule, by name (/model_info says)

    options: KindOptions
    vectorizer: object  # vectorizer.joblib
    estimator: object  # estimator.joblib

    # -- artifacts ---------------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def from_artifacts(cls, vectorizer: object, estimator: object, options: KindOptions) -> ModelKind:
        """The model from its two unpickled artifact objects; ArtifactError naming the file when they do not fit."""

    # The cleaning rules the model was trained under (config.json's preprocessing_version); set by Tagger.
    preprocessing_version: str = PREPROCESSING_VERSION

    def use_preprocessing(self, version: str) -> None:
        """Serve with the cleaning the model was trained with: `tagger.text.clean_question` keeps the rules of
        every version in PREPROCESSING_VERSIONS, so older models answer as before; an unknown one is refused."""
        if self.preprocessing == "sotag" and version not in PREPROCESSING_VERSIONS:
            raise ArtifactError(
                f"config.json: preprocessing_version {version} is not one this code applies "
                f"({', '.join(PREPROCESSING_VERSIONS)}); retrain or install the matching sotag version"
            )
        self.preprocessing_version = version

    # -- training ----------------------------------------------------------------------------------------
    @classmethod
    def training_overrides(cls, config: FitConfig) -> dict[str, Any]:
        """Training knobs this kind sets when chosen (`TrainConfig.for_vectorizer`): its sensible text and C."""
        return {}

    @classmethod
    def vocabulary(cls, tags: pd.Series, config: FitConfig) -> list[str]:
        """The tags a model of this kind learns, from the training window's tag lists: by default the
        `top_n_tags` most frequent (ties alphabetical)."""
        return tag_vocabulary(tags, config.top_n_tags)

    @classmethod
    def embedded_texts(cls, frame: pd.DataFrame, config: FitConfig) -> list[str]:
        """The texts a fit on `frame` encodes with SBERT (tagger.sbert; what a cold embedding cache costs);
        none for a kind without sentence embeddings."""
        return []

    @classmethod
    def fit(cls, train: TrainingQuestions, evaluation: TrainingQuestions, config: FitConfig) -> Fitted:
        """Fit on `train`; score `evaluation` (never used to fit or choose anything)."""
        raise SotagError(f"model kind {cls.name}: cannot be trained here")

    # -- inference ---------------------------------------------------------------------------------------
    @property
    @abstractmethod
    def n_tags(self) -> int: ...

    @abstractmethod
    def scores(self, titles: Sequence[str], bodies: Sequence[str]) -> np.ndarray:
        """(n, n_tags) float scores, one column per tag of the vocabulary (config.json's score_kind says what)."""

    def suggest(
        self, scores: np.ndarray, vocabulary: np.ndarray, top_k: int, threshold: float, min_tags: int = 0
    ) -> list[Suggestion]:
        """The best `top_k` tags of each row whose score is at least `threshold`, and at least the best `min_tags`
        whatever their score (min_tags <= top_k), best first."""
        ranked = top_k_indices(scores, top_k)
        return ranked_suggestions(ranked, np.take_along_axis(scores, ranked, axis=1), vocabulary, threshold, min_tags)

    def explain(
        self, title: str, body: str, tags: Sequence[str], vocabulary: np.ndarray, n_terms: int
    ) -> list[TagExplanation]:
        """Each tag's score broken down into the question's terms (tagger.explain), where the kind can."""
        raise NotExplainable(f"{self.name}: this model kind cannot break its scores down into terms")

    def term_weights(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(terms, (n_terms, n_tags) weights) of a linear head over terms, or None (a training run logs it)."""
        return None
