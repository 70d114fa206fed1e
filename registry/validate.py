"""The gate's first step: judge a challenger against the champion and return a verdict; nothing is written.

`validate` reads the evaluation window and takes the checks cheapest first, stopping at the first refusal:
the challenger's single-question latency, its behavioural cases, then both models scored on the same
questions (floor, comparison). It holds no lock and records nothing: `lifecycle.promote`
records the verdict on the version and deploys it (`Registry.move_champion`, which locks only for the
compare-and-set and the history event); `sotag promote --dry-run` prints it and stops.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from sotag.registry.behaviour import BehaviourReport, run_cases
from sotag.registry.card import read_card
from sotag.registry.gate import (
    GateConfig,
    Latency,
    Window,
    behaviour_refusal,
    evaluation_frame,
    judge,
    latency_refusal,
    measure_latency,
    overlap_note,
    score_models,
    window_for,
)
from sotag.registry.store import BrokenChampion, Registry
from sotag.tagger.errors import BrokenModel

CheckName = Literal["latency", "behaviour", "floor", "comparison"]
CheckStatus = Literal["passed", "failed", "skipped"]
# Cheapest first; the first refusal stops the gate and the checks after it are skipped. Latency times 50
# single questions and the behavioural cases score a few dozen; floor and comparison need the whole window
# scored with both models (an SBERT or ensemble model re-encodes thousands of questions: minutes on a CPU).
ORDER: tuple[CheckName, ...] = ("latency", "behaviour", "floor", "comparison")


@dataclass(frozen=True)
class Check:
    """One check of the gate: passed, failed, or skipped (an earlier one refused, or it does not apply)."""

    name: CheckName
    status: CheckStatus
    detail: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class Verdict:
    """The gate's judgement of `version` against `champion` (the champion when it was judged).

    `metrics`: "challenger" (and "champion" when it was compared) -> metric -> value, rounded to 4 places;
    empty when a cheaper check refused before the window was scored. `reason`: the one line the CLI prints
    and the version records; `checks`: every check in the order the gate takes them (ORDER), skipped ones
    included. `scored_tags`: the union of the vocabularies the window was scored over (0: not scored).
    """

    version: str
    champion: str | None
    promote: bool
    reason: str
    metrics: dict[str, dict[str, float]]
    checks: tuple[Check, ...]
    window: Window
    n_questions: int
    latency: Latency
    latency_budget_ms: float
    behaviour: BehaviourReport | None
    seconds: float
    scored_tags: int = 0
    vocabulary_sizes: dict[str, int] = field(default_factory=dict)  # "challenger"/"champion" -> its tag count
    primary_metric: str = "f1_at_3_all"  # the metric the comparison decided on

    @property
    def decision(self) -> Literal["promote", "keep"]:
        return "promote" if self.promote else "keep"

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why not, one line per failed check; the deciding line when every check passed."""
        failed = tuple(f"{c.name}: {c.detail}" for c in self.checks if c.status == "failed")
        return failed or (self.reason,)

    def checks_line(self) -> str:
        """`latency passed, behaviour FAILED, floor skipped, comparison skipped`."""
        words = {"passed": "passed", "failed": "FAILED", "skipped": "skipped"}
        return ", ".join(f"{c.name} {words[c.status]}" for c in self.checks)

    def tags(self) -> dict[str, str]:
        """The verdict as the version records it (the `gate_*`, `latency_*` and `behaviour_*` tags)."""
        tags = {
            "gate_decision": "promoted" if self.promote else "rejected",
            "gate_reason": self.reason[:5000],
            "gate_window": self.window.describe(),
            "gate_metrics": json.dumps(self.metrics, sort_keys=True),
            "latency_p50_ms": f"{self.latency.p50_ms:.3f}",
            "latency_p99_ms": f"{self.latency.p99_ms:.3f}",
            "latency_budget_ms": f"{self.latency_budget_ms:g}",
        }
        if self.behaviour is not None:
            tags["behaviour_summary"] = self.behaviour.summary()
            tags["behaviour_results"] = json.dumps(self.behaviour.results(), sort_keys=True)
        return tags


