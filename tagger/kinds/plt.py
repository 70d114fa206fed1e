"""The label-tree kind: thousands of tags, a one-vs-rest head for the most frequent ones and a tree for the rest.

Vocabulary: the `head_tags` most frequent training tags first (columns 0..head_tags-1), then every other tag with
at least `min_tag_questions` training questions, most frequent first. Features: sotag's TF-IDF (the `tfidf`
kind's vectorizer and cleaning). Scores are probabilities: a head tag's is its one-vs-rest logistic regression's
(the default model's head, unchanged), every other tag's is P(tag | question) from a probabilistic label tree over
the whole vocabulary (tagger.label_tree, scored exactly by two sparse products).

`vectorizer.joblib` holds the fitted TF-IDF vectorizer, `estimator.joblib` a `HeadAndTree` (the fused head and
the tree). Explanations: a head tag's logit is broken down into terms (tagger.explain); a tree tag's probability
is a product along its tree path, so it is said, not broken down.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tagger.data.split import tag_vocabulary, tags_with_at_least
from tagger.errors import ArtifactError
from tagger.explain import TagExplanation, linear_explanations
from tagger.fused import FusedLinearModel
from tagger.kinds.base import FitConfig, Fitted, KindOptions, RunRecord, TrainingQuestions
from tagger.kinds.linear import TextFeaturesKind, TextOptions, fit_one_vs_rest
from tagger.label_tree import LabelTree, TreeSettings
from tagger.questions import question_texts
from tagger.vectorizers import slim, tfidf_vectorizer


@dataclass(frozen=True)
class TreeKindOptions(TextOptions):
    """The text options, the number of head tags (one-vs-rest) and the vocabulary's floor (questions per tag)."""

    head_tags: int = 100
    min_tag_questions: int = 5


@dataclass
class HeadAndTree:
    """`head`: the fused one-vs-rest over the first `head.n_tags` columns; `tree`: a LabelTree over all columns."""

    head: FusedLinearModel
    tree: LabelTree

    @property
    def n_tags(self) -> int:
        return self.tree.n_tags

    def scores(self, features: sp.spmatrix) -> np.ndarray:
        """(n, n_tags) probabilities: the tree's, with the head's columns replaced by the head's probabilities."""
        out = self.tree.scores(features)
        out[:, : self.head.n_tags] = self.head.predict_proba(features)
        return out


class TreeKind(TextFeaturesKind):
    """TF-IDF, a one-vs-rest head for the frequent tags and a probabilistic label tree for all of them."""

    name = "plt"
    Options = TreeKindOptions

    @classmethod
    def from_artifacts(cls, vectorizer: object, estimator: object, options: KindOptions) -> TreeKind:
        if not isinstance(estimator, HeadAndTree):
            raise ArtifactError(f"estimator.joblib: a plt model needs a HeadAndTree, got {type(estimator).__name__}")
        return cls(vectorizer, estimator, options)

    @classmethod
    def vocabulary(cls, tags: pd.Series, config: FitConfig) -> list[str]:
        """The top `top_n_tags` tags (the head, first), then every other tag on at least `min_tag_questions`
        questions, most frequent first."""
        head = tag_vocabulary(tags, config.top_n_tags)
        known = set(head)
        return head + [t for t in tags_with_at_least(tags, config.min_tag_questions) if t not in known]

    @classmethod
    def fit(cls, train: TrainingQuestions, evaluation: TrainingQuestions, config: FitConfig) -> Fitted:
        timings: dict[str, float] = {}
        n_head = min(config.top_n_tags, len(train.vocabulary))
        options = TreeKindOptions(
            keep_code=config.keep_code,
            title_repeat=config.title_repeat,
            head_tags=n_head,
            min_tag_questions=config.min_tag_questions,
        )
        start = time.perf_counter()
        train_texts = question_texts(train.titles, train.bodies, options.keep_code, options.title_repeat, True)
        eval_texts = question_texts(evaluation.titles, evaluation.bodies, options.keep_code, options.title_repeat, True)
        timings["clean_s"] = time.perf_counter() - start

        vectorizer = tfidf_vectorizer(
            max_features=config.max_features, ngram_max=config.ngram_max, min_df=config.min_df
        )
        start = time.perf_counter()
        x_train = vectorizer.fit_transform(train_texts)
        timings["vectorize_s"] = time.perf_counter() - start

        start = time.perf_counter()
        ovr = fit_one_vs_rest(x_train, train.y[:, :n_head], config.C, config.n_jobs)
        timings["fit_head_s"] = time.perf_counter() - start
        start = time.perf_counter()
        tree = LabelTree(TreeSettings(threads=config.n_jobs)).fit(x_train, sp.csr_matrix(train.y))
        timings["fit_tree_s"] = time.perf_counter() - start
        timings["fit_s"] = timings["fit_head_s"] + timings["fit_tree_s"]

        estimator = HeadAndTree(FusedLinearModel.from_one_vs_rest(ovr), tree)
        start = time.perf_counter()
        scores = estimator.scores(vectorizer.transform(eval_texts))
        timings["evaluate_s"] = time.perf_counter() - start
        record = RunRecord(
            params={"tree_nodes": tree.n_nodes, "head_tags": n_head, "vocabulary_size": len(train.vocabulary)},
            metrics={"tree_weights_nnz": float(tree.weights.nnz)},
        )
        return Fitted(cls(slim(vectorizer), estimator, options), scores, timings, record=record)

    def explain(
        self, title: str, body: str, tags: Sequence[str], vocabulary: np.ndarray, n_terms: int
    ) -> list[TagExplanation]:
        """Head tags: the one-vs-rest logit broken down into terms. Tree tags: the probability, not broken down
        (a product of node probabilities along the tag's path)."""
        features = self.features.transform(self.texts([title], [body]))
        scores = self.estimator.scores(features)[0]
        head = self.estimator.head
        column = {t: i for i, t in enumerate(vocabulary)}
        in_head = [t for t in tags if column[t] < head.n_tags]
        explained = {
            e.tag: e
            for e in linear_explanations(
                head, features, self.vectorizer.get_feature_names_out(), scores, in_head, vocabulary, n_terms
            )
        }
        out = []
        for tag in tags:
            if tag in explained:
                out.append(explained[tag])
                continue
            p = float(scores[column[tag]])
            logit = float(np.log(max(p, 1e-12) / max(1.0 - p, 1e-12)))
            note = (
                "plt: a label-tree tag; its probability is the product of the node probabilities on its tree "
                "path, not broken down into terms"
            )
            out.append(TagExplanation(tag, p, logit, 0.0, [], logit, note=note))
        return out

    def term_weights(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None  # the head covers only some tags; the tree's weights are per node, not per tag
