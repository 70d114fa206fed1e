"""The gate's first step: judge a challenger against the champion and return a verdict; nothing is written.

`validate` reads the evaluation window and takes the checks cheapest first, stopping at the first refusal:
the challenger's single-question latency, its behavioural cases, then both models scored on the same
questions (floor, comparison); with `--live`, then the gateway's live evidence (registry/live.py: read first,
judged last, so a refusal for thin evidence still shows the offline verdict). It holds no lock and records
nothing: `lifecycle.promote` records the verdict on the version and deploys it (`Registry.move_champion`, which
locks only for the compare-and-set and the history event); `sotag promote --dry-run` prints it and stops.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from sotag.infra.live_evidence import LiveEvidence
from sotag.registry.behaviour import BehaviourReport, run_cases
from sotag.registry.card import read_card
from sotag.registry.gate import (
    GateConfig,
    Latency,
    Window,
    behaviour_refusal,
    effective_floor,
    evaluation_frame,
    judge,
    latency_refusal,
    measure_latency,
    overlap_note,
    score_models,
    window_for,
)
from sotag.registry.live import judge_live, read_evidence, registered_at
from sotag.registry.store import BrokenChampion, Registry
from sotag.tagger.errors import BrokenModel

CheckName = Literal["latency", "behaviour", "floor", "comparison", "live"]
CheckStatus = Literal["passed", "failed", "skipped"]
# Cheapest first; the first refusal stops the gate and the checks after it are skipped. Latency times 50
# single questions and the behavioural cases score a few dozen; floor and comparison need the whole window
# scored with both models (an SBERT or ensemble model re-encodes thousands of questions: minutes on a CPU).
# `live` (only with --live) is one read of the prediction log, made first; it is judged after the offline checks.
ORDER: tuple[CheckName, ...] = ("latency", "behaviour", "floor", "comparison", "live")


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
    empty when a cheaper check refused before the window was scored; with --live also "live" -> the live figures
    (LiveEvidence.figures: `questions`, `agreement_top1`, `precision_at_1`, …), whatever check refused.
    `reason`: the one line the CLI prints and the version records; `checks`: every check in the order the gate
    takes them (ORDER), skipped ones included. `scored_tags`: the union of the vocabularies the window was scored
    over (0: not scored).
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
    live: LiveEvidence | None = None  # what the prediction log held about the challenger (--live); None: not read

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
        if self.live is not None:
            live = {"since": self.live.since.isoformat(), "compared_with": list(self.live.compared_with)}
            if self.live.absent:
                live["absent"] = self.live.absent
            tags["gate_live"] = json.dumps({**live, **self.live.figures()}, sort_keys=True)
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
    challenger is judged on the floor alone and the reason says so. With `config.live`, the prediction log is
    read before anything is scored (a log that cannot be reached: ComponentFault) and judged last; with no
    champion yet nothing can have served the challenger, so the live check is skipped and says so. Raises
    RegistryError (unknown version), DataError (no window, a prediction log URL that cannot be opened).
    """
    start = time.perf_counter()
    registered = registry.version(version)
    window = window_for(config, read_card(registry.client, registered))
    evidence: LiveEvidence | None = None
    if config.live is not None and champion is not None:
        evidence = read_evidence(config.live, str(version), registered_at(registered), champion)
    frame = evaluation_frame(config.data, window, questions)
    challenger = registry.load_tagger(version)
    done: list[Check] = []

    def verdict(
        promote: bool, reason: str, metrics: dict[str, dict[str, float]] | None = None, **extra: object
    ) -> Verdict:
        """The verdict with the checks that ran; those after a refusal are listed as skipped."""
        ran = {c.name for c in done}
        order = ORDER if config.live is not None else tuple(name for name in ORDER if name != "live")
        skipped = [Check(name, "skipped", "an earlier check refused") for name in order if name not in ran]
        figures = dict(metrics or {})
        if evidence is not None:
            figures["live"] = evidence.figures()
        return Verdict(
            version=str(version),
            champion=champion,
            promote=promote,
            reason=reason,
            metrics=figures,
            checks=(*done, *skipped),
            window=window,
            n_questions=len(frame),
            latency=latency,
            latency_budget_ms=config.max_latency_ms,
            behaviour=behaviour,
            seconds=time.perf_counter() - start,
            primary_metric=config.primary_metric,
            live=evidence,
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
    promote, reason = decision.promote, decision.reason
    if config.live is not None and promote:
        if evidence is None:
            done.append(Check("live", "skipped", f"no champion yet: nothing can have served v{version} live"))
            reason = f"{reason}; live: not judged (no champion yet: nothing can have served v{version} live)"
        else:
            live = judge_live(config.live, evidence, champion)
            done.append(Check("live", "failed" if live.refusal else "passed", live.refusal or live.summary))
            if live.refusal:
                promote, reason = False, f"live: {live.refusal}"
            else:
                reason = f"{reason}; live: {live.summary}"
    return verdict(promote, reason, decision.metrics, scored_tags=union, vocabulary_sizes=vocabularies)


def _quality_checks(
    config: GateConfig, challenger: dict[str, float], champion: dict[str, float] | None, champion_version: str | None
) -> list[Check]:
    """The floor and the comparison, from the window's scores (the decision itself comes from `judge`)."""
    floor_value = challenger[config.floor_metric]
    floor, _ = effective_floor(config, champion)
    floor_ok = floor_value >= floor
    checks = [
        Check(
            "floor",
            "passed" if floor_ok else "failed",
            f"{config.floor_metric} {floor_value:.4f} vs {floor:.4f}",
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
