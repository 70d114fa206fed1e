"""The label-tree kind: thousands of tags, label trees over all of them and a one-vs-rest head for the most frequent.

Vocabulary: the `head_tags` most frequent training tags first (columns 0..head_tags-1), then every other tag with
at least `min_tag_questions` training questions, most frequent first. Features: sotag's TF-IDF (the `tfidf`
kind's vectorizer and cleaning). Scores in [0, 1]: every tag's from `TREES` Parabel-style label trees over the
whole vocabulary (tagger.label_tree, scored exactly by stacked sparse products, averaged over the trees); a head
tag's is the geometric mean of that and its one-vs-rest logistic regression's probability (the default model's
head). Measured on the shared split (docs/benchmarks.md, `python -m bench.candidates`): with the head, two trees
reach all-tags F1@3 0.484 and three 0.486, at twice the one-vs-rest default's fit time (the budget) instead of 1.8
times; the geometric mean scored 0.487 where the first `plt`'s rule (the head's probability replacing the trees' score)
scored 0.484 (two trees, prune 0.1). Last, the tags a question names are raised by how often naming them meant
carrying them in the training window (tagger.mentions): all-tags F1@3 0.484 -> 0.514, P@1 0.698 -> 0.730.

`vectorizer.joblib` holds the fitted TF-IDF vectorizer, `estimator.joblib` a `HeadAndTree` (the fused head, the
trees and the tag mentions). Explanations: a head tag's logit is broken down into terms (tagger.explain); a tree
tag's score is a product along its tree paths, so it is said, not broken down.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sotag.tagger.compiled import CompiledVectorizer
from sotag.tagger.errors import ArtifactError
from sotag.tagger.explain import TagExplanation, linear_explanations
from sotag.tagger.fused import FusedLinearModel, sigmoid
from sotag.tagger.kinds.base import FitConfig, Fitted, KindOptions, RunRecord, TrainingQuestions
from sotag.tagger.kinds.linear import TextFeaturesKind, TextOptions, fit_one_vs_rest
from sotag.tagger.label_tree import LabelTree, RowScorer, TreeSettings
from sotag.tagger.mentions import ByteMentions, TagMentions, byte_tokens
from sotag.tagger.questions import question_texts, texts_and_title_prefixes, titles_and_bodies
from sotag.tagger.vectorizers import slim, tfidf_vectorizer
from sotag.tagger.vocabulary import head_then_frequent_tags


@dataclass(frozen=True)
class TreeKindOptions(TextOptions):
    """The text options, the number of head tags (one-vs-rest) and the vocabulary's floor (questions per tag)."""

    head_tags: int = 100
    min_tag_questions: int = 5


# The label trees the kind fits, their nodes' C and the weights pruned (below 0.2: half the weights of Parabel's 0.1,
# batch scoring twice as fast, all-tags F1@3 0.001 lower); Parabel's settings otherwise (tagger.label_tree).
TREES = 2
TREE_C = 3.0
TREE_PRUNE = 0.2

COMBINATIONS = ("geometric", "replace")


def tree_settings(threads: int, **overrides: object) -> TreeSettings:
    """The kind's label-tree settings (`TREES`, `TREE_C`, `TREE_PRUNE`) fitted on `threads`, with `overrides`
    (a benchmark's variations) on top."""
    return TreeSettings(**{"threads": threads, "n_trees": TREES, "C": TREE_C, "prune": TREE_PRUNE, **overrides})


