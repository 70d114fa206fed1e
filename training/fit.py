"""Fit one configuration on a time split and evaluate it on the later window (no MLflow here).

The model kind (tagger.kinds) does the fitting; this module prepares the data and the labels, and
wraps the fitted model with its vocabulary and config.json's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.preprocessing import MultiLabelBinarizer

from tagger.artifacts import ModelConfig
from tagger.data import Split, filter_sources, load_questions, tag_vocabulary, time_split
from tagger.data.split import restrict_tags
from tagger.data.validate import ValidationReport
from tagger.errors import DataError
from tagger.kinds import KINDS
from tagger.kinds.base import RunRecord, TrainingQuestions
from tagger.metrics import Evaluation, all_tags_from_scores, evaluate
from tagger.model import Tagger
from tagger.text import PREPROCESSING_VERSION
from training.config import TrainConfig


@dataclass
class Prepared:
    """The validated data, its split and the tag vocabulary."""

    frame: pd.DataFrame
    report: ValidationReport
    split: Split
    vocabulary: list[str]


@dataclass
class FitResult:
    tagger: Tagger
    ovr: object | None  # the fitted library estimator the model was made from (one-vs-rest), if the kind has one
    mlb: MultiLabelBinarizer
    evaluation: Evaluation
    eval_scores: np.ndarray
    eval_truth: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    # Model-kind specifics a run records (training.mlflow_log.log_details), e.g. the ensemble's chosen weight.
    details: dict[str, object] = field(default_factory=dict)
    record: RunRecord = field(default_factory=RunRecord)  # the kind's params, metrics and tables for the run


def prepare(config: TrainConfig, frame: pd.DataFrame | None = None, report: ValidationReport | None = None) -> Prepared:
    """Load (unless given), filter sources, split by time and pick the vocabulary."""
    if frame is None:
        frame, report = load_questions(config.data)
    frame = filter_sources(frame, config.exclude_sources)
    split = time_split(frame, config.split_date, config.eval_end)
    vocabulary = tag_vocabulary(split.train["tags"], config.top_n_tags)
    return Prepared(frame=frame, report=report, split=split, vocabulary=vocabulary)


def fit_and_evaluate(config: TrainConfig, prepared: Prepared) -> FitResult:
    """Fit the configuration's model kind on the training window; score the evaluation window."""
    kind = KINDS.get(config.vectorizer)
    if kind is None or not kind.trainable:
        raise DataError(f"vectorizer: unknown kind '{config.vectorizer}'")
    split, vocabulary = prepared.split, prepared.vocabulary
    mlb = MultiLabelBinarizer(classes=vocabulary)
    y_train = mlb.fit_transform(restrict_tags(split.train["tags"], vocabulary))
    y_eval = mlb.transform(restrict_tags(split.evaluation["tags"], vocabulary))
    fitted = kind.fit(
        TrainingQuestions(split.train, y_train, vocabulary),
        TrainingQuestions(split.evaluation, y_eval, vocabulary),
        config,
    )
    model_config = ModelConfig(
        top_k=config.top_k,
        threshold=config.threshold,
        vectorizer=config.vectorizer,
        vocabulary=vocabulary,
        preprocessing_version=PREPROCESSING_VERSION,
        kind=kind.name,
        options=fitted.model.options,
    )
    tagger = Tagger(fitted.model, vocabulary, model_config)
    evaluation = evaluate(fitted.eval_scores, y_eval, vocabulary, config.top_k, config.threshold)
    # What a user gets: every question of the window, scored against every tag its asker chose (tagger.metrics).
    evaluation.metrics.update(all_tags_from_scores(fitted.eval_scores, vocabulary, split.evaluation["tags"].tolist()))
    return FitResult(
        tagger,
        fitted.reference,
        mlb,
        evaluation,
        fitted.eval_scores,
        y_eval,
        fitted.timings,
        fitted.details,
        fitted.record,
    )
