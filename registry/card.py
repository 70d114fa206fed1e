"""The model card: what a registered version says about itself, as one JSON tag of the run it was logged from.

Written when a version is registered (`sotag train`, `sotag convert-legacy`), its `gate` part when the gate
judges it, and read through `read_card` by the gate, the lifecycle, `resolve`, monitoring's baselines and the
demo app.

Layouts (`card_version`):

* 2 (now): the whole card is the JSON of the source run's tag `sotag.card` (shown on the run's page); the
  version itself carries one tag a person filters on, `gate_decision` (`promoted` / `rejected`), and its
  decision in words as its description (registry/store.py). Why off the version: MLflow 3.17's registered-model
  page draws every version tag as a chip on a line of its own in a column about 90 px wide: version 1's ~25 tags
  made each version row 600-800 px tall, so `@champion` was thousands of pixels down the page (issue 21), and
  even one more JSON tag costs every row 24 px, with the MLflow Assistant panel open enough to push the fifth
  row below a 1280x900 window. The run is the training record MLflow already links from the version.
* 1 (before): one version tag per field (`run_id`, `vectorizer`, `eval_metrics` JSON, the headline figures, the
  gate's `gate_*`, `latency_*`, `behaviour_*`): still read, so versions registered before keep their card; the
  gate's next verdict on such a version writes its card in the layout of now.

A malformed tag (a card or metric table that is not JSON, a tag count that is not a number) is a `CardError`
naming the version and the tag, never an empty value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sotag.infra.store_errors import TRACKING, fault, is_absent
from sotag.tagger.errors import SotagError

CARD_VERSION = 2
CARD_TAG = "sotag.card"
DECISION_TAG = "gate_decision"  # the one version tag: what a person filters on (`tags.gate_decision = 'rejected'`)
# The gate's verdict keys, under `ModelCard.gate` (card version 2) or as tags of their own (card version 1).
GATE_KEYS = (
    "gate_decision", "gate_reason", "gate_window", "gate_metrics", "latency_p50_ms", "latency_p99_ms",
    "latency_budget_ms", "behaviour_summary", "behaviour_results",
)  # fmt: skip


class CardError(SotagError):
    """A version's tags do not read as a model card."""