def validate(
    registry: Registry,
    config: GateConfig,
    version: str,
    champion: str | None,
    questions: pd.DataFrame | None = None,
) -> Verdict:
    """Judge `version` against `champion` (None: there is none yet) on one window, cheapest check first; write
    nothing.

    The checks run in ORDER and the first refusal stops the gate: a challenger over the latency budget or
    failing a required behavioural case is refused without the window being scored (nor the champion fetched).
    `questions` is the data set when the caller has already read it (retrain); else it is read from
    `config.data`. A champion that cannot be fetched (the artifact store or the tracking server failing) stops
    the judgement (ComponentFault): an outage never decides. A champion whose files are there but fail their
    sha256 or do not load is BrokenChampion (exit 3), unless `config.replace_broken_champion`: then the
    challenger is judged on the floor alone and the reason says so. Raises RegistryError (unknown version),
    DataError (no window).
    """
    start = time.perf_counter()
    window = window_for(config, read_card(registry.client, registry.version(version)))
    frame = evaluation_frame(config.data, window, questions)
    challenger = registry.load_tagger(version)
    done: list[Check] = []

    def verdict(
        promote: bool, reason: str, metrics: dict[str, dict[str, float]] | None = None, **extra: object
    ) -> Verdict:
        """The verdict with the checks that ran; those after a refusal are listed as skipped."""
        ran = {c.name for c in done}
        skipped = [Check(name, "skipped", "an earlier check refused") for name in ORDER if name not in ran]
        return Verdict(
            version=str(version),
            champion=champion,
            promote=promote,
            reason=reason,
            metrics=metrics or {},
            checks=(*done, *skipped),
            window=window,
            n_questions=len(frame),
            latency=latency,
            latency_budget_ms=config.max_latency_ms,
            behaviour=behaviour,
            seconds=time.perf_counter() - start,
            primary_metric=config.primary_metric,
            **extra,
        )

    behaviour: BehaviourReport | None = None
    latency = measure_latency(challenger, frame, config.latency_sample)
    budget = f"p50 {latency.p50_ms:.2f} ms vs budget {config.max_latency_ms:g} ms"
    refusal = latency_refusal(config, latency)
    done.append(Check("latency", "failed" if refusal else "passed", budget))
    if refusal:
        return verdict(False, f"{refusal}; the window was not scored")

    if config.behaviour_cases is None:
        done.append(Check("behaviour", "skipped", "no behavioural cases (--no-behaviour-cases)"))
    else:
        behaviour = run_cases(challenger, config.behaviour_cases)
        refusal = behaviour_refusal(behaviour)
        done.append(Check("behaviour", "failed" if refusal else "passed", behaviour.summary()))
        if refusal:
            return verdict(False, f"{refusal}; the window was not scored")

    models = {"challenger": challenger}
    note = ""
    if champion is not None:
        try:
            models["champion"] = registry.load_tagger(champion)
            note = overlap_note(read_card(registry.client, registry.version(champion)), window)
        except BrokenModel as exc:
            if not config.replace_broken_champion:
                raise BrokenChampion(
                    f"champion v{champion} is broken ({exc}); v{version} cannot be compared against it, so it is "
                    f"not promoted on the floor alone: restore the champion (sotag rollback), or replace it with "
                    f"--replace-broken-champion"
                ) from exc
            note = (
                f"(replaced broken champion v{champion} on the floor alone, by --replace-broken-champion; "
                f"it was not compared: {exc})"
            )
    scored = score_models(models, frame, config.batch_size)
    decision = judge(config, scored["challenger"], scored.get("champion"), champion, note)
    done.extend(_quality_checks(config, scored["challenger"], scored.get("champion"), champion))
    vocabularies = {role: len(tagger.vocabulary) for role, tagger in models.items()}
    union = len({t for tagger in models.values() for t in tagger.vocabulary})
    return verdict(
        decision.promote, decision.reason, decision.metrics, scored_tags=union, vocabulary_sizes=vocabularies
    )


def _quality_checks(
    config: GateConfig, challenger: dict[str, float], champion: dict[str, float] | None, champion_version: str | None
) -> list[Check]:
    """The floor and the comparison, from the window's scores (the decision itself comes from `judge`)."""
    floor_value = challenger[config.floor_metric]
    floor_ok = floor_value >= config.floor
    checks = [
        Check(
            "floor",
            "passed" if floor_ok else "failed",
            f"{config.floor_metric} {floor_value:.4f} vs {config.floor:.4f}",
        )
    ]
    if champion is None:
        why = "no champion yet" if champion_version is None else f"champion v{champion_version} cannot be loaded"
        checks.append(Check("comparison", "skipped", why))
    elif not floor_ok:
        checks.append(Check("comparison", "skipped", "the floor refused"))
    else:
        needed = champion[config.primary_metric] + config.min_delta
        value = challenger[config.primary_metric]
        status = "passed" if value >= needed else "failed"
        checks.append(Check("comparison", status, f"{config.primary_metric} {value:.4f} vs needed {needed:.4f}"))
    return checks
