"""Which model answers a question: the champion, or @challenger for the canary share.

The arm says which: `champion` (the alias the gateway follows: `model.alias` names it), `canary` (@challenger, for
the canary share), or `pinned` when the gateway serves a model it does not follow through an alias (a version
number, `latest`, a stage, a run, a folder): that model is nobody's champion, and the alias watch, canary and shadow
are off. The answer, the prediction log's `arm` and `sotag_answers_total{arm}` all take it from here.

A question goes to the canary when a hash of its text falls in the first `canary_percent` of the hash range:
the same question always gets the same model (a retried or repeated question does not flip between versions), the
split holds over any set of distinct questions, and it needs no state shared between workers. When no challenger is
loaded every question goes to the champion. The shadow (serving.shadow) scores each question with the model that
did not answer it.
"""

from __future__ import annotations

import hashlib

from sotag.registry.resolve import ResolvedModel, parse_alias_uri
from sotag.serving.challenger import ChallengerSlot
from sotag.serving.model_holder import ModelHolder

CHAMPION_ARM, CANARY_ARM, PINNED_ARM = "champion", "canary", "pinned"


def served_arm(uri: str) -> str:
    """The arm of the model the gateway was started on: `champion` when `uri` is a registry alias it follows, else
    `pinned`."""
    return CHAMPION_ARM if parse_alias_uri(uri) is not None else PINNED_ARM


def canary_point(title: str, body: str) -> float:
    """The question's place in [0, 100): its sha256 read as a fraction of the hash range."""
    digest = hashlib.sha256(f"{title}\x00{body}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


class Traffic:
    def __init__(self, champion: ModelHolder, challenger: ChallengerSlot | None, canary_percent: float = 0.0):
        self.champion, self.challenger, self.canary_percent = champion, challenger, canary_percent
        self.served_arm = served_arm(champion.uri)

    def pick(self, title: str, body: str) -> tuple[ResolvedModel, str]:
        """The model that answers this question, and its arm."""
        if self.canary_percent > 0 and self.challenger is not None:
            challenger = self.challenger.current
            if challenger is not None and canary_point(title, body) < self.canary_percent:
                return challenger, CANARY_ARM
        return self.champion.current, self.served_arm

    def other(self, arm: str) -> ResolvedModel | None:
        """The model that did not answer (the shadow's): the champion for a canary answer, else @challenger."""
        if arm == CANARY_ARM:
            return self.champion.current
        return self.challenger.current if self.challenger is not None else None

    def status(self) -> dict:
        challenger = self.challenger.current if self.challenger is not None else None
        return {
            "canary_percent": self.canary_percent if challenger is not None else 0.0,
            "canary_percent_configured": self.canary_percent,
            "challenger": challenger.info() if challenger is not None else None,
        }
