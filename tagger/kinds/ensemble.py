"""The ensemble kind: a TF-IDF head and an SBERT head, their probabilities averaged.

The two heads make different mistakes (words vs meaning), so a weighted mean of their per-tag
probabilities ranks better than either. It stays inside the four-artifact contract:
`vectorizer.joblib` holds an `EnsembleVectorizer` (the fitted TF-IDF vectorizer and the SBERT
settings; the SBERT weights come from the installed package), `estimator.joblib` an
`EnsembleModel` (both fused heads and the TF-IDF weight). Scores are probabilities in [0, 1].

The fusion weight is chosen on the newest `validation_share` of the training window, never on the
evaluation window; then both heads are refitted on the whole training window.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sotag.tagger.compiled import compile_vectorizer
from sotag.tagger.errors import ArtifactError, DataError
from sotag.tagger.explain import TagExplanation, linear_explanations
from sotag.tagger.fused import FusedLinearModel
from sotag.tagger.kinds.base import FitConfig, Fitted, KindOptions, ModelKind, RunRecord, TrainingQuestions
from sotag.tagger.kinds.linear import TextOptions, fit_one_vs_rest
from sotag.tagger.metrics import evaluate
from sotag.tagger.questions import repeated_and_natural
from sotag.tagger.text import PREPROCESSING_VERSION
from sotag.tagger.vectorizers import SBERT_REQUIREMENTS, SbertVectorizer, slim, tfidf_vectorizer

# What the run records of each head and of every candidate weight.
RAW_THRESHOLD = 0.3  # sotag's served threshold before calibration
REPORTED = ("precision_at_1", "recall_at_5", "f1_at_3", "tag_coverage")


@dataclass(frozen=True)
class EnsembleFeatures:
    words: sp.spmatrix  # the TF-IDF head's features
    embeddings: np.ndarray  # the SBERT head's features


class EnsembleVectorizer:
    """The fitted TF-IDF vectorizer and the SBERT vectorizer, applied to (title, body) pairs."""

    def __init__(self, tfidf: object, sbert: object, keep_code: bool = True, title_repeat: int = 2) -> None:
        self.tfidf = tfidf
        self.sbert = sbert
        self.keep_code = keep_code
        self.title_repeat = title_repeat

    def transform_questions(
        self, titles: Sequence[str], bodies: Sequence[str], version: str = PREPROCESSING_VERSION
    ) -> EnsembleFeatures:
        """Both heads' features, the questions cleaned under preprocessing `version` (the model's)."""
        words, natural = repeated_and_natural(titles, bodies, self.keep_code, self.title_repeat, version)
        return EnsembleFeatures(self.tfidf.transform(words), self.sbert.transform(natural))

    def compiled(self) -> EnsembleVectorizer:
        """The same, with the TF-IDF transform compiled (tagger.compiled); built at load time, never saved."""
        return EnsembleVectorizer(compile_vectorizer(self.tfidf), self.sbert, self.keep_code, self.title_repeat)

    def get_feature_names_out(self) -> np.ndarray:
        """The TF-IDF head's terms (the SBERT head has none)."""
        return self.tfidf.get_feature_names_out()

    @property
    def vocabulary_(self) -> dict[str, int]:
        return self.tfidf.vocabulary_


@dataclass
class EnsembleModel:
    """`weight` x TF-IDF head + (1 - weight) x SBERT head, on probabilities."""

    words: FusedLinearModel
    embeddings: FusedLinearModel
    weight: float  # on the TF-IDF head, chosen on a validation slice of the training window

    @property
    def n_tags(self) -> int:
        return self.words.n_tags

    def scores(self, features: EnsembleFeatures) -> np.ndarray:
        return combine(
            self.words.predict_proba(features.words), self.embeddings.predict_proba(features.embeddings), self.weight
        )


def combine(words: np.ndarray, embeddings: np.ndarray, weight: float) -> np.ndarray:
    """The ensemble's probability: the weighted mean of the two heads' probabilities."""
    return weight * words + (1.0 - weight) * embeddings


def heads_threshold(config: Any) -> float:
    """The threshold of the heads' and the weights' served figures (f1_micro…), on raw scores: the configured one,
    else RAW_THRESHOLD (the served threshold is chosen later, on calibrated scores: training.fit)."""
    return RAW_THRESHOLD if config.threshold is None else float(config.threshold)


