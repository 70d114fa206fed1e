"""Fit one configuration on a time split and evaluate it on the later window (no MLflow here).

The model kind (tagger.kinds) does the fitting; this module prepares the data and the labels, and
wraps the fitted model with its vocabulary and config.json's settings.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.preprocessing import MultiLabelBinarizer

from sotag.data import Split, filter_sources, load_questions, time_split
from sotag.data.validate import ValidationReport
from sotag.tagger.artifacts import ModelConfig
from sotag.tagger.calibration import Calibration, fit_calibration
from sotag.tagger.errors import DataError
from sotag.tagger.kinds import KINDS, kind_class
from sotag.tagger.kinds.base import ModelKind, RunRecord, TrainingQuestions
from sotag.tagger.metrics import (
    Evaluation,
    all_tags_from_scores,
    evaluate,
    expected_calibration_error,
    reliability_bins,
    served_no_tag_share,
)
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
    # The reliability diagram's bins on the evaluation window, of the raw and of the served scores (column `scores`).
    reliability: pd.DataFrame | None = None


def prepare(config: TrainConfig, frame: pd.DataFrame | None = None, report: ValidationReport | None = None) -> Prepared:
    """Load (unless given), filter sources, split by time and pick the vocabulary."""
    if frame is None:
        frame, report = load_questions(config.data)
    frame = filter_sources(frame, config.exclude_sources)
    split = time_split(frame, config.split_date, config.eval_end)
    vocabulary = kind_class(config.vectorizer).vocabulary(split.train["tags"], config)
    return Prepared(frame=frame, report=report, split=split, vocabulary=vocabulary)


def small_data_warnings(config: TrainConfig, prepared: Prepared) -> list[str]:
    """What makes a run's model or figures meaningless, one sentence each (none: nothing to say): tags learned from
    fewer than `min_tag_questions` training questions, an evaluation window of fewer than `min_eval_questions`.
    The run goes on (a first try on a small export is legitimate); it says so."""
    split, vocabulary = prepared.split, prepared.vocabulary
    counts = Counter(tag for tags in split.train["tags"] for tag in set(tags))
    thin = [tag for tag in vocabulary if counts[tag] < config.min_tag_questions]
    out = []
    if thin:
        out.append(
            f"the training window holds {len(split.train)} questions and {len(thin)} of the model's "
            f"{len(vocabulary)} tags are on fewer than {config.min_tag_questions} of them "
            "(--min-tag-questions): too few examples to learn those tags"
        )
    if len(split.evaluation) < config.min_eval_questions:
        out.append(
            f"the evaluation window holds {len(split.evaluation)} questions, fewer than "
            f"{config.min_eval_questions} (train.min_eval_questions): too few for its figures to judge the model"
        )
    return out


@dataclass(frozen=True)
class HeldOut:
    """The newest `validation_share` of the training window, scored by a model of the same kind fitted on the
    rest of it: what the calibration and the served threshold are chosen on (never the evaluation window)."""

    scores: np.ndarray  # the kind's raw scores
    true_tags: list[list[str]]  # every tag each asker chose


def held_out_slice(
    kind: type[ModelKind], config: TrainConfig, train: pd.DataFrame, vocabulary: list[str], mlb: MultiLabelBinarizer
) -> HeldOut:
    """One more fit of the kind, on the older part of the training window; its scores on the newest part."""
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
    return HeldOut(fitted.eval_scores, [list(tags) for tags in newer["tags"]])


@dataclass(frozen=True)
class Serving:
    """How the version serves: its calibration (None: raw scores), threshold and the slice's figures."""

    calibration: Calibration | None
    threshold: float
    choice: ThresholdChoice | None  # None: the configured threshold
    metrics: dict[str, float]  # validation_* figures of the slice


