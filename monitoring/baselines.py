"""What each family of drift statistics is compared with; never the champion's own training questions.

* embeddings and text: the reference months (default: the champion's last 6 training months). They
  describe the questions, not the model, so the months it learned from are a fair baseline.
* predictions (tag PSI, chi-square, Jensen-Shannon on the top tag, no-tag share): questions the
  champion did not train on: a named reference that starts after its training, else its evaluation
  window (recorded on the version) without the months being checked. A model is more confident on
  questions it trained on, so an in-sample baseline would move these statistics every month.
* supervised (P@k, R@k, F1@k, coverage): the held-out figures logged when the champion was trained
  (same definitions), or the named out-of-sample reference, scored now.
* vocabulary (the share of the askers' tag occurrences the champion cannot suggest, and the most used such
  tags): the champion's own evaluation window: 1 - the vocabulary coverage logged when it was trained, else that
  window (or the named out-of-sample reference) counted now. It needs no model output, only the tags.

Within a checked month, only the questions the champion did not train on feed the last two families.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sotag.monitoring.months import Window, champion_window, month_window
from sotag.monitoring.severity import FAMILIES
from sotag.registry.card import ModelCard
from sotag.tagger.errors import InputError

EMBEDDINGS, TEXT, PREDICTIONS, SUPERVISED, VOCABULARY = FAMILIES


@dataclass(frozen=True)
class Baselines:
    embedding_months: tuple[str, str]
    trained_before: pd.Timestamp | None  # the champion trained on questions before this instant (None: unknown)
    prediction_window: tuple[pd.Timestamp, pd.Timestamp | None] | None  # None: family skipped
    held_out: dict[str, float] | None  # supervised baseline figures; None: score the prediction window instead
    words: dict[str, str]  # family -> what it is compared with, in words (the report header)
    notes: tuple[str, ...] = field(default_factory=tuple)
    labels: dict[str, str] = field(default_factory=dict)  # family -> the same in a few words (each reason)
    # The embeddings' and text's reference as a span of time (None: the months of `embedding_months`).
    window: Window | None = None

    @property
    def reference_window(self) -> Window:
        return self.window or month_window(*self.embedding_months)

    @property
    def reference_label(self) -> str:
        return self.reference_window.label

    def model_part(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The questions of `frame` the champion did not train on."""
        if self.trained_before is None:
            return frame
        return frame[frame["creation_date"] >= self.trained_before]

    def prediction_reference(self, frame: pd.DataFrame, checked: tuple[Window, ...]) -> pd.DataFrame:
        """The prediction baseline's questions: the window, minus the months (windows) being checked."""
        if self.prediction_window is None:
            return frame.iloc[:0]
        start, end = self.prediction_window
        dates = frame["creation_date"]
        keep = (dates >= start) & (dates < end if end is not None else True)
        for window in checked:
            keep &= ~window.mask(dates)
        return self.model_part(frame[keep])


def _month_start(month: str) -> pd.Timestamp:
    return pd.Period(month, freq="M").start_time


def _describe(start: pd.Timestamp, end: pd.Timestamp | None) -> str:
    return f"{start:%Y-%m-%d}..{f'{end:%Y-%m-%d}' if end is not None else 'end of data'}"


def plan_rolling(reference: Window, current: Window, card: ModelCard) -> Baselines:
    """Rolling windows (`--current-days`, `--reference-days`): the reference window is every family's baseline
    where the champion did not train on it (production traffic, as seed 004's 7 days against the 30 before);
    a reference window reaching into its training serves embeddings and text only, the other families falling
    back to the champion's evaluation window and held-out figures, as a named month reference does."""
    days = f"the {reference.days:g} days before the current window {current.label}"
    ref = f"the reference window {reference.label} ({days})"
    split = card.split_date
    trained_before = pd.Timestamp(split) if split else None
    words = {EMBEDDINGS: f"{ref} (these statistics do not depend on the model)"}
    words[TEXT] = words[EMBEDDINGS]
    named = f"the reference window {reference.label}"
    labels = dict.fromkeys((EMBEDDINGS, TEXT, PREDICTIONS, SUPERVISED, VOCABULARY), named)
    months = (reference.label, reference.label)
    if trained_before is None or reference.start >= trained_before:
        notes = []
        if trained_before is None:
            notes.append(f"the model records no training window: {ref} is trusted to be out of its training data")
        words[PREDICTIONS] = f"{ref}, after the champion's training"
        words[SUPERVISED] = f"{ref}, scored now"
        words[VOCABULARY] = f"{ref}, its tags counted now"
        span = (reference.start, reference.end)
        return Baselines(months, trained_before, span, None, words, tuple(notes), labels, reference)
    inner = plan(None, card)
    note = f"{ref} overlaps the champion's training (questions before {split}): used for embeddings and text only"
    words |= {family: inner.words[family] for family in (PREDICTIONS, SUPERVISED, VOCABULARY) if family in inner.words}
    labels |= {family: inner.labels[family] for family in (PREDICTIONS, SUPERVISED, VOCABULARY)}
    return Baselines(months, trained_before, inner.prediction_window, inner.held_out, words, (note,), labels, reference)


