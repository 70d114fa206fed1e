"""The model card: one version tag (and the version-1 layout still read) through one dataclass; a malformed tag
names itself."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from sotag.registry.card import CARD_TAG, CARD_VERSION, CardError, ModelCard, read_card

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


# The version-1 layout (one tag per field), as versions registered before card version 2 carry it.
V1_TAGS = {
    "card_version": "1",
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
}


class Runs:
    """A tracking client that knows the tags of some runs."""

    def __init__(self, tags: dict[str, dict[str, str]]):
        self.tags = tags

    def get_run(self, run_id):
        return SimpleNamespace(data=SimpleNamespace(tags=self.tags[run_id]))


def test_a_trained_versions_card_is_one_tag_of_its_run_and_round_trips():
    body = json.loads(TRAINED.to_json())
    assert body["card_version"] == CARD_VERSION == 2 and body["eval_metrics"]["f1_at_3"] == 0.5
    assert ModelCard.from_tags("7", {CARD_TAG: TRAINED.to_json()}) == TRAINED
    # Read through the version: its run's tag; the version's own tags are only the one a person filters on.
    version = SimpleNamespace(version="7", run_id="abc123", tags={"gate_decision": "promoted"})
    assert read_card(Runs({"abc123": {CARD_TAG: TRAINED.to_json()}}), version) == TRAINED
    assert read_card(Runs({"abc123": {CARD_TAG: TRAINED.to_json()}}), version).headline("f1_at_3") == "0.5000"


def test_a_judged_versions_card_carries_the_verdict():
    judged = replace(TRAINED, gate={"gate_decision": "rejected", "latency_p50_ms": "0.412"})
    assert ModelCard.from_tags("7", {CARD_TAG: judged.to_json()}) == judged


def test_a_converted_versions_card_and_versions_from_before():
    converted = ModelCard(
        run_id="r",
        vectorizer="bow",
        top_n_tags=12,
        converted_from="m.joblib",
        bundle_sha256="f" * 64,
        score_kind="margin",
    )
    assert ModelCard.from_tags("2", {CARD_TAG: converted.to_json()}) == converted
    # Card version 1, and a version from before the card (no card_version), with the gate's stamps as tags.
    v1 = replace(TRAINED, card_version=1, gate={"gate_decision": "promoted"})
    assert ModelCard.from_tags("1", V1_TAGS | {"gate_decision": "promoted"}) == v1
    unversioned = {k: v for k, v in V1_TAGS.items() if k != "card_version"} | {"gate_decision": "promoted"}
    assert ModelCard.from_tags("1", unversioned) == v1
    assert ModelCard.from_tags("3", {}) == ModelCard(card_version=1)  # a version sotag did not register: empty
    # A version of layout 1 through read_card: its run holds no card, its own tags do.
    old = SimpleNamespace(version="1", run_id="abc123", tags=V1_TAGS)
    assert read_card(Runs({"abc123": {"mlflow.runName": "x"}}), old) == replace(TRAINED, card_version=1)


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
def test_a_malformed_version_1_tag_is_an_error_naming_the_version_and_the_tag(tag, value, problem):
    with pytest.raises(CardError, match=f"model version 4: tag {tag} {problem}"):
        ModelCard.from_tags("4", V1_TAGS | {tag: value})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{not json", "is not valid JSON"),
        ("[1]", "is not a JSON object"),
        ('{"vectorizer": "tfidf"}', "has no integer card_version"),
        ('{"card_version": 99}', "has card_version 99, newer than this code reads"),
        ('{"card_version": 2, "eval_metrics": {"f1_at_3": "high"}}', "has eval_metrics that are not"),
        ('{"card_version": 2, "top_n_tags": "many"}', "has a top_n_tags that is not an integer"),
    ],
)
def test_a_malformed_card_tag_is_an_error_naming_the_version_and_the_tag(value, problem):
    with pytest.raises(CardError, match=f"model version 4: tag {CARD_TAG} {problem}"):
        ModelCard.from_tags("4", {CARD_TAG: value})
