"""Fit one configuration on a time split and evaluate it on the later window (no MLflow here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import joblib
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer
from tqdm import tqdm

from tagger.artifacts import ModelConfig
from tagger.data import Split, filter_sources, load_questions, tag_vocabulary, time_split
from tagger.data.split import restrict_tags
from tagger.data.validate import ValidationReport
from tagger.fused import FusedLinearModel
from tagger.metrics import Evaluation, evaluate
from tagger.model import Tagger
from tagger.text import PREPROCESSING_VERSION, clean_question
from tagger.vectorizers import build_vectorizer, slim
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
    ovr: OneVsRestClassifier
    mlb: MultiLabelBinarizer
    evaluation: Evaluation
    eval_scores: np.ndarray
    eval_truth: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


def prepare(config: TrainConfig, frame: pd.DataFrame | None = None, report: ValidationReport | None = None) -> Prepared:
    """Load (unless given), filter sources, split by time and pick the vocabulary."""
    if frame is None:
        frame, report = load_questions(config.data)
    frame = filter_sources(frame, config.exclude_sources)
    split = time_split(frame, config.split_date, config.eval_end)
    vocabulary = tag_vocabulary(split.train["tags"], config.top_n_tags)
    return Prepared(frame=frame, report=report, split=split, vocabulary=vocabulary)


def question_texts(frame: pd.DataFrame, config: TrainConfig) -> list[str]:
    return [
        clean_question(t, b, keep_code=config.keep_code, title_repeat=config.title_repeat)
        for t, b in tqdm(
            zip(frame["title"], frame["body"], strict=True),
            total=len(frame),
            desc="cleaning",
            mininterval=1,
            leave=False,
            disable=None,  # a transient bar: on a terminal only, never interleaved into logs
        )
    ]


def fit_one_vs_rest(
    features: sp.spmatrix | np.ndarray, targets: np.ndarray, C: float, n_jobs: int
) -> OneVsRestClassifier:
    """One logistic regression per tag, fitted on `n_jobs` threads.

    The dual liblinear solver is several times faster than the primal when features
    outnumber questions. Threads (not processes) avoid copying the matrix and the
    read-only memmap failure of process-based OvR with liblinear; the matrix is made
    canonical float64 first so no thread mutates or converts the shared copy.
    """
    dense = not sp.issparse(features)
    if dense:
        features = np.ascontiguousarray(features, dtype=np.float64)
    else:
        features = sp.csr_matrix(features, dtype=np.float64)
        features.sum_duplicates()
    estimator = LogisticRegression(C=C, solver="liblinear", dual=not dense, max_iter=1000)
    ovr = OneVsRestClassifier(estimator, n_jobs=n_jobs)
    with joblib.parallel_backend("threading", n_jobs=n_jobs):
        ovr.fit(features, targets)
    return ovr


def fit_and_evaluate(config: TrainConfig, prepared: Prepared) -> FitResult:
    timings: dict[str, float] = {}
    split, vocabulary = prepared.split, prepared.vocabulary
    mlb = MultiLabelBinarizer(classes=vocabulary)
    y_train = mlb.fit_transform(restrict_tags(split.train["tags"], vocabulary))
    y_eval = mlb.transform(restrict_tags(split.evaluation["tags"], vocabulary))

    start = time.perf_counter()
    train_texts = question_texts(split.train, config)
    eval_texts = question_texts(split.evaluation, config)
    timings["clean_s"] = time.perf_counter() - start

    sbert_cache = str(config.cache_dir / "embeddings.sqlite")
    vectorizer = build_vectorizer(
        config.vectorizer,
        max_features=config.max_features,
        ngram_max=config.ngram_max,
        min_df=config.min_df,
        sbert_cache=sbert_cache,
    )
    start = time.perf_counter()
    x_train = vectorizer.fit_transform(train_texts)
    timings["vectorize_s"] = time.perf_counter() - start

    start = time.perf_counter()
    ovr = fit_one_vs_rest(x_train, y_train, config.C, config.n_jobs)
    timings["fit_s"] = time.perf_counter() - start

    fused = FusedLinearModel.from_one_vs_rest(ovr)
    start = time.perf_counter()
    scores = fused.predict_proba(vectorizer.transform(eval_texts))
    timings["evaluate_s"] = time.perf_counter() - start

    model_config = ModelConfig(
        top_k=config.top_k,
        threshold=config.threshold,
        vectorizer=config.vectorizer,
        vocabulary=vocabulary,
        preprocessing_version=PREPROCESSING_VERSION,
        keep_code=config.keep_code,
        extra={"title_repeat": config.title_repeat},
    )
    tagger = Tagger(slim(vectorizer), fused, vocabulary, model_config)
    evaluation = evaluate(scores, y_eval, vocabulary, config.top_k, config.threshold)
    return FitResult(tagger, ovr, mlb, evaluation, scores, y_eval, timings)
