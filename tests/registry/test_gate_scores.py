"""The gate scores versions as they serve: a calibrated version's order of tags survives the scoring buffer."""

from __future__ import annotations

import io
import sys

import numpy as np
import pandas as pd
import pytest

from sotag.registry.gate import model_scores
from sotag.tagger.calibration import Calibration


class _FlatCalibrated:
    """What model_scores reads of a Tagger: a version whose calibration is flat where its two tags score."""

    vocabulary = np.array(["a", "b"], dtype=object)
    calibration = Calibration(x=(0.0, 1.0), y=(0.4, 0.4), pairs=2)

    def scores(self, titles, bodies):
        raw = np.tile(np.array([0.3, 0.3000001], dtype=np.float32), (len(titles), 1))
        return self.calibration.apply(raw)


def test_tags_tied_by_a_flat_calibration_keep_their_raw_order():
    frame = pd.DataFrame({"title": ["q1", "q2", "q3"], "body": ["", "", ""]})
    scores = model_scores(_FlatCalibrated(), frame, batch=2)
    assert (scores[:, 1] > scores[:, 0]).all()  # float32 would round both to 0.4 and tie them
    assert np.allclose(scores, 0.4, atol=1e-6)


class _Terminal(io.StringIO):
    """stderr as a terminal: the gate's bar (disable=None) draws only there."""

    def isatty(self) -> bool:
        return True


class _FailsOnSecondBatch:
    vocabulary = np.array(["a"], dtype=object)

    def __init__(self) -> None:
        self.calls = 0

    def scores(self, titles, bodies):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("the tagger failed on batch 2")
        return np.zeros((len(titles), 1))


def test_a_scoring_failure_mid_way_clears_the_bar_line_so_the_error_starts_on_a_clean_one(monkeypatch):
    """The bar was a bare `for ... in tqdm(...)`: the failure's traceback kept it open, its text left on the line."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    frame = pd.DataFrame({"title": ["q1", "q2", "q3", "q4"], "body": ["", "", "", ""]})
    with pytest.raises(RuntimeError, match="the tagger failed on batch 2") as failed:
        model_scores(_FailsOnSecondBatch(), frame, batch=2, label="challenger")
    drawn = terminal.getvalue()
    assert "scoring challenger:" in drawn, repr(drawn)  # the bar was drawn
    assert failed.traceback and drawn.endswith("\r") and drawn.split("\r")[-2].strip() == "", repr(drawn)
