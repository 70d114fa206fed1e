"""Per-month severity (ok / warn / alert) from the rules in a thresholds file.

A rule reads one statistic of one family (embeddings, text, predictions, supervised, vocabulary) and says, in
its reason, what that family was compared with. A supervised rule may be `relative` (a drop as a
share of the baseline level) with a `noise_z` floor: a drop within `noise_z` standard errors of
the baseline at the month's size (sqrt(p(1-p)/n)) is sampling noise, not a warning.

Each family has a minimum sample (`_min_questions` in the thresholds file): a family with fewer questions in a
month neither warns nor alerts, and the month says so in one line per sample size, naming the families it covers:
"3 questions, under every family's minimum (embeddings: 75, text: 75, ...): not judged". The shipped floors are
measured (bench/drift_floors.py): the smallest month size at which 99 of 100 ordinary months drawn from the
family's baseline period stay `ok`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

# "unjudged": no rule could be applied (every family under its minimum sample, or skipped), which is not "ok".
# Ordered from the least to the most severe: a job's worst month is the highest.
LEVELS = ("unjudged", "ok", "warn", "alert")
# Package data, read in place (shipped in the wheel: pyproject.toml, package-data).
DEFAULT_THRESHOLDS = Path(str(resources.files(__package__) / "thresholds.json"))
FAMILIES = ("embeddings", "text", "predictions", "supervised", "vocabulary")
# The statistic holding a family's month sample, for a rule's `noise_z` (the standard error of a share at that size).
SAMPLE_SIZE = {"supervised": "n_evaluated", "vocabulary": "n_tagged_questions"}
LABELS = {
    "embedding_drift_auc": "embedding AUC",
    "centroid_cosine_distance": "centroid distance",
    "tag_psi": "tag PSI",
    "top_tag_js": "top-tag Jensen-Shannon",
    "no_tag_share": "no-tag share",
    "precision_at_1": "P@1",
    "recall_at_5": "R@5",
    "f1_at_3": "F1@3",
    "oov_share": "out-of-vocabulary share",
    "served_tag_psi": "served tag PSI",
    "served_top_score_ks": "served top-score KS",
}


@dataclass(frozen=True)
class Rule:
    metric: str
    direction: str  # "above": value >= level; "drop": reference - value >= level; "drop_negative": value - reference
    warn: float
    alert: float
    family: str = "embeddings"
    relative: bool = False  # "drop" as a share of the reference level
    noise_z: float = 0.0  # a drop must also exceed this many standard errors at the month's size

    def delta(self, value: float, reference: float | None) -> float | None:
        if self.direction == "above":
            return value
        if reference is None or reference != reference:
            return None
        change = reference - value if self.direction == "drop" else value - reference
        return change / reference if self.relative and reference > 0 else change

    def standard_error(self, reference: float | None, n: float | None) -> float:
        if reference is None or not n or not 0.0 <= reference <= 1.0:
            return 0.0
        return math.sqrt(reference * (1.0 - reference) / n)

    def level(self, value: float | None, reference: float | None, n: float | None = None) -> str:
        if value is None or value != value:
            return "ok"
        delta = self.delta(value, reference)
        if delta is None:
            return "ok"
        if self.noise_z and self.direction != "above":
            change = abs(value - reference)
            if change < self.noise_z * self.standard_error(reference, n):
                return "ok"
        return "alert" if delta >= self.alert else "warn" if delta >= self.warn else "ok"

    def reason(self, level: str, value: float, reference: float | None, baseline: str, n: float | None) -> str:
        label = LABELS.get(self.metric, self.metric)
        if self.direction == "above" or reference is None:
            limit = self.alert if level == "alert" else self.warn
            return f"{label} {value:.3f} against {baseline} (≥ {limit:g}: {level})"
        change = value - reference
        detail = f"{change / reference:+.0%}" if self.relative and reference > 0 else f"{change:+.3f}"
        se = self.standard_error(reference, n)
        if se:
            detail += f", {abs(change) / se:.1f} standard errors at n={int(n)}"
        return f"{label} {value:.3f} vs {baseline} {reference:.3f} ({detail}; {level})"


def _read(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"thresholds file {path}: {exc}") from exc


def load_floors(path: Path = DEFAULT_THRESHOLDS) -> dict[str, int]:
    """{family: minimum questions} from the file's `_min_questions` (a family it leaves out has no floor)."""
    raw = _read(path).get("_min_questions", {})
    if not isinstance(raw, dict) or any(
        f not in FAMILIES or isinstance(n, bool) or not isinstance(n, int) or n < 1 for f, n in raw.items()
    ):
        raise ValueError(f"thresholds file {path}: _min_questions maps each of {FAMILIES} to a positive integer")
    return dict(raw)


