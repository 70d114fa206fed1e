"""The model's tag vocabulary: which tags a model kind learns, ranked reproducibly (ties alphabetical)."""

from __future__ import annotations

from collections import Counter

import pandas as pd


def tag_vocabulary(tags: pd.Series, top_n: int) -> list[str]:
    """The `top_n` most frequent tags, ties broken alphabetically so the order is reproducible."""
    counts = Counter(t for row in tags for t in row)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [tag for tag, _ in ranked[:top_n]]


def tags_with_at_least(tags: pd.Series, min_questions: int) -> list[str]:
    """Every tag on at least `min_questions` questions, most frequent first (ties alphabetical)."""
    counts = Counter(t for row in tags for t in set(row))
    return [t for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_questions]


def head_then_frequent_tags(tags: pd.Series, top_n: int, min_questions: int) -> list[str]:
    """The `top_n` most frequent tags (the head, first, as `tag_vocabulary` ranks them), then every other tag on
    at least `min_questions` questions, most frequent first: the label-tree kind's vocabulary."""
    head = tag_vocabulary(tags, top_n)
    known = set(head)
    return head + [t for t in tags_with_at_least(tags, min_questions) if t not in known]


def restrict_tags(tags: pd.Series, vocabulary: list[str]) -> list[list[str]]:
    """Each row's tags that are in the vocabulary."""
    known = set(vocabulary)
    return [[t for t in row if t in known] for row in tags]
