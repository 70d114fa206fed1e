"""question_texts' progress bar: closed however the cleaning ends."""

from __future__ import annotations

import io
import sys

import pytest

import sotag.tagger.questions
from sotag.tagger.questions import question_texts


class _Terminal(io.StringIO):
    """stderr as a terminal: the cleaning bar (disable=None) draws only there."""

    def isatty(self) -> bool:
        return True


def test_a_cleaning_failure_mid_way_clears_the_bar_line(monkeypatch):
    """The bar wrapped the pairs bare: the failure's traceback kept it open, its text left on the error's line."""
    real = sotag.tagger.questions.clean_question

    def clean(title, body, **options):
        if title == "q3":
            raise ValueError("cannot clean q3")
        return real(title, body, **options)

    monkeypatch.setattr(sotag.tagger.questions, "clean_question", clean)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with pytest.raises(ValueError, match="cannot clean q3") as failed:
        question_texts(["q1", "q2", "q3", "q4"], ["", "", "", ""], progress=True)
    drawn = terminal.getvalue()
    assert "cleaning:" in drawn, repr(drawn)  # the bar was drawn
    assert failed.traceback and drawn.endswith("\r") and drawn.split("\r")[-2].strip() == "", repr(drawn)


def test_without_progress_nothing_is_drawn(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert question_texts(["How to sort"], ["<p>a list</p>"]) == ["how to sort . a list"]
    assert terminal.getvalue() == ""