def choose_weight(
    config: Any, vocabulary: list[str], words: np.ndarray, embeddings: np.ndarray, y: np.ndarray
) -> tuple[float, pd.DataFrame]:
    """The TF-IDF weight that scores best (config.ensemble_metric) on the validation slice; the table of all."""
    rows = []
    for weight in np.round(np.arange(0.0, 1.0 + 1e-9, 0.05), 2):
        scores = combine(words, embeddings, weight)
        metrics = evaluate(scores, y, vocabulary, config.top_k, heads_threshold(config)).metrics
        rows.append({"weight": float(weight), **{k: metrics[k] for k in REPORTED}})
    table = pd.DataFrame(rows)
    # Ties go to the weight nearest an even mix: the least committed choice.
    ranked = table.assign(even=(table["weight"] - 0.5).abs()).sort_values(
        [config.ensemble_metric, "even"], ascending=[False, True]
    )
    return float(ranked.iloc[0]["weight"]), table


def _fit_heads(
    config: Any, words: list[str], embeddings: np.ndarray, y: np.ndarray
) -> tuple[object, object, FusedLinearModel, FusedLinearModel]:
    """Both heads on the same questions: (tfidf vectorizer, tfidf OvR, fused tfidf head, fused SBERT head)."""
    vectorizer = tfidf_vectorizer(max_features=config.max_features, ngram_max=config.ngram_max, min_df=config.min_df)
    ovr = fit_one_vs_rest(vectorizer.fit_transform(words), y, config.C, config.n_jobs)
    sbert_ovr = fit_one_vs_rest(embeddings, y, config.sbert_C, config.n_jobs)
    return vectorizer, ovr, FusedLinearModel.from_one_vs_rest(ovr), FusedLinearModel.from_one_vs_rest(sbert_ovr)


def _record(details: dict[str, Any]) -> RunRecord:
    """The chosen weight, the validation table (the weight was chosen there, never on the evaluation window)
    and each head's evaluation figures."""
    record = RunRecord(
        params={"ensemble_weight_chosen": details["ensemble_weight"]},
        metrics={"validation_questions": float(details["validation_questions"])},
    )
    validation = details["validation"]
    if len(validation):
        chosen = validation[validation["weight"] == details["ensemble_weight"]].iloc[0]
        record.metrics |= {f"validation_{k}": float(v) for k, v in chosen.items() if k != "weight"}
        record.tables["ensemble/validation.json"] = validation
    for head, metrics in details["heads"].items():
        record.metrics |= {f"{head}_head_{k}": float(metrics[k]) for k in ("precision_at_1", "recall_at_5", "f1_at_3")}
    return record