@dataclass
class HeadAndTree:
    """`head`: the fused one-vs-rest over the first `head.n_tags` columns; `tree`: a LabelTree (one or several
    trees) over all columns; `combine`: how a head column's score is made, "geometric" (the geometric mean of the
    head's probability and the trees' score) or "replace" (the head's probability alone: what models saved before
    `combine` existed did, and still do when loaded); `mentions`: the tag-mention evidence the kind raises the
    scores by, from the question's text (`TreeKind.scores`), or None."""

    head: FusedLinearModel
    tree: LabelTree
    combine: str = "replace"
    # Raises the scores of the tags a question names (tagger.mentions); None in models saved before it existed.
    mentions: TagMentions | None = None

    def __post_init__(self) -> None:
        if self.combine not in COMBINATIONS:
            raise ValueError(f"combine: {self.combine!r}; one of {', '.join(COMBINATIONS)}")

    @property
    def n_tags(self) -> int:
        return self.tree.n_tags

    def scores(self, features: sp.spmatrix) -> np.ndarray:
        """(n, n_tags) scores in [0, 1]: the trees', with the head's columns combined with (or replaced by) the
        head's probabilities."""
        return self.combined(self.head.predict_proba(features), self.tree.scores(features))

    def combined(self, head: np.ndarray, trees: np.ndarray) -> np.ndarray:
        """The (n, n_tags) scores from the head's (n, head.n_tags) probabilities and the trees' (n, n_tags)
        scores; `trees` is overwritten and returned."""
        n = self.head.n_tags
        if self.combine == "geometric":
            trees[:, :n] = np.sqrt(head * trees[:, :n])
        else:
            trees[:, :n] = head
        return trees

    def raised(
        self, scores: np.ndarray, titles: Sequence[str], texts: Sequence[str], title_repeat: int, version: str
    ) -> np.ndarray:
        """`scores` raised in place by the tag mentions in the questions' cleaned `texts` (`question_texts` with
        `title_repeat` under preprocessing `version`; the raw `titles` are recleaned alone to find where each body
        starts); unchanged without mentions."""
        if self.mentions is None:
            return scores
        return self.mentions.raise_scores(scores, *titles_and_bodies(titles, texts, title_repeat, version))


class FusedScorer:
    """`TreeKind.reference_scores` in one pass, the same numbers bit for bit (a test holds them equal on every
    batch size): what a served plt model scores questions with. Derived from a loaded model, never saved.

    Written by hand because the reference's steps each redo part of the one before: the mentions re-clean every
    title and re-split every text into tokens the vectorizer had split already, the features become a scipy
    matrix twice (every step validates it), and a few questions' trees pay for batch machinery. Here each title is
    cleaned once (with its prefix, tagger.text.question_and_title), each text is split once and its tokens serve
    the features and the mentions (an ASCII text's tokens are its title's, `title_repeat` times, then its body's),
    the head and the trees read the CSR arrays (FusedLinearModel.row_logits, label_tree.RowScorer) and the
    mentions match tokens (tagger.mentions.ByteMentions)."""

    def __init__(self, features: CompiledVectorizer, estimator: HeadAndTree) -> None:
        self.features = features
        self.estimator = estimator
        self.head = estimator.head
        self.rows = RowScorer(estimator.tree)
        mentions = estimator.mentions
        self.mentions = None if mentions is None else ByteMentions(mentions)
        # The vectorizer's tokens are the mentions' (sotag's pattern on lower-cased text): an ASCII text's are reused.
        self.shared_tokens = features.ascii_fast

    @classmethod
    def of(cls, features: object, estimator: HeadAndTree) -> FusedScorer | None:
        """The fused scorer of a model, or None where the reference path serves (a vectorizer that is not compiled
        or has n-grams longer than bigrams, a tree RowScorer does not take)."""
        if not isinstance(features, CompiledVectorizer) or features.max_n > 2 or estimator.tree.weights is None:
            return None
        try:
            return cls(features, estimator)
        except ValueError:
            return None

    def scores(
        self, titles: Sequence[str], bodies: Sequence[str], keep_code: bool, title_repeat: int, version: str
    ) -> np.ndarray:
        """(n, n_tags) scores: `TreeKind.reference_scores(titles, bodies)` under these text options."""
        texts, prefixes = texts_and_title_prefixes(titles, bodies, keep_code, title_repeat, version)
        tokens = [self.features.tokens(t) for t in texts]
        data, indices, indptr = self.features.weigh(*self.features.counts(tokens))
        if len(texts) == 1:
            head = sigmoid(self.head.row_logits(data, indices))
        else:
            head = self.head.predict_proba(self.features.to_csr((data, indices, indptr)))
        scores = self.estimator.combined(head, self.rows.scores(data, indices, indptr))
        if self.mentions is None:
            return scores
        repeat = max(title_repeat, 1)
        title_tokens, body_tokens = [], []
        for text, prefix, words in zip(texts, prefixes, tokens, strict=True):
            # titles_and_bodies' split: the title is the prefix less its " . ", the body what follows the prefixes.
            title = byte_tokens(prefix[:-3])
            title_tokens.append(title)
            if self.shared_tokens and text.isascii():
                body_tokens.append(words[len(title) * repeat :])
            else:
                body_tokens.append(byte_tokens(text[len(prefix) * repeat :]))
        return self.mentions.raise_scores(scores, title_tokens, body_tokens)


