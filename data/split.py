"""Time-based train/evaluation split, source filtering and the tag vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sotag.tagger.errors import DataError

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


def time_split(
    frame: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    eval_end: str | pd.Timestamp | None = None,
    flag: str = "--split-date",
) -> Split:
    """Split on creation date; both sides must be non-empty (else an error naming `flag`, the option that sets the
    cutoff, with a date that would work: the one leaving the newest fifth of the questions for evaluation)."""
    cutoff_ts = pd.Timestamp(cutoff)
    train = frame[frame["creation_date"] < cutoff_ts].reset_index(drop=True)
    evaluation = frame[frame["creation_date"] >= cutoff_ts]
    if eval_end is not None:
        evaluation = evaluation[evaluation["creation_date"] < pd.Timestamp(eval_end)]
    evaluation = evaluation.reset_index(drop=True)
    if train.empty or evaluation.empty:
        first, last = frame["creation_date"].min(), frame["creation_date"].max()
        hint = ""
        if frame["creation_date"].notna().sum() >= 2:
            hint = f"; set {flag} inside it, e.g. {flag} {frame['creation_date'].quantile(0.8).date()}"
            hint += " (the newest fifth of these questions evaluates)"
        raise DataError(
            f"{flag} {cutoff_ts.date()}: leaves {'no training' if train.empty else 'no evaluation'} rows "
            f"(the data spans {first} to {last}){hint}"
        )
    return Split(train=train, evaluation=evaluation, cutoff=cutoff_ts)
