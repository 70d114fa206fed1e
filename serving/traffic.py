"""Which model answers a question: the champion, or @challenger for the canary share.

A question goes to the canary when a hash of its text falls in the first `canary_percent` of the hash range:
the same question always gets the same model (a retried or repeated question does not flip between versions), the
split holds over any set of distinct questions, and it needs no state shared between workers. When no challenger is
loaded every question goes to the champion. The shadow (serving.shadow) scores each question with the model that
did not answer it.
"""

from __future__ import annotations

import hashlib

from sotag.registry.resolve import ResolvedModel
from sotag.serving.challenger import ChallengerSlot
from sotag.serving.model_holder import ModelHolder

CHAMPION_ARM, CANARY_ARM = "champion", "canary"


def canary_point(title: str, body: str) -> float:
    """The question's place in [0, 100): its sha256 read as a fraction of the hash range."""
    digest = hashlib.sha256(f"{title}\x00{body}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


class Traffic:
    def __init__(self, champion: ModelHolder, challenger: ChallengerSlot | None, canary_percent: float = 0.0):
        self.champion, self.challenger, self.canary_percent = champion, challenger, canary_percent

    def pick(self, title: str, body: str) -> tuple[ResolvedModel, str]:
        """The model that answers this question, and its arm."""
        if self.canary_percent > 0 and self.challenger is not None:
            challenger = self.challenger.current
            if challenger is not None and canary_point(title, body) < self.canary_percent:
                return challenger, CANARY_ARM
        return self.champion.current, CHAMPION_ARM

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