def choose_serving(config: TrainConfig, held_out: HeldOut | None, vocabulary: list[str]) -> Serving:
    """Fit the calibration on the held-out slice (when asked), then choose the served threshold on the calibrated
    slice (when not configured), with the version's min_tags applied as it will be served."""
    if held_out is None:
        return Serving(None, float(config.threshold), None, {})
    calibration = fit_calibration(held_out.scores, vocabulary, held_out.true_tags) if config.calibrate else None
    served = held_out.scores if calibration is None else calibration.apply(held_out.scores)
    metrics = {"validation_ece": expected_calibration_error(served, vocabulary, held_out.true_tags)}
    if config.threshold is not None and not config.choose_threshold:
        return Serving(calibration, float(config.threshold), None, metrics)
    choice = choose_threshold(served, vocabulary, held_out.true_tags, config.top_k, min_tags=config.min_tags)
    metrics |= {"validation_served_f1": choice.served_f1, "validation_no_tag_share": choice.no_tag_share}
    return Serving(calibration, choice.threshold, choice, metrics)


def fit_and_evaluate(config: TrainConfig, prepared: Prepared) -> FitResult:
    """Fit the configuration's model kind on the training window; score the evaluation window."""
    kind = KINDS.get(config.vectorizer)
    if kind is None or not kind.trainable:
        raise DataError(f"vectorizer: unknown kind '{config.vectorizer}'")
    split, vocabulary = prepared.split, prepared.vocabulary
    mlb = MultiLabelBinarizer(classes=vocabulary)
    y_train = mlb.fit_transform(restrict_tags(split.train["tags"], vocabulary))
    y_eval = mlb.transform(restrict_tags(split.evaluation["tags"], vocabulary))
    start = time.perf_counter()
    needs_slice = config.calibrate or config.threshold is None or config.choose_threshold
    held_out = held_out_slice(kind, config, split.train, vocabulary, mlb) if needs_slice else None
    serving = choose_serving(config, held_out, vocabulary)
    serving_s = time.perf_counter() - start
    fitted = kind.fit(
        TrainingQuestions(split.train, y_train, vocabulary),
        TrainingQuestions(split.evaluation, y_eval, vocabulary),
        config,
    )
    model_config = ModelConfig(
        top_k=config.top_k,
        threshold=serving.threshold,
        vectorizer=config.vectorizer,
        vocabulary=vocabulary,
        preprocessing_version=PREPROCESSING_VERSION,
        kind=kind.name,
        options=fitted.model.options,
        calibration=serving.calibration,
        min_tags=min(config.min_tags, config.top_k),
    )
    tagger = Tagger(fitted.model, vocabulary, model_config)
    # What the version serves: the calibrated probabilities (the raw ones kept for the reliability figures).
    raw_scores = fitted.eval_scores
    scores = raw_scores if serving.calibration is None else serving.calibration.apply(raw_scores)
    true_tags = split.evaluation["tags"].tolist()
    threshold, min_tags = model_config.threshold, model_config.min_tags
    evaluation = evaluate(scores, y_eval, vocabulary, config.top_k, threshold, min_tags)
    # What a user gets: every question of the window, scored against every tag its asker chose (tagger.metrics).
    evaluation.metrics.update(all_tags_from_scores(scores, vocabulary, true_tags))
    record = fitted.record
    # What a user sees at the served threshold: the share of evaluation questions given no tag at all, and how far
    # the served scores are from probabilities (before calibration too, for the reliability plot's comparison).
    record.metrics["no_tag_share"] = served_no_tag_share(scores, threshold, min_tags)
    record.metrics["served_threshold"] = threshold
    record.metrics["ece"] = expected_calibration_error(scores, vocabulary, true_tags)
    record.metrics["ece_raw"] = expected_calibration_error(raw_scores, vocabulary, true_tags)
    record.metrics |= serving.metrics
    reliability = pd.concat(
        [
            reliability_bins(raw_scores, vocabulary, true_tags).assign(scores="raw"),
            reliability_bins(scores, vocabulary, true_tags).assign(scores="served"),
        ],
        ignore_index=True,
    )
    if held_out is not None:
        fitted.timings["calibrate_s"] = serving_s
    if serving.choice is not None:
        record.tables["threshold/validation.json"] = serving.choice.table
    return FitResult(
        tagger,
        fitted.reference,
        mlb,
        evaluation,
        scores,
        y_eval,
        fitted.timings,
        fitted.details,
        record,
        reliability,
    )