class EnsembleKind(ModelKind):
    """TF-IDF head + SBERT head."""

    name = "ensemble"
    Options = TextOptions
    requirements = SBERT_REQUIREMENTS

    def __init__(self, vectorizer: EnsembleVectorizer, estimator: EnsembleModel, options: TextOptions) -> None:
        self.vectorizer = vectorizer
        self.estimator = estimator
        self.options = options
        self.features = vectorizer.compiled()

    @classmethod
    def from_artifacts(cls, vectorizer: object, estimator: object, options: KindOptions) -> EnsembleKind:
        if not isinstance(estimator, EnsembleModel):
            raise ArtifactError(
                f"estimator.joblib: an ensemble model needs an EnsembleModel, got {type(estimator).__name__}"
            )
        if not isinstance(vectorizer, EnsembleVectorizer):
            raise ArtifactError(
                f"vectorizer.joblib: an ensemble model needs an EnsembleVectorizer, got {type(vectorizer).__name__}"
            )
        return cls(vectorizer, estimator, options)

    @classmethod
    def embedded_texts(cls, frame: pd.DataFrame, config: Any) -> list[str]:
        return repeated_and_natural(frame["title"], frame["body"], config.keep_code, config.title_repeat)[1]

    @classmethod
    def fit(cls, train: TrainingQuestions, evaluation: TrainingQuestions, config: FitConfig) -> Fitted:
        cfg: Any = config
        timings: dict[str, float] = {}
        vocabulary = train.vocabulary
        order = np.argsort(train.frame["creation_date"].to_numpy(), kind="stable")  # by time: validation is newest
        frame = train.frame.iloc[order].reset_index(drop=True)
        y_train = train.y[order]

        start = time.perf_counter()
        train_words, train_natural = repeated_and_natural(
            frame["title"], frame["body"], cfg.keep_code, cfg.title_repeat
        )
        eval_words, eval_natural = repeated_and_natural(
            evaluation.frame["title"], evaluation.frame["body"], cfg.keep_code, cfg.title_repeat
        )
        timings["clean_s"] = time.perf_counter() - start

        start = time.perf_counter()
        sbert = SbertVectorizer(cache_path=str(cfg.cache_dir / "embeddings.sqlite"))
        train_embeddings = sbert.transform(train_natural)
        eval_embeddings = sbert.transform(eval_natural)
        timings["embed_s"] = time.perf_counter() - start

        start = time.perf_counter()
        cut = round(len(frame) * (1 - cfg.validation_share))
        if not 0 < cut < len(frame):
            raise DataError(f"validation_share {cfg.validation_share}: leaves no questions to fit or to validate")
        if cfg.ensemble_weight is None:
            fit_vectorizer, _, words_head, embeddings_head = _fit_heads(
                cfg, train_words[:cut], train_embeddings[:cut], y_train[:cut]
            )
            weight, validation = choose_weight(
                cfg,
                vocabulary,
                words_head.predict_proba(fit_vectorizer.transform(train_words[cut:])),
                embeddings_head.predict_proba(train_embeddings[cut:]),
                y_train[cut:],
            )
        else:
            weight, validation = float(cfg.ensemble_weight), pd.DataFrame()
        timings["validate_s"] = time.perf_counter() - start

        start = time.perf_counter()
        vectorizer, ovr, words_head, embeddings_head = _fit_heads(cfg, train_words, train_embeddings, y_train)
        timings["fit_s"] = time.perf_counter() - start

        start = time.perf_counter()
        words_scores = words_head.predict_proba(vectorizer.transform(eval_words))
        embeddings_scores = embeddings_head.predict_proba(eval_embeddings)
        scores = combine(words_scores, embeddings_scores, weight)
        timings["evaluate_s"] = time.perf_counter() - start

        estimator = EnsembleModel(words=words_head, embeddings=embeddings_head, weight=weight)
        ensemble_vectorizer = EnsembleVectorizer(slim(vectorizer), slim(sbert), cfg.keep_code, cfg.title_repeat)
        model = cls(ensemble_vectorizer, estimator, TextOptions(keep_code=cfg.keep_code, title_repeat=cfg.title_repeat))
        y_eval, k, threshold = evaluation.y, cfg.top_k, heads_threshold(cfg)
        details: dict[str, object] = {
            "ensemble_weight": weight,
            "validation": validation,
            "validation_questions": len(frame) - cut,
            "heads": {
                "tfidf": evaluate(words_scores, y_eval, vocabulary, k, threshold).metrics,
                "sbert": evaluate(embeddings_scores, y_eval, vocabulary, k, threshold).metrics,
            },
        }
        return Fitted(model, scores, timings, details, reference=ovr, record=_record(details))

    @property
    def n_tags(self) -> int:
        return self.estimator.n_tags

    def scores(self, titles: Sequence[str], bodies: Sequence[str]) -> np.ndarray:
        return self.estimator.scores(self.features.transform_questions(titles, bodies, self.preprocessing_version))

    def explain(
        self, title: str, body: str, tags: Sequence[str], vocabulary: np.ndarray, n_terms: int
    ) -> list[TagExplanation]:
        """The TF-IDF head is broken down; the SBERT head's share is said, not broken down."""
        features = self.features.transform_questions([title], [body], self.preprocessing_version)
        scores = self.estimator.scores(features)[0]
        w = self.estimator.weight
        note = (
            f"ensemble: score = {w:.2f} x the TF-IDF head's probability (its logit is broken down here) + "
            f"{1 - w:.2f} x the SBERT head's (embeddings, not broken down)"
        )
        names = self.vectorizer.get_feature_names_out()
        return linear_explanations(self.estimator.words, features.words, names, scores, tags, vocabulary, n_terms, note)

    def term_weights(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self.vectorizer.get_feature_names_out(), self.estimator.words.weights
