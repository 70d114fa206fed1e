"""Per-month severity (ok / warn / alert) from the rules in a thresholds file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

LEVELS = ("ok", "warn", "alert")
DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.json")


@dataclass(frozen=True)
class Rule:
    metric: str
    direction: str  # "above": value >= level; "drop": reference - value >= level; "drop_negative": value - reference
    warn: float
    alert: float

    def delta(self, value: float, reference: float | None) -> float | None:
        if self.direction == "above":
            return value
        if reference is None:
            return None
        return reference - value if self.direction == "drop" else value - reference

    def level(self, value: float | None, reference: float | None) -> str:
        if value is None or value != value:
            return "ok"
        delta = self.delta(value, reference)
        if delta is None:
            return "ok"
        return "alert" if delta >= self.alert else "warn" if delta >= self.warn else "ok"


def load_rules(path: Path = DEFAULT_THRESHOLDS) -> list[Rule]:
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"thresholds file {path}: {exc}") from exc
    rules = []
    for metric, spec in raw.items():
        if metric.startswith("_"):
            continue
        if spec.get("direction") not in {"above", "drop", "drop_negative"} or spec["warn"] > spec["alert"]:
            raise ValueError(
                f"thresholds file {path}: rule {metric} needs direction above|drop|drop_negative and warn <= alert"
            )
        rules.append(Rule(metric, spec["direction"], float(spec["warn"]), float(spec["alert"])))
    return rules


def assess(rules: list[Rule], values: dict[str, float], reference: dict[str, float]) -> tuple[str, list[str]]:
    """The month's level and the reasons (rules at warn or alert)."""
    worst, reasons = "ok", []
    for rule in rules:
        level = rule.level(values.get(rule.metric), reference.get(rule.metric))
        if level != "ok":
            reasons.append(f"{rule.metric}={values[rule.metric]:.4f} ({level})")
            if LEVELS.index(level) > LEVELS.index(worst):
                worst = level
    return worst, reasons