@dataclass(frozen=True)
class Shortfall:
    """A family's month sample under its floor: `n` questions where it needs `floor`."""

    n: int
    floor: int

    def __str__(self) -> str:
        return f"{self.n} questions, under its minimum of {self.floor}"


def not_enough(sizes: dict[str, int], floors: dict[str, int]) -> dict[str, Shortfall]:
    """{family: its shortfall} for each family in `sizes` whose month sample is under its floor."""
    return {
        family: Shortfall(sizes[family], floors[family])
        for family in FAMILIES
        if family in floors and family in sizes and sizes[family] < floors[family]
    }


def not_judged(too_few: dict[str, Shortfall], judged: Collection[str]) -> list[str]:
    """One line per month sample size under a floor, naming the families it leaves unjudged and their floors.

    The families often share one sample (a month of 3 questions is 3 for each): one line then says it all, rather
    than one per family. `judged` are the families the month would have been judged on: when the line covers
    them all it says "every family"."""
    by_size: dict[int, list[str]] = {}
    for family, shortfall in too_few.items():
        by_size.setdefault(shortfall.n, []).append(family)
    lines = []
    for n, families in by_size.items():
        floors = ", ".join(f"{family}: {too_few[family].floor}" for family in families)
        if len(by_size) == 1 and set(judged) <= set(families):
            whose = "every family's"
        else:
            whose = "this family's" if len(families) == 1 else "these families'"
        lines.append(f"{n} questions, under {whose} minimum ({floors}): not judged")
    return lines


def load_rules(path: Path = DEFAULT_THRESHOLDS) -> list[Rule]:
    raw = _read(path)
    rules = []
    for metric, spec in raw.items():
        if metric.startswith("_"):
            continue
        if spec.get("direction") not in {"above", "drop", "drop_negative"} or spec["warn"] > spec["alert"]:
            raise ValueError(
                f"thresholds file {path}: rule {metric} needs direction above|drop|drop_negative and warn <= alert"
            )
        family = spec.get("family", "embeddings")
        if family not in FAMILIES:
            raise ValueError(f"thresholds file {path}: rule {metric} has family {family!r}; one of {FAMILIES}")
        rules.append(
            Rule(
                metric,
                spec["direction"],
                float(spec["warn"]),
                float(spec["alert"]),
                family=family,
                relative=bool(spec.get("relative", False)),
                noise_z=float(spec.get("noise_z", 0.0)),
            )
        )
    return rules


def assess(
    rules: list[Rule],
    values: dict[str, float],
    reference: dict[str, float],
    words: dict[str, str] | None = None,
    too_few: dict[str, Shortfall] | None = None,
) -> tuple[str, list[str]]:
    """The month's level and the reasons (rules at warn or alert), each naming its baseline; "unjudged" when no
    rule applied.

    `words` maps a family to what it was compared with, in a few words; a family without words was skipped.
    `too_few` (from `not_enough`) maps a family under its minimum sample to its shortfall: its rules are not
    applied, and the first reasons say so (`not_judged`).
    """
    words = words or {}
    too_few = too_few or {}
    worst, reasons = "unjudged", not_judged(too_few, words or FAMILIES)
    for rule in rules:
        if (words and rule.family not in words) or rule.family in too_few:
            continue
        worst = max(worst, "ok", key=LEVELS.index)  # a rule applies: the month is judged
        n = values.get(SAMPLE_SIZE.get(rule.family, "n_evaluated"))
        level = rule.level(values.get(rule.metric), reference.get(rule.metric), n)
        if level != "ok":
            baseline = words.get(rule.family, "the reference")
            reasons.append(rule.reason(level, values[rule.metric], reference.get(rule.metric), baseline, n))
            if LEVELS.index(level) > LEVELS.index(worst):
                worst = level
    return worst, reasons