class TreeKind(TextFeaturesKind):
    """TF-IDF, a one-vs-rest head for the frequent tags and a probabilistic label tree for all of them."""

    name = "plt"
    Options = TreeKindOptions

    def __init__(self, vectorizer: object, estimator: HeadAndTree, options: TreeKindOptions) -> None:
        super().__init__(vectorizer, estimator, options)
        self.fused_scorer()  # derived when the model loads: the first question pays nothing for it

    def fused_scorer(self) -> FusedScorer | None:
        """The model's FusedScorer (None: the reference path serves), derived again if its parts were replaced."""
        estimator = self.estimator
        parts = (self.features, estimator, estimator.head, estimator.tree, estimator.mentions)
        cached = self.__dict__.get("_fused")
        if cached is None or any(a is not b for a, b in zip(cached[0], parts, strict=True)):
            cached = self._fused = (parts, FusedScorer.of(self.features, estimator))
        return cached[1]

    @classmethod
    def from_artifacts(cls, vectorizer: object, estimator: object, options: KindOptions) -> TreeKind:
        if not isinstance(estimator, HeadAndTree):
            raise ArtifactError(f"estimator.joblib: a plt model needs a HeadAndTree, got {type(estimator).__name__}")
        return cls(vectorizer, estimator, options)

    def scores(self, titles: Sequence[str], bodies: Sequence[str]) -> np.ndarray:
        """The estimator's scores of the cleaned texts, raised where the question names a tag (tagger.mentions):
        `reference_scores`' numbers, by the fused scorer where the model has one."""
        fused = self.fused_scorer()
        if fused is None:
            return self.reference_scores(titles, bodies)
        options = self.options
        return fused.scores(titles, bodies, options.keep_code, options.title_repeat, self.preprocessing_version)

    def reference_scores(self, titles: Sequence[str], bodies: Sequence[str]) -> np.ndarray:
        """`scores` step by step: the cleaned texts, their features, the estimator's scores, the mentions."""
        texts = self.texts(titles, bodies)
        scores = self.estimator.scores(self.features.transform(texts))
        return self.raised(scores, titles, texts)

    def raised(self, scores: np.ndarray, titles: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """`scores` raised in place by the tag mentions in the questions' cleaned `texts` (HeadAndTree.raised, under
        the model's text options and preprocessing)."""
        return self.estimator.raised(scores, titles, texts, self.options.title_repeat, self.preprocessing_version)

    @classmethod
    def vocabulary(cls, tags: pd.Series, config: FitConfig) -> list[str]:
        """The top `top_n_tags` tags (the head, first), then every other tag on at least `min_tag_questions`
        questions, most frequent first."""
        return head_then_frequent_tags(tags, config.top_n_tags, config.min_tag_questions)

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
        settings = tree_settings(config.n_jobs)
        tree = LabelTree(settings).fit(x_train, sp.csr_matrix(train.y))
        timings["fit_tree_s"] = time.perf_counter() - start
        timings["fit_s"] = timings["fit_head_s"] + timings["fit_tree_s"]

        start = time.perf_counter()
        title_texts, body_texts = titles_and_bodies(train.titles, train_texts, options.title_repeat)
        mentions = TagMentions.fit(train.vocabulary, title_texts, body_texts, train.y)
        timings["fit_mentions_s"] = time.perf_counter() - start
        timings["fit_s"] += timings["fit_mentions_s"]

        estimator = HeadAndTree(FusedLinearModel.from_one_vs_rest(ovr), tree, combine="geometric", mentions=mentions)
        model = cls(slim(vectorizer), estimator, options)
        start = time.perf_counter()
        scores = model.raised(estimator.scores(vectorizer.transform(eval_texts)), evaluation.titles, eval_texts)
        timings["evaluate_s"] = time.perf_counter() - start
        record = RunRecord(
            params={
                "tree_nodes": tree.n_nodes,
                "trees": settings.n_trees,
                "tree_loss": settings.loss,
                "tree_max_leaves": settings.max_leaves,
                "tree_C": settings.C,
                "head_tags": n_head,
                "head_combine": estimator.combine,
                "vocabulary_size": len(train.vocabulary),
                "mention_title_weight": mentions.title_weight,
                "mention_body_weight": mentions.body_weight,
            },
            metrics={"tree_weights_nnz": float(tree.weights.nnz)},
        )
        return Fitted(model, scores, timings, record=record)

    def explain(
        self, title: str, body: str, tags: Sequence[str], vocabulary: np.ndarray, n_terms: int
    ) -> list[TagExplanation]:
        """Head tags: the one-vs-rest logit broken down into terms (the score beside it: what the model ranks
        by, with the trees' share said in the note when the two are combined). Tree tags: the score, not broken
        down (a product of node scores along the tag's path in each tree, averaged over the trees). A tag the
        question names has the score it ranks by, and the note says from what the mention raised it."""
        texts = self.texts([title], [body])
        features = self.features.transform(texts)
        head = self.estimator.head
        trees = self.estimator.tree.scores(features)  # once: the combined score and the note both need it
        tree_scores = trees[0].copy()
        combined = self.estimator.combined(head.predict_proba(features), trees)
        before = combined[0].copy()
        scores = self.raised(combined, [title], texts)[0]
        column = {t: i for i, t in enumerate(vocabulary)}
        in_head = [t for t in tags if column[t] < head.n_tags]
        geometric = self.estimator.combine == "geometric"

        def mention_note(tag: str) -> str:
            j = column[tag]
            if scores[j] <= before[j]:
                return ""
            return f"; the question names the tag, which raised the score from {before[j]:.4f} (tagger.mentions)"

        explained = {}
        for e in linear_explanations(
            head, features, self.vectorizer.get_feature_names_out(), scores, in_head, vocabulary, n_terms
        ):
            if geometric:
                e = replace(
                    e,
                    note=(
                        f"plt: the score is the geometric mean of this logit's probability "
                        f"({1.0 / (1.0 + np.exp(-e.logit)):.4f}, one-vs-rest head) and the label trees' score "
                        f"({float(tree_scores[column[e.tag]]):.4f})" + mention_note(e.tag)
                    ),
                )
            elif mention_note(e.tag):
                e = replace(e, note="plt: " + mention_note(e.tag)[2:])
            explained[e.tag] = e
        out = []
        for tag in tags:
            if tag in explained:
                out.append(explained[tag])
                continue
            p = float(scores[column[tag]])
            logit = float(np.log(max(p, 1e-12) / max(1.0 - p, 1e-12)))
            note = (
                "plt: a label-tree tag; its score is the product of the node scores on its tree path (averaged "
                "over the trees), not broken down into terms" + mention_note(tag)
            )
            out.append(TagExplanation(tag, p, logit, 0.0, [], logit, note=note))
        return out

    def term_weights(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None  # the head covers only some tags; the tree's weights are per node, not per tag
