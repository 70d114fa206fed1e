"""Fit one configuration on a time split and evaluate it on the later window (no MLflow here).

The model kind (tagger.kinds) does the fitting; this module prepares the data and the labels, and
wraps the fitted model with its vocabulary and config.json's settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.preprocessing import MultiLabelBinarizer

from sotag.data import Split, filter_sources, load_questions, time_split
from sotag.data.validate import ValidationReport
from sotag.tagger.artifacts import ModelConfig
from sotag.tagger.errors import DataError
from sotag.tagger.kinds import KINDS, kind_class
from sotag.tagger.kinds.base import ModelKind, RunRecord, TrainingQuestions
from sotag.tagger.metrics import Evaluation, all_tags_from_scores, evaluate, served_no_tag_share
from sotag.tagger.model import Tagger
from sotag.tagger.text import PREPROCESSING_VERSION
from sotag.tagger.threshold import ThresholdChoice, choose_threshold
from sotag.tagger.vocabulary import restrict_tags
from sotag.training.config import TrainConfig


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
    vocabulary = kind_class(config.vectorizer).vocabulary(split.train["tags"], config)
    return Prepared(frame=frame, report=report, split=split, vocabulary=vocabulary)


def choose_served_threshold(
    kind: type[ModelKind], config: TrainConfig, train: pd.DataFrame, vocabulary: list[str], mlb: MultiLabelBinarizer
) -> ThresholdChoice:
    """The served threshold (tagger.threshold) chosen on the newest `validation_share` of the training window,
    scored by a model of the same kind fitted on the rest of it (never on the evaluation window). One more fit."""
    ordered = train.sort_values("creation_date", kind="stable").reset_index(drop=True)
    cut = round(len(ordered) * (1 - config.validation_share))
    if not 0 < cut < len(ordered):
        raise DataError(f"validation_share {config.validation_share}: leaves no questions to fit or to validate")
    older, newer = ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)
    fitted = kind.fit(
        TrainingQuestions(older, mlb.transform(restrict_tags(older["tags"], vocabulary)), vocabulary),
        TrainingQuestions(newer, mlb.transform(restrict_tags(newer["tags"], vocabulary)), vocabulary),
        config,
    )
    return choose_threshold(fitted.eval_scores, vocabulary, newer["tags"].tolist(), config.top_k)


def fit_and_evaluate(config: TrainConfig, prepared: Prepared) -> FitResult:
    """Fit the configuration's model kind on the training window; score the evaluation window."""
    kind = KINDS.get(config.vectorizer)
    if kind is None or not kind.trainable:
        raise DataError(f"vectorizer: unknown kind '{config.vectorizer}'")
    split, vocabulary = prepared.split, prepared.vocabulary
    mlb = MultiLabelBinarizer(classes=vocabulary)
    y_train = mlb.fit_transform(restrict_tags(split.train["tags"], vocabulary))
    y_eval = mlb.transform(restrict_tags(split.evaluation["tags"], vocabulary))
    threshold, choice, choose_s = config.threshold, None, 0.0
    if config.choose_threshold:
        start = time.perf_counter()
        choice = choose_served_threshold(kind, config, split.train, vocabulary, mlb)
        threshold, choose_s = choice.threshold, time.perf_counter() - start
    fitted = kind.fit(
        TrainingQuestions(split.train, y_train, vocabulary),
        TrainingQuestions(split.evaluation, y_eval, vocabulary),
        config,
    )
    model_config = ModelConfig(
        top_k=config.top_k,
        threshold=threshold,
        vectorizer=config.vectorizer,
        vocabulary=vocabulary,
        preprocessing_version=PREPROCESSING_VERSION,
        kind=kind.name,
        options=fitted.model.options,
    )
    tagger = Tagger(fitted.model, vocabulary, model_config)
    evaluation = evaluate(fitted.eval_scores, y_eval, vocabulary, config.top_k, threshold)
    # What a user gets: every question of the window, scored against every tag its asker chose (tagger.metrics).
    evaluation.metrics.update(all_tags_from_scores(fitted.eval_scores, vocabulary, split.evaluation["tags"].tolist()))
    # What a user sees at the served threshold: the share of evaluation questions given no tag at all.
    fitted.record.metrics["no_tag_share"] = served_no_tag_share(fitted.eval_scores, threshold)
    fitted.record.metrics["served_threshold"] = threshold
    if choice is not None:
        fitted.timings["choose_threshold_s"] = choose_s
        fitted.record.metrics |= {
            "validation_served_f1": choice.served_f1,
            "validation_no_tag_share": choice.no_tag_share,
        }
        fitted.record.tables["threshold/validation.json"] = choice.table
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
