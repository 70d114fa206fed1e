"""Why these tags: the exact decomposition of a linear head's logit into its terms.

For a bag-of-words or TF-IDF model a tag's logit is `sum(feature value x weight) + intercept`, so an
explanation needs no sampling (SHAP, as seed 003 used, approximates what is exact here). A head
whose features are not terms (SBERT embeddings) has no such breakdown, and the answer says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tagger.ensemble import EnsembleModel
from tagger.model import Tagger


@dataclass(frozen=True)
class TermContribution:
    term: str
    value: float  # the feature's value for this question (a count or a tf-idf weight)
    weight: float  # the tag's weight for the feature
    contribution: float  # value x weight, in logit units


@dataclass(frozen=True)
class TagExplanation:
    tag: str
    score: float
    logit: float
    intercept: float
    terms: list[TermContribution] = field(default_factory=list)  # the largest contributions, by magnitude
    other_terms: float = 0.0  # the sum of the contributions not listed: intercept + terms + other_terms = logit
    note: str | None = None


def feature_names(tagger: Tagger) -> np.ndarray | None:
    """The vectorizer's terms, or None when its features are not terms (dense embeddings)."""
    names = getattr(tagger.vectorizer, "get_feature_names_out", None)
    if names is None or getattr(tagger.vectorizer, "vocabulary_", None) is None:
        return None
    return names()


def explain(tagger: Tagger, title: str, body: str, tags: list[str], n_terms: int = 10) -> list[TagExplanation]:
    """For each tag, its logit broken down into the question's terms (the `n_terms` largest shown)."""
    features = tagger.featurize([title], [body])
    scores = tagger.estimator.scores(features)[0]
    # An ensemble's TF-IDF head is broken down; its SBERT head's share is said, not broken down.
    estimator, head_note = tagger.estimator, None
    if isinstance(estimator, EnsembleModel):
        w = estimator.weight
        head_note = (
            f"ensemble: score = {w:.2f} x the TF-IDF head's probability (its logit is broken down here) + "
            f"{1 - w:.2f} x the SBERT head's (embeddings, not broken down)"
        )
        estimator, features = estimator.words, features.words
    logits = estimator.decision_function(features)[0]
    column = {t: i for i, t in enumerate(tagger.vocabulary)}
    names = feature_names(tagger)
    row = sp.csr_matrix(features) if names is not None else None
    out = []
    for tag in tags:
        j = column[tag]
        logit, intercept = float(logits[j]), float(estimator.bias[j])
        if row is None:
            note = f"{tagger.config.vectorizer}: the features are embeddings, not terms; their share is not broken down"
            out.append(
                TagExplanation(tag, float(scores[j]), logit, intercept, other_terms=logit - intercept, note=note)
            )
            continue
        weights = estimator.weights[row.indices, j].astype(np.float64)
        contributions = row.data * weights
        order = np.argsort(-np.abs(contributions), kind="stable")[:n_terms]
        terms = [
            TermContribution(str(names[row.indices[k]]), float(row.data[k]), float(weights[k]), float(contributions[k]))
            for k in order
        ]
        listed = float(contributions[order].sum())
        rest = logit - intercept - listed
        out.append(TagExplanation(tag, float(scores[j]), logit, intercept, terms, rest, note=head_note))
    return out


def top_terms_per_tag(tagger: Tagger, n_terms: int = 20) -> pd.DataFrame | None:
    """The terms with the largest positive weight for each tag (a training run logs it), or None for embeddings."""
    names = feature_names(tagger)
    if names is None:
        return None
    head = tagger.estimator.words if isinstance(tagger.estimator, EnsembleModel) else tagger.estimator
    weights = head.weights
    rows = []
    for j, tag in enumerate(tagger.vocabulary):
        best = np.argsort(-weights[:, j], kind="stable")[:n_terms]
        rows += [
            {"tag": tag, "rank": r + 1, "term": names[i], "weight": round(float(weights[i, j]), 5)}
            for r, i in enumerate(best)
            if weights[i, j] > 0
        ]
    return pd.DataFrame(rows, columns=["tag", "rank", "term", "weight"])
