"""Comparing gateway answers: every answer carries its own prediction_id, so two answers compare without them."""

from __future__ import annotations

from typing import Any


def without_ids(answer: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in answer.items() if k != "prediction_id"}
    if isinstance(out.get("results"), list):
        out["results"] = [without_ids(r) for r in out["results"]]
    return out
