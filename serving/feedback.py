"""`POST /feedback`: the tags the asker finally kept for a prediction, the label the next retrain needs.

Each answer carries a `prediction_id` (infra.prediction_log.new_prediction_id). A feedback names it and the kept
tags; the gateway finds the logged prediction (any worker may have answered it: the log database is shared; a
prediction answered in the last moments may still be on its way to the database, so a recent id is waited for up
to `wait_s`), scores the answer, and the shadow's when there was one, against the kept tags (precision@1,
recall@5), and records one row per prediction: a repeated feedback with the same tags changes nothing, one with
other tags is refused (409).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from sotag.infra.prediction_log import find_prediction, insert_feedback, now, prediction_time


def precision_at_1(suggested: Sequence[str], kept: set[str]) -> float:
    return 1.0 if suggested and suggested[0] in kept else 0.0


def recall_at_5(suggested: Sequence[str], kept: set[str]) -> float:
    return len(set(suggested[:5]) & kept) / len(kept) if kept else 0.0


@dataclass(frozen=True)
class FeedbackOutcome:
    status: Literal["recorded", "unchanged", "conflict", "unknown"]
    row: dict | None = None


class FeedbackBook:
    def __init__(self, engine: sa.Engine, wait_s: float):
        self.engine, self.wait_s = engine, wait_s

    def _find(self, prediction_id: str) -> dict | None:
        made = prediction_time(prediction_id)
        deadline = time.monotonic() + (self.wait_s if made is not None and time.time() - made < self.wait_s else 0)
        while True:
            found = find_prediction(self.engine, prediction_id)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def record(self, prediction_id: str, tags: Sequence[str]) -> FeedbackOutcome:
        """Record the kept `tags` for the prediction (raises SQLAlchemyError when the database cannot be asked)."""
        found = self._find(prediction_id)
        if found is None:
            return FeedbackOutcome("unknown")
        kept = set(tags)
        shadow = found["shadow_tags"]
        row = {
            "prediction_id": prediction_id,
            "ts": now(),
            "tags": json.dumps(list(tags)),
            "model_name": found["model_name"],
            "model_version": found["model_version"],
            "precision_at_1": precision_at_1(found["tags"], kept),
            "recall_at_5": recall_at_5(found["tags"], kept),
            "shadow_version": found["shadow_version"],
            "shadow_precision_at_1": precision_at_1(shadow, kept) if shadow is not None else None,
            "shadow_recall_at_5": recall_at_5(shadow, kept) if shadow is not None else None,
        }
        existing = insert_feedback(self.engine, row)
        if existing is None:
            return FeedbackOutcome("recorded", row)
        same = sorted(json.loads(existing["tags"])) == sorted(tags)
        return FeedbackOutcome("unchanged" if same else "conflict", existing)