def plan(named_reference: tuple[str, str] | None, card: ModelCard) -> Baselines:
    """Decide each family's baseline from the named reference (if any) and the champion's model card."""
    split = card.split_date
    trained_before = pd.Timestamp(split) if split else None
    if named_reference is None:
        if split is None:
            raise InputError(
                "--reference", "the model records no training window (no split_date tag); name one: YYYY-MM..YYYY-MM"
            )
        embedding_months = champion_window(split)
        embedding_words = f"{embedding_months[0]}..{embedding_months[1]}, the champion's last 6 training months"
    else:
        embedding_months = named_reference
        embedding_words = f"the reference {named_reference[0]}..{named_reference[1]}"
    words = {EMBEDDINGS: f"{embedding_words} (these statistics do not depend on the model)"}
    words[TEXT] = words[EMBEDDINGS]
    months = f"{embedding_months[0]}..{embedding_months[1]}"
    named = f"the reference {months}"
    labels = {
        EMBEDDINGS: named if named_reference is not None else f"the training months {months}",
        PREDICTIONS: "the champion's evaluation window",
        SUPERVISED: "the champion's held-out",
        VOCABULARY: "the champion's evaluation window",
    }
    labels[TEXT] = labels[EMBEDDINGS]
    notes: list[str] = []

    reference_start = _month_start(embedding_months[0])
    if named_reference is not None and (trained_before is None or reference_start >= trained_before):
        # A named window the champion did not train on serves every family (unknown training: the user's word).
        end = (pd.Period(named_reference[1], freq="M") + 1).start_time
        ref = f"the reference {named_reference[0]}..{named_reference[1]}"
        if trained_before is None:
            notes.append(f"the model records no training window: {ref} is trusted to be out of its training data")
        words[PREDICTIONS] = f"{ref} (after the champion's training)"
        words[SUPERVISED] = f"{ref}, scored now"
        words[VOCABULARY] = f"{ref}, its tags counted now"
        labels |= {PREDICTIONS: named, SUPERVISED: named, VOCABULARY: named}
        window = (reference_start, end)
        return Baselines(embedding_months, trained_before, window, None, words, tuple(notes), labels)

    if named_reference is not None:
        notes.append(
            f"the reference {named_reference[0]}..{named_reference[1]} overlaps the champion's training (questions "
            f"before {split}): used for embeddings and text only"
        )
    if trained_before is None:
        notes.append("the model records no training window: prediction, supervised and vocabulary statistics skipped")
        return Baselines(embedding_months, None, None, None, words, tuple(notes), labels)
    eval_end = card.eval_end
    window = (trained_before, pd.Timestamp(eval_end) if eval_end else None)
    words[PREDICTIONS] = f"the champion's evaluation window {_describe(*window)} (held out from its training)"
    held_out = card.eval_metrics
    if "vocabulary_coverage" in held_out:
        words[VOCABULARY] = (
            f"the champion's evaluation window {_describe(*window)}: 1 - its vocabulary coverage logged when it "
            "was trained"
        )
    else:
        words[VOCABULARY] = f"the champion's evaluation window {_describe(*window)}, its tags counted now"
    if held_out:
        words[SUPERVISED] = "the champion's held-out figures (logged when it was trained)"
        return Baselines(embedding_months, trained_before, window, held_out, words, tuple(notes), labels)
    words[SUPERVISED] = f"the champion's evaluation window {_describe(*window)}, scored now"
    labels[SUPERVISED] = "the champion's evaluation window"
    return Baselines(embedding_months, trained_before, window, None, words, tuple(notes), labels)
