"""The model card: version tags written and read through one dataclass; a malformed tag names itself."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from registry.card import CARD_VERSION, CardError, ModelCard, read_card

TRAINED = ModelCard(
    run_id="abc123",
    vectorizer="tfidf",
    top_n_tags=100,
    data_digest="d1g3st",
    split_date="2018-04-20",
    eval_end=None,
    exclude_sources=("so-python", "so-r"),
    eval_metrics={"precision_at_1": 0.7861, "f1_at_3": 0.5, "recall_at_5": 0.9, "tag_coverage": 0.97, "jaccard": 0.4},
)


def test_a_trained_versions_card_round_trips_with_the_tag_keys_sotag_always_wrote():
    tags = TRAINED.to_tags()
    assert tags == {
        "card_version": str(CARD_VERSION),
        "run_id": "abc123",
        "data_digest": "d1g3st",
        "vectorizer": "tfidf",
        "split_date": "2018-04-20",
        "eval_end": "",
        "exclude_sources": "so-python,so-r",
        "top_n_tags": "100",
        "eval_metrics": json.dumps(TRAINED.eval_metrics, sort_keys=True),
        "precision_at_1": "0.7861",
        "f1_at_3": "0.5000",
        "recall_at_5": "0.9000",
        "tag_coverage": "0.9700",
    }
    assert ModelCard.from_tags("7", tags) == TRAINED
    assert read_card(SimpleNamespace(version="7", tags=tags)).headline("f1_at_3") == "0.5000"


def test_a_converted_versions_card_and_a_version_from_before_the_card():
    converted = ModelCard(
        run_id="r",
        vectorizer="bow",
        top_n_tags=12,
        converted_from="m.joblib",
        bundle_sha256="f" * 64,
        score_kind="margin",
    )
    tags = converted.to_tags()
    assert set(tags) == {
        "card_version",
        "run_id",
        "vectorizer",
        "top_n_tags",
        "converted_from",
        "bundle_sha256",
        "score_kind",
    }
    assert ModelCard.from_tags("2", tags) == converted
    # Written before the card existed: no card_version, plus the gate's own stamps (not the card's).
    old = {k: v for k, v in TRAINED.to_tags().items() if k != "card_version"} | {"gate_decision": "promoted"}
    assert ModelCard.from_tags("1", old) == TRAINED
    assert ModelCard.from_tags("3", {}) == ModelCard()  # a version sotag did not register: an empty card


@pytest.mark.parametrize(
    ("tag", "value", "problem"),
    [
        ("eval_metrics", "{not json", "is not valid JSON"),
        ("eval_metrics", "[0.5]", "is not a JSON object"),
        ("eval_metrics", '{"f1_at_3": "high"}', "has a value that is not a number"),
        ("top_n_tags", "many", "is not an integer"),
        ("card_version", "99", "is newer than this code reads"),
    ],
)
def test_a_malformed_tag_is_an_error_naming_the_version_and_the_tag(tag, value, problem):
    with pytest.raises(CardError, match=f"model version 4: tag {tag} {problem}"):
        ModelCard.from_tags("4", TRAINED.to_tags() | {tag: value})
