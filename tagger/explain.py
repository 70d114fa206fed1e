"""Why these tags: the exact decomposition of a linear head's logit into its terms.

For a bag-of-words or TF-IDF model a tag's logit is `sum(feature value x weight) + intercept`, so an
explanation needs no sampling (SHAP, as seed 003 used, approximates what is exact here). A head
whose features are not terms (SBERT embeddings) has no such breakdown, and the answer says so; a model
kind with no linear head raises `NotExplainable` (tagger.kinds.base).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    from sotag.tagger.fused import FusedLinearModel
    from sotag.tagger.model import Tagger


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


def linear_explanations(
    head: FusedLinearModel,
    features: sp.spmatrix | np.ndarray,
    names: np.ndarray | None,
    scores: np.ndarray,
    tags: Sequence[str],
    vocabulary: np.ndarray,
    n_terms: int,
    note: str | None = None,
    embeddings_note: str = "",
) -> list[TagExplanation]:
    """One question's tags through a linear `head`: its logit = intercept + the terms' contributions.

    `features` is the head's (1, n_features) row, `names` its terms (None: embeddings, not broken down, and
    `embeddings_note` says so), `scores` the model's (n_tags,) scores, `note` a remark added to every tag.
    """
    logits = head.decision_function(features)[0]
    column = {t: i for i, t in enumerate(vocabulary)}
    row = sp.csr_matrix(features) if names is not None else None
    out = []
    for tag in tags:
        j = column[tag]
        logit, intercept = float(logits[j]), float(head.bias[j])
        if row is None:
            out.append(
                TagExplanation(
                    tag, float(scores[j]), logit, intercept, other_terms=logit - intercept, note=embeddings_note
                )
            )
            continue
        weights = head.weights[row.indices, j].astype(np.float64)
        contributions = row.data * weights
        order = np.argsort(-np.abs(contributions), kind="stable")[:n_terms]
        terms = [
            TermContribution(str(names[row.indices[k]]), float(row.data[k]), float(weights[k]), float(contributions[k]))
            for k in order
        ]
        listed = float(contributions[order].sum())
        rest = logit - intercept - listed
        out.append(TagExplanation(tag, float(scores[j]), logit, intercept, terms, rest, note=note))
    return out


def explain(tagger: Tagger, title: str, body: str, tags: list[str], n_terms: int = 10) -> list[TagExplanation]:
    """For each tag, its logit broken down into the question's terms (the `n_terms` largest shown).

    Raises NotExplainable for a model kind that has no linear head.
    """
    return tagger.model.explain(title, body, tags, tagger.vocabulary, n_terms)


def top_terms_per_tag(tagger: Tagger, n_terms: int = 20) -> pd.DataFrame | None:
    """The terms with the largest positive weight for each tag (a training run logs it), or None without terms."""
    found = tagger.model.term_weights()
    if found is None:
        return None
    names, weights = found
    rows = []
    for j, tag in enumerate(tagger.vocabulary):
        best = np.argsort(-weights[:, j], kind="stable")[:n_terms]
        rows += [
            {"tag": tag, "rank": r + 1, "term": names[i], "weight": round(float(weights[i, j]), 5)}
            for r, i in enumerate(best)
            if weights[i, j] > 0
        ]
    return pd.DataFrame(rows, columns=["tag", "rank", "term", "weight"])
