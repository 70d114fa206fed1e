"""The gate scores versions as they serve: a calibrated version's order of tags survives the scoring buffer."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
