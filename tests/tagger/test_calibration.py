"""Calibrated scores: a monotone map fitted on held-out suggestions, kept in config.json, that never reorders tags."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sotag.tagger.artifacts import ModelConfig
from sotag.tagger.calibration import Calibration, fit_calibration
from sotag.tagger.errors import ArtifactError
from sotag.tagger.kinds.base import ModelKind
from sotag.tagger.metrics import decide, expected_calibration_error, served_no_tag_share
from sotag.tagger.threshold import served_table

VOCAB = [f"t{i}" for i in range(20)]


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, list[list[str]]]:
    """Raw scores whose tag is the asker's with probability score**3: a kind that overstates its confidence."""
    rng = np.random.default_rng(seed)
    scores = rng.random((n, len(VOCAB)))
    chosen = rng.random(scores.shape) < scores**3
    return scores, [[VOCAB[j] for j in np.flatnonzero(row)] for row in chosen]


def test_fitted_on_held_out_questions_it_brings_the_calibration_error_down_on_others():
    held_out, held_out_truth = _overconfident(3000, seed=1)
    calibration = fit_calibration(held_out, VOCAB, held_out_truth)
    scores, truth = _overconfident(3000, seed=2)
    before = expected_calibration_error(scores, VOCAB, truth)
    after = expected_calibration_error(calibration.apply(scores), VOCAB, truth)
    assert before > 0.15  # raw scores of ~0.9 are chosen ~73% of the time
    assert after < 0.03


def test_the_ranking_is_the_raw_ranking_even_where_the_map_is_flat():
    calibration = Calibration(x=(0.0, 0.4, 0.6, 1.0), y=(0.1, 0.1, 0.1, 0.9), pairs=4)
    raw = np.array([[0.2, 0.3, 0.35, 0.9, 0.05]])  # four scores inside the flat stretch
    served = calibration.apply(raw)
    assert np.argsort(-served[0]).tolist() == np.argsort(-raw[0]).tolist()
    assert np.all((served >= 0) & (served <= 1)) and np.allclose(served[0, :3], 0.1, atol=1e-6)


def test_a_small_block_all_chosen_is_not_certainty():
    scores = np.array([[0.95, 0.1], [0.9, 0.2], [0.3, 0.2], [0.25, 0.1]] * 3)
    truth = [["a"], ["a"], [], []] * 3
    calibration = fit_calibration(scores, ["a", "b"], truth)
    top = float(calibration.apply(np.array([0.95]))[0])
    assert 0.5 < top < 1.0


def test_config_json_keeps_the_map_and_min_tags_and_refuses_a_broken_one():
    calibration = Calibration(x=(0.0, 0.5, 1.0), y=(0.0, 0.2, 0.8), pairs=30)
    config = ModelConfig(
        top_k=5, threshold=0.3, vectorizer="tfidf", vocabulary=["a"], preprocessing_version="2",
        calibration=calibration, min_tags=1,
    )  # fmt: skip
    payload = json.loads(json.dumps(config.to_dict()))
    again = ModelConfig.from_dict(payload, "config.json")
    assert again.calibration == calibration and again.min_tags == 1
    for broken, said in (
        ({"method": "isotonic", "x": [0.0, 1.0], "y": [0.5, 0.2], "pairs": 3}, "non-decreasing"),
        ({"method": "isotonic", "x": [0.0, 1.0], "y": [0.0, 1.5], "pairs": 3}, r"in \[0, 1\]"),
        ({"method": "platt", "x": [0.0], "y": [0.0], "pairs": 3}, "method 'isotonic'"),
        ({"method": "isotonic", "x": [0.0], "pairs": 3}, "numeric lists"),
    ):
        with pytest.raises(ArtifactError, match=said):
            ModelConfig.from_dict(payload | {"calibration": broken}, "config.json")
    with pytest.raises(ArtifactError, match="min_tags"):
        ModelConfig.from_dict(payload | {"min_tags": -1}, "config.json")


def test_a_config_written_before_calibration_serves_raw_scores_and_may_serve_no_tag():
    payload = {
        k: v
        for k, v in ModelConfig(top_k=5, threshold=0.3, vectorizer="tfidf", vocabulary=["a"], preprocessing_version="2")
        .to_dict()
        .items()
        if k not in {"calibration", "min_tags"}
    }
    config = ModelConfig.from_dict(payload, "config.json")
    assert config.calibration is None and config.min_tags == 0


class _Fixed(ModelKind):
    name = "tfidf"

    @classmethod
    def from_artifacts(cls, vectorizer, estimator, options):  # pragma: no cover - not loaded here
        raise NotImplementedError

    @property
    def n_tags(self) -> int:
        return 3

    def scores(self, titles, bodies):  # pragma: no cover - scores are given
        raise NotImplementedError


def test_min_tags_serves_the_best_tags_below_the_threshold_and_never_more_than_top_k():
    scores = np.array([[0.05, 0.02, 0.01], [0.9, 0.5, 0.01]])
    vocabulary = np.array(["a", "b", "c"], dtype=object)
    kind = _Fixed.__new__(_Fixed)
    none, plenty = kind.suggest(scores, vocabulary, top_k=2, threshold=0.3, min_tags=0)
    assert none.tags == [] and plenty.tags == ["a", "b"]
    one, two = kind.suggest(scores, vocabulary, top_k=2, threshold=0.3, min_tags=1)
    assert one.tags == ["a"] and two.tags == ["a", "b"]
    assert decide(scores, 2, 0.3, min_tags=1).sum(axis=1).tolist() == [1, 2]
    assert served_no_tag_share(scores, 0.3) == 0.5 and served_no_tag_share(scores, 0.3, min_tags=1) == 0.0
    table = served_table(scores, ["a", "b", "c"], [["a"], ["a"]], top_k=2, thresholds=[0.3], min_tags=1)
    assert table["no_tag_share"].tolist() == [0.0] and table["served_f1"].iloc[0] == pytest.approx((1 + 2 / 3) / 2)
