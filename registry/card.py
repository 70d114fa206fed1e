"""The model card: what a registered version says about itself, as its MLflow version tags.

Written once when a version is registered (`sotag train`, `sotag convert-legacy`) and read through
`read_card` by the gate, the lifecycle, `resolve`, monitoring's baselines and the demo app. The tag
keys are those sotag has always written, so versions registered before the card existed read as
card version 1; `card_version` says which layout a version carries. A malformed tag (a metric table
that is not JSON, a tag count that is not a number) is a `CardError` naming the version and the tag,
never an empty value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tagger.errors import SotagError

CARD_VERSION = 1
# Each also a tag of its own, 4 decimals: the in-vocabulary figures, then the all-tags ones (every question of the
# evaluation window against every tag its asker chose, tagger.metrics) and the share of tag occurrences the
# vocabulary covers. Versions trained before the all-tags metrics have only the first four.
HEADLINE = (
    "precision_at_1",
    "f1_at_3",
    "recall_at_5",
    "tag_coverage",
    "precision_at_1_all",
    "recall_at_5_all",
    "f1_at_3_all",
    "vocabulary_coverage",
)


class CardError(SotagError):
    """A version's tags do not read as a model card."""


@dataclass(frozen=True)
class ModelCard:
    """A registered version's training record; None / empty where the version does not record it."""

    run_id: str | None = None
    vectorizer: str = ""  # the features (bow, tfidf, sbert, ensemble), as config.json's `vectorizer`
    top_n_tags: int | None = None
    data_digest: str | None = None  # MLflow's digest of the whole data set it was trained from
    split_date: str | None = None  # trained on questions before, evaluated from (YYYY-MM-DD)
    eval_end: str | None = None  # evaluated before this date (None: to the end of the data)
    exclude_sources: tuple[str, ...] = ()
    eval_metrics: dict[str, float] = field(default_factory=dict)  # held-out figures, rounded to 4 decimals
    # A model converted from the original Tagger API (serving.legacy): its source and score kind.
    converted_from: str | None = None
    bundle_sha256: str | None = None
    score_kind: str | None = None
    card_version: int = CARD_VERSION

    def headline(self, metric: str) -> str:
        """A held-out figure as the registry lists it ("0.1234"), or "" when the version has none."""
        value = self.eval_metrics.get(metric)
        return "" if value is None else f"{value:.4f}"

    def to_tags(self) -> dict[str, str]:
        """The version tags, with the keys sotag has always used; absent fields are not written."""
        tags: dict[str, str] = {"card_version": str(self.card_version)}
        if self.run_id is not None:
            tags["run_id"] = self.run_id
        if self.data_digest is not None:
            tags["data_digest"] = self.data_digest
        tags["vectorizer"] = self.vectorizer
        if self.split_date is not None:
            tags["split_date"] = self.split_date
            tags["eval_end"] = self.eval_end or ""
            tags["exclude_sources"] = ",".join(self.exclude_sources)
        if self.top_n_tags is not None:
            tags["top_n_tags"] = str(self.top_n_tags)
        if self.eval_metrics:
            tags["eval_metrics"] = json.dumps(self.eval_metrics, sort_keys=True)
            tags |= {key: self.headline(key) for key in HEADLINE if key in self.eval_metrics}
        for key in ("converted_from", "bundle_sha256", "score_kind"):
            if getattr(self, key) is not None:
                tags[key] = getattr(self, key)
        return tags

    @classmethod
    def from_tags(cls, version: str | int | None, tags: Mapping[str, str]) -> ModelCard:
        """The card of `version` from its tags; CardError naming the version and the tag when one is malformed."""

        def bad(key: str, problem: str) -> CardError:
            return CardError(f"model version {version}: tag {key} {problem} (got {tags.get(key)!r})")

        def integer(key: str) -> int | None:
            if not tags.get(key):
                return None
            try:
                return int(tags[key])
            except ValueError:
                raise bad(key, "is not an integer") from None

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


def read_card(version: object) -> ModelCard:
    """The card of a registry `ModelVersion` (anything with `.version` and `.tags`): the one way to read it."""
    return ModelCard.from_tags(getattr(version, "version", None), getattr(version, "tags", None) or {})
