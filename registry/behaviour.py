"""Behavioural cases the promotion gate runs on a challenger (CheckList-style model tests).

Three kinds, from a versioned file (`behaviour_cases.json` beside this module, or `--behaviour-cases`):
* `contains` (minimum functionality): the question ranks `tag` within its first `within` tags;
* `same_top` (invariance): a typo or a changed verb leaves the top tag as it was;
* `moves_up` (directional): the variant (e.g. "... in Java") scores `tag` higher than the original.
Ranks come from the scores, not the served threshold, so a case tests the ranking itself. A case
whose tags the model does not know is skipped; a failed case marked `required` (the default)
refuses promotion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from sotag.tagger.errors import InputError
from sotag.tagger.model import Tagger

# Package data, read in place (shipped in the wheel: pyproject.toml, package-data).
DEFAULT_CASES = Path(str(resources.files(__package__) / "behaviour_cases.json"))
KINDS = ("contains", "same_top", "moves_up")


@dataclass(frozen=True)
class Case:
    id: str
    type: str
    title: str
    body: str = ""
    variant: str | None = None
    tag: str | None = None
    within: int = 3
    required: bool = True


@dataclass(frozen=True)
class Outcome:
    case: Case
    result: str  # "pass", "fail" or "skip"
    detail: str


@dataclass(frozen=True)
class BehaviourReport:
    version: int
    outcomes: list[Outcome]

    @property
    def failed_required(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result == "fail" and o.case.required]

    def summary(self) -> str:
        counts = {r: sum(o.result == r for o in self.outcomes) for r in ("pass", "fail", "skip")}
        return f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped (cases v{self.version})"

    def results(self) -> dict[str, str]:
        return {o.case.id: o.result for o in self.outcomes}


def load_cases(path: Path = DEFAULT_CASES) -> tuple[int, list[Case]]:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        cases = [Case(**spec) for spec in raw["cases"]]
        version = int(raw.get("version", 1))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError("--behaviour-cases", f"{path}: not a behavioural cases file ({exc})") from None
    for case in cases:
        if case.type not in KINDS:
            raise InputError("--behaviour-cases", f"{path}: case {case.id} has type {case.type!r}; one of {KINDS}")
        if case.type in {"same_top", "moves_up"} and not case.variant:
            raise InputError("--behaviour-cases", f"{path}: case {case.id} needs a variant")
        if case.type in {"contains", "moves_up"} and not case.tag:
            raise InputError("--behaviour-cases", f"{path}: case {case.id} needs a tag")
    return version, cases


def _run(case: Case, tagger: Tagger, column: dict[str, int]) -> Outcome:
    if case.tag is not None and case.tag not in column:
        return Outcome(case, "skip", f"{case.tag} is not in the model's vocabulary")
    titles = [case.title] if case.variant is None else [case.title, case.variant]
    scores = tagger.scores(titles, [case.body] * len(titles))
    vocabulary = tagger.vocabulary
    if case.type == "contains":
        ranked = np.argsort(-scores[0], kind="stable")
        rank = int(np.flatnonzero(ranked == column[case.tag])[0]) + 1
        ok = rank <= case.within
        return Outcome(case, "pass" if ok else "fail", f"{case.tag} ranks {rank} (needed <= {case.within})")
    if case.type == "same_top":
        before, after = vocabulary[scores[0].argmax()], vocabulary[scores[1].argmax()]
        return Outcome(case, "pass" if before == after else "fail", f"top tag {before} -> {after}")
    j = column[case.tag]
    before, after = float(scores[0, j]), float(scores[1, j])
    return Outcome(case, "pass" if after > before else "fail", f"{case.tag} {before:.3f} -> {after:.3f}")


def run_cases(tagger: Tagger, path: Path = DEFAULT_CASES) -> BehaviourReport:
    version, cases = load_cases(path)
    column = {t: i for i, t in enumerate(tagger.vocabulary)}
    return BehaviourReport(version, [_run(case, tagger, column) for case in cases])
