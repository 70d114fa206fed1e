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
from tagger.ensemble import EnsembleModel, EnsembleVectorizer, combine, head_texts
from tagger.errors import DataError
from tagger.fused import FusedLinearModel
from tagger.metrics import Evaluation, evaluate
from tagger.model import Tagger
from tagger.text import PREPROCESSING_VERSION, clean_question
from tagger.vectorizers import SbertVectorizer, build_vectorizer, slim
from training.config import TrainConfig

ENSEMBLE_REPORTED = ("precision_at_1", "recall_at_5", "f1_at_3", "tag_coverage")


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
    # Model-kind specifics a run records: the ensemble's chosen weight and its validation table.
    details: dict[str, object] = field(default_factory=dict)


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
    if config.vectorizer == "ensemble":
        return fit_ensemble(config, prepared)
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

    tagger = Tagger(slim(vectorizer), fused, vocabulary, _model_config(config, vocabulary))
    evaluation = evaluate(scores, y_eval, vocabulary, config.top_k, config.threshold)
    return FitResult(tagger, ovr, mlb, evaluation, scores, y_eval, timings)


def _model_config(config: TrainConfig, vocabulary: list[str]) -> ModelConfig:
    return ModelConfig(
        top_k=config.top_k,
        threshold=config.threshold,
        vectorizer=config.vectorizer,
        vocabulary=vocabulary,
        preprocessing_version=PREPROCESSING_VERSION,
        keep_code=config.keep_code,
        extra={"title_repeat": config.title_repeat},
    )


def _fit_heads(
    config: TrainConfig, words: list[str], embeddings: np.ndarray, y: np.ndarray
) -> tuple[object, OneVsRestClassifier, FusedLinearModel, FusedLinearModel]:
    """Both heads on the same questions: (tfidf vectorizer, tfidf OvR, fused tfidf head, fused SBERT head)."""
    vectorizer = build_vectorizer(
        "tfidf", max_features=config.max_features, ngram_max=config.ngram_max, min_df=config.min_df, sbert_cache=None
    )
    ovr = fit_one_vs_rest(vectorizer.fit_transform(words), y, config.C, config.n_jobs)
    sbert_ovr = fit_one_vs_rest(embeddings, y, config.sbert_C, config.n_jobs)
    return vectorizer, ovr, FusedLinearModel.from_one_vs_rest(ovr), FusedLinearModel.from_one_vs_rest(sbert_ovr)


def choose_weight(
    config: TrainConfig, vocabulary: list[str], words: np.ndarray, embeddings: np.ndarray, y: np.ndarray
) -> tuple[float, pd.DataFrame]:
    """The TF-IDF weight that scores best (config.ensemble_metric) on the validation slice; the table of all."""
    rows = []
    for weight in np.round(np.arange(0.0, 1.0 + 1e-9, 0.05), 2):
        metrics = evaluate(combine(words, embeddings, weight), y, vocabulary, config.top_k, config.threshold).metrics
        rows.append({"weight": float(weight), **{k: metrics[k] for k in ENSEMBLE_REPORTED}})
    table = pd.DataFrame(rows)
    # Ties go to the weight nearest an even mix: the least committed choice.
    ranked = table.assign(even=(table["weight"] - 0.5).abs()).sort_values(
        [config.ensemble_metric, "even"], ascending=[False, True]
    )
    return float(ranked.iloc[0]["weight"]), table


def fit_ensemble(config: TrainConfig, prepared: Prepared) -> FitResult:
    """TF-IDF head + SBERT head; the fusion weight is chosen without looking at the evaluation window.

    The last `validation_share` of the training window (by time) is held out, both heads are fitted on
    the rest and the weight is chosen on it; then both heads are refitted on the whole training window.
    """
    timings: dict[str, float] = {}
    split, vocabulary = prepared.split, prepared.vocabulary
    mlb = MultiLabelBinarizer(classes=vocabulary)
    train = split.train.sort_values("creation_date", kind="stable").reset_index(drop=True)
    y_train = mlb.fit_transform(restrict_tags(train["tags"], vocabulary))
    y_eval = mlb.transform(restrict_tags(split.evaluation["tags"], vocabulary))

    start = time.perf_counter()
    train_words, train_natural = head_texts(train["title"], train["body"], config.keep_code, config.title_repeat)
    eval_words, eval_natural = head_texts(
        split.evaluation["title"], split.evaluation["body"], config.keep_code, config.title_repeat
    )
    timings["clean_s"] = time.perf_counter() - start

    start = time.perf_counter()
    sbert = SbertVectorizer(cache_path=str(config.cache_dir / "embeddings.sqlite"))
    train_embeddings = sbert.transform(train_natural)
    eval_embeddings = sbert.transform(eval_natural)
    timings["embed_s"] = time.perf_counter() - start

    start = time.perf_counter()
    cut = round(len(train) * (1 - config.validation_share))
    if not 0 < cut < len(train):
        raise DataError(f"validation_share {config.validation_share}: leaves no questions to fit or to validate")
    if config.ensemble_weight is None:
        fit_vectorizer, _, words_head, embeddings_head = _fit_heads(
            config, train_words[:cut], train_embeddings[:cut], y_train[:cut]
        )
        weight, validation = choose_weight(
            config,
            vocabulary,
            words_head.predict_proba(fit_vectorizer.transform(train_words[cut:])),
            embeddings_head.predict_proba(train_embeddings[cut:]),
            y_train[cut:],
        )
    else:
        weight, validation = float(config.ensemble_weight), pd.DataFrame()
    timings["validate_s"] = time.perf_counter() - start

    start = time.perf_counter()
    vectorizer, ovr, words_head, embeddings_head = _fit_heads(config, train_words, train_embeddings, y_train)
    timings["fit_s"] = time.perf_counter() - start

    start = time.perf_counter()
    words_scores = words_head.predict_proba(vectorizer.transform(eval_words))
    embeddings_scores = embeddings_head.predict_proba(eval_embeddings)
    scores = combine(words_scores, embeddings_scores, weight)
    timings["evaluate_s"] = time.perf_counter() - start

    estimator = EnsembleModel(words=words_head, embeddings=embeddings_head, weight=weight)
    ensemble_vectorizer = EnsembleVectorizer(slim(vectorizer), slim(sbert), config.keep_code, config.title_repeat)
    tagger = Tagger(ensemble_vectorizer, estimator, vocabulary, _model_config(config, vocabulary))
    evaluation = evaluate(scores, y_eval, vocabulary, config.top_k, config.threshold)
    details: dict[str, object] = {
        "ensemble_weight": weight,
        "validation": validation,
        "validation_questions": len(train) - cut,
        "heads": {
            "tfidf": evaluate(words_scores, y_eval, vocabulary, config.top_k, config.threshold).metrics,
            "sbert": evaluate(embeddings_scores, y_eval, vocabulary, config.top_k, config.threshold).metrics,
        },
    }
    return FitResult(tagger, ovr, mlb, evaluation, scores, y_eval, timings, details)
