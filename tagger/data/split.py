"""Time-based train/evaluation split, source filtering and the tag vocabulary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from tagger.errors import DataError

# The topic-specific subsets of the shared data (see its SOURCES.md): Rx* and PyTorch dumps.
TOPIC_SPECIFIC_SOURCES = ("carloszimm/so-mining-msr22", "pankaj90382/END-1.0")


@dataclass(frozen=True)
class Split:
    """Questions before `cutoff` train the model; those from `cutoff` (to `eval_end`) evaluate it."""

    train: pd.DataFrame
    evaluation: pd.DataFrame
    cutoff: pd.Timestamp


def parse_sources(text: str) -> tuple[str, ...]:
    """`--exclude-sources` as given on a command line: comma-separated prefixes, or 'topic-specific'."""
    exclude = tuple(s for s in text.split(",") if s)
    return TOPIC_SPECIFIC_SOURCES if exclude == ("topic-specific",) else exclude


def filter_sources(frame: pd.DataFrame, exclude: tuple[str, ...]) -> pd.DataFrame:
    """Drop rows whose `source` starts with any of the given prefixes."""
    if not exclude:
        return frame
    mask = frame["source"].str.startswith(tuple(exclude))
    return frame[~mask].reset_index(drop=True)


def time_split(frame: pd.DataFrame, cutoff: str | pd.Timestamp, eval_end: str | pd.Timestamp | None = None) -> Split:
    """Split on creation date; both sides must be non-empty."""
    cutoff_ts = pd.Timestamp(cutoff)
    train = frame[frame["creation_date"] < cutoff_ts].reset_index(drop=True)
    evaluation = frame[frame["creation_date"] >= cutoff_ts]
    if eval_end is not None:
        evaluation = evaluation[evaluation["creation_date"] < pd.Timestamp(eval_end)]
    evaluation = evaluation.reset_index(drop=True)
    if train.empty or evaluation.empty:
        first, last = frame["creation_date"].min(), frame["creation_date"].max()
        raise DataError(
            f"split_date {cutoff_ts.date()}: leaves {'no training' if train.empty else 'no evaluation'} rows "
            f"(data spans {first} to {last})"
        )
    return Split(train=train, evaluation=evaluation, cutoff=cutoff_ts)


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
