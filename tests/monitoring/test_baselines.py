"""Which baseline each family of drift statistics uses: never the champion's own training questions."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sotag.monitoring.baselines import plan, plan_rolling
from sotag.monitoring.months import month_window, rolling_windows
from sotag.registry.card import ModelCard
from sotag.tagger.errors import InputError

TAGS = ModelCard.from_tags(
    "1",
    {
        "split_date": "2018-04-20",
        "eval_end": "",
        "eval_metrics": json.dumps({"precision_at_1": 0.786, "recall_at_5": 0.902, "f1_at_3": 0.55}),
    },
)


def test_default_embeddings_on_training_months_predictions_and_supervised_held_out():
    b = plan(None, TAGS)
    assert b.embedding_months == ("2017-10", "2018-03")
    assert "do not depend on the model" in b.words["embeddings"]
    assert b.prediction_window == (pd.Timestamp("2018-04-20"), None)
    assert "evaluation window 2018-04-20..end of data" in b.words["predictions"]
    assert b.held_out["precision_at_1"] == 0.786 and "held-out" in b.words["supervised"]
    assert b.notes == ()


def test_a_named_reference_after_training_serves_every_family():
    b = plan(("2018-05", "2018-05"), TAGS)
    assert b.embedding_months == ("2018-05", "2018-05")
    assert b.prediction_window == (pd.Timestamp("2018-05-01"), pd.Timestamp("2018-06-01"))
    assert b.held_out is None and "scored now" in b.words["supervised"]


def test_a_named_reference_that_overlaps_training_is_used_for_embeddings_and_text_only():
    b = plan(("2018-01", "2018-04"), TAGS)
    assert b.embedding_months == ("2018-01", "2018-04")
    assert [n for n in b.notes if "overlaps the champion's training" in n and "embeddings and text only" in n]
    assert b.prediction_window[0] == pd.Timestamp("2018-04-20")  # its evaluation window instead
    assert b.held_out["precision_at_1"] == 0.786


def test_a_model_without_a_recorded_training_window():
    with pytest.raises(InputError, match="--reference"):
        plan(None, ModelCard())
    b = plan(("2017-01", "2017-06"), ModelCard())  # the user's word that the model did not train on it
    assert b.prediction_window is not None and [n for n in b.notes if "trusted" in n]


def test_the_prediction_reference_leaves_out_checked_months_and_training_questions():
    frame = pd.DataFrame(
        {"creation_date": pd.to_datetime(["2018-04-10", "2018-04-25", "2018-05-03", "2018-05-20", "2018-06-02"])}
    )
    b = plan(None, TAGS)
    kept = b.prediction_reference(frame, (month_window("2018-05"),))
    assert kept["creation_date"].dt.strftime("%Y-%m-%d").tolist() == ["2018-04-25", "2018-06-02"]
    assert len(b.model_part(frame)) == 4  # the 2018-04-10 question was in the training window


def test_a_rolling_reference_after_training_serves_every_family_one_inside_it_embeddings_and_text_only():
    reference, current = rolling_windows(pd.Timestamp("2026-12-07"), 7, 30)
    b = plan_rolling(reference, current, TAGS)
    assert b.reference_window == reference and b.held_out is None
    assert b.prediction_window == (pd.Timestamp("2026-10-31"), pd.Timestamp("2026-11-30"))
    assert b.words["predictions"].startswith("the reference window 2026-10-31..2026-11-29 (the 30 days before the ")
    assert b.labels["supervised"] == "the reference window 2026-10-31..2026-11-29"
    reference, current = rolling_windows(pd.Timestamp("2018-05-01"), 7, 30)  # the champion trained up to 04-20
    b = plan_rolling(reference, current, TAGS)
    assert b.prediction_window == (pd.Timestamp("2018-04-20"), None) and b.held_out["precision_at_1"] == 0.786
    assert "overlaps the champion's training" in b.notes[0] and "held-out" in b.words["supervised"]