@dataclass(frozen=True)
class ModelCard:
    """A registered version's training record; None / empty where the version does not record it."""

    run_id: str | None = None
    vectorizer: str = ""  # the features (bow, tfidf, sbert, ensemble), as config.json's `vectorizer`
    top_n_tags: int | None = None  # the training setting (for the plt kind: the one-vs-rest head's size)
    n_tags: int | None = None  # the tags the model can suggest (its vocabulary); None on cards written before
    data_digest: str | None = None  # MLflow's digest of the whole data set it was trained from
    split_date: str | None = None  # trained on questions before, evaluated from (YYYY-MM-DD)
    eval_end: str | None = None  # evaluated before this date (None: to the end of the data)
    exclude_sources: tuple[str, ...] = ()
    eval_metrics: dict[str, float] = field(default_factory=dict)  # held-out figures, rounded to 4 decimals
    # A model converted from the original Tagger API (serving.legacy): its source and score kind.
    converted_from: str | None = None
    bundle_sha256: str | None = None
    score_kind: str | None = None
    # The gate's last verdict on this version (registry.validate.Verdict.tags): empty until it is judged.
    gate: dict[str, str] = field(default_factory=dict)
    card_version: int = CARD_VERSION

    @property
    def vocabulary_size(self) -> int | None:
        """How many tags the model can suggest: `n_tags`, else (older cards, where the two were equal for the
        one-vs-rest kinds) `top_n_tags`."""
        return self.n_tags if self.n_tags is not None else self.top_n_tags

    def headline(self, metric: str) -> str:
        """A held-out figure as the registry lists it ("0.1234"), or "" when the version has none."""
        value = self.eval_metrics.get(metric)
        return "" if value is None else f"{value:.4f}"

    def to_json(self) -> str:
        """The card as its run tag's value (absent fields left out)."""
        body = {
            "card_version": CARD_VERSION,
            "run_id": self.run_id,
            "vectorizer": self.vectorizer,
            "top_n_tags": self.top_n_tags,
            "n_tags": self.n_tags,
            "data_digest": self.data_digest,
            "split_date": self.split_date,
            "eval_end": self.eval_end,
            "exclude_sources": list(self.exclude_sources),
            "eval_metrics": self.eval_metrics,
            "converted_from": self.converted_from,
            "bundle_sha256": self.bundle_sha256,
            "score_kind": self.score_kind,
            "gate": self.gate,
        }
        return json.dumps({k: v for k, v in body.items() if v not in (None, [], {})}, sort_keys=True)

    @classmethod
    def from_tags(cls, version: str | int | None, tags: Mapping[str, str]) -> ModelCard:
        """The card of `version` from tags holding it: its run's `sotag.card` (layout 2), or the version's own tags
        (layout 1); CardError naming the version and the tag when one is malformed."""

        def bad(key: str, problem: str) -> CardError:
            return CardError(f"model version {version}: tag {key} {problem} (got {tags.get(key)!r})")

        def integer(key: str) -> int | None:
            if not tags.get(key):
                return None
            try:
                return int(tags[key])
            except ValueError:
                raise bad(key, "is not an integer") from None

        if CARD_TAG in tags:
            return cls._from_json(version, tags[CARD_TAG], bad)
        card_version = integer("card_version") or 1
        if card_version > CARD_VERSION:
            raise bad("card_version", f"is newer than this code reads ({CARD_VERSION}); upgrade sotag")
        return cls(
            run_id=tags.get("run_id") or None,
            vectorizer=tags.get("vectorizer", ""),
            top_n_tags=integer("top_n_tags"),
            data_digest=tags.get("data_digest") or None,
            split_date=tags.get("split_date") or None,
            eval_end=tags.get("eval_end") or None,
            exclude_sources=tuple(s for s in tags.get("exclude_sources", "").split(",") if s),
            eval_metrics=_metrics(tags, bad),
            converted_from=tags.get("converted_from"),
            bundle_sha256=tags.get("bundle_sha256"),
            score_kind=tags.get("score_kind"),
            gate={k: tags[k] for k in GATE_KEYS if k in tags},
            card_version=card_version,
        )

    @classmethod
    def _from_json(cls, version: str | int | None, raw: str, bad: Callable[[str, str], CardError]) -> ModelCard:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise bad(CARD_TAG, f"is not valid JSON ({exc.args[0]})") from None
        if not isinstance(body, dict):
            raise bad(CARD_TAG, "is not a JSON object")
        card_version = body.get("card_version")
        if not isinstance(card_version, int):
            raise bad(CARD_TAG, "has no integer card_version")
        if card_version > CARD_VERSION:
            newer = f"has card_version {card_version}, newer than this code reads ({CARD_VERSION}); upgrade sotag"
            raise bad(CARD_TAG, newer)
        metrics = body.get("eval_metrics", {})
        if not isinstance(metrics, dict) or not all(isinstance(v, int | float) for v in metrics.values()):
            raise bad(CARD_TAG, "has eval_metrics that are not a JSON object of metric -> number")
        gate = body.get("gate", {})
        if not isinstance(gate, dict):
            raise bad(CARD_TAG, "has a gate that is not a JSON object")
        top_n, n_tags = body.get("top_n_tags"), body.get("n_tags")
        for key, value in (("top_n_tags", top_n), ("n_tags", n_tags)):
            if value is not None and not isinstance(value, int):
                raise bad(CARD_TAG, f"has a {key} that is not an integer")
        return cls(
            run_id=body.get("run_id"),
            vectorizer=body.get("vectorizer", ""),
            top_n_tags=top_n,
            n_tags=n_tags,
            data_digest=body.get("data_digest"),
            split_date=body.get("split_date"),
            eval_end=body.get("eval_end"),
            exclude_sources=tuple(body.get("exclude_sources", ())),
            eval_metrics={str(k): float(v) for k, v in metrics.items()},
            converted_from=body.get("converted_from"),
            bundle_sha256=body.get("bundle_sha256"),
            score_kind=body.get("score_kind"),
            gate={str(k): str(v) for k, v in gate.items()},
            card_version=card_version,
        )


def _metrics(tags: Mapping[str, str], bad: Callable[[str, str], CardError]) -> dict[str, float]:
    raw = tags.get("eval_metrics")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise bad("eval_metrics", f"is not valid JSON ({exc.args[0]})") from None
    if not isinstance(parsed, dict):
        raise bad("eval_metrics", "is not a JSON object of metric -> number")
    try:
        return {str(k): float(v) for k, v in parsed.items()}
    except (TypeError, ValueError):
        raise bad("eval_metrics", "has a value that is not a number") from None


def read_card(client: MlflowClient, version: ModelVersion) -> ModelCard:
    """The card of a registered version (the one way to read it): its source run's `sotag.card` tag, else the
    version-1 layout of its own tags. A run the store no longer has is a CardError naming the version; any other
    failure to read it a ComponentFault naming the tracking server."""
    run_tags: dict[str, str] = {}
    if version.run_id:
        try:
            run_tags = client.get_run(version.run_id).data.tags
        except (MlflowException, OSError) as exc:
            if not is_absent(exc):
                raise fault(TRACKING, f"reading the card of model version {version.version}", exc) from exc
    if CARD_TAG in run_tags:
        return ModelCard.from_tags(version.version, {CARD_TAG: run_tags[CARD_TAG]})
    return ModelCard.from_tags(version.version, version.tags or {})


def write_card(client: MlflowClient, version: ModelVersion, card: ModelCard) -> None:
    """Write `card` as `version`'s (its source run's `sotag.card` tag) and its gate decision as the version's tag."""
    if not version.run_id:
        raise CardError(f"model version {version.version}: it has no source run to hold its card")
    try:
        client.set_tag(version.run_id, CARD_TAG, card.to_json())
        if card.gate.get(DECISION_TAG):
            client.set_model_version_tag(version.name, version.version, DECISION_TAG, card.gate[DECISION_TAG])
    except (MlflowException, OSError) as exc:
        raise fault(TRACKING, f"writing the card of model version {version.version}", exc) from exc
