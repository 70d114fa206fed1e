"""The gate's first step: judge a challenger against the champion and return a verdict; nothing is written.

`validate` reads the evaluation window, loads both models, scores them on the same questions, times the
challenger and runs its behavioural cases. It holds no lock and records nothing: `lifecycle.promote`
records the verdict on the version and deploys it (`Registry.move_champion`, which locks only for the
compare-and-set and the history event); `sotag promote --dry-run` prints it and stops.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from registry.behaviour import BehaviourReport, run_cases
from registry.gate import (
    GateConfig,
    Latency,
    Window,
    evaluation_frame,
    extra_checks,
    judge,
    load_tagger,
    measure_latency,
    overlap_note,
    score_models,
    window_for,
)
from registry.store import BrokenChampion, Registry
from tagger.errors import BrokenModel

CheckName = Literal["floor", "comparison", "behaviour", "latency"]


@dataclass(frozen=True)
class Check:
    """One check the gate ran on the challenger."""

    name: CheckName
    passed: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The gate's judgement of `version` against `champion` (the champion when it was judged).

    `metrics`: "challenger" (and "champion" when it was compared) -> metric -> value, rounded to 4 places.
    `reason`: the one line the CLI prints and the version records; `checks`: every check that ran, in order.
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

    @property
    def decision(self) -> Literal["promote", "keep"]:
        return "promote" if self.promote else "keep"

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why not, one line per failed check; the deciding line when every check passed."""
        failed = tuple(f"{c.name}: {c.detail}" for c in self.checks if not c.passed)
        return failed or (self.reason,)

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
    """Score `version` and `champion` (None: there is none yet) on one window and decide; write nothing.

    `questions` is the data set when the caller has already read it (retrain); else it is read from
    `config.data`. A champion that cannot be fetched (the artifact store or the tracking server failing)
    stops the judgement (ComponentFault): an outage never decides. A champion whose files are there but fail
    their sha256 or do not load is BrokenChampion (exit 3), unless `config.replace_broken_champion`: then
    the challenger is judged on the floor alone and the reason says so. Raises RegistryError (unknown
    version), DataError (no window).
    """
    start = time.perf_counter()
    window = window_for(config, registry.version(version).tags)
    frame = evaluation_frame(config.data, window, questions)
    models = {"challenger": load_tagger(f"models:/{registry.name}/{version}")}
    note = ""
    if champion is not None:
        try:
            models["champion"] = load_tagger(f"models:/{registry.name}/{champion}")
            note = overlap_note(registry.version(champion).tags, window)
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
    latency = measure_latency(models["challenger"], frame, config.latency_sample)
    behaviour = run_cases(models["challenger"], config.behaviour_cases) if config.behaviour_cases else None
    decision = extra_checks(config, decision, latency, behaviour)
    checks = _checks(config, scored["challenger"], scored.get("champion"), latency, behaviour)
    return Verdict(
        version=str(version),
        champion=champion,
        promote=decision.promote,
        reason=decision.reason,
        metrics=decision.metrics,
        checks=checks,
        window=window,
        n_questions=len(frame),
        latency=latency,
        latency_budget_ms=config.max_latency_ms,
        behaviour=behaviour,
        seconds=time.perf_counter() - start,
    )


def _checks(
    config: GateConfig,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    latency: Latency,
    behaviour: BehaviourReport | None,
) -> tuple[Check, ...]:
    """Each check the gate ran, passed or not (the decision itself comes from `judge` and `extra_checks`)."""
    floor_value = challenger[config.floor_metric]
    checks = [
        Check("floor", floor_value >= config.floor, f"{config.floor_metric} {floor_value:.4f} vs {config.floor:.4f}")
    ]
    if champion is not None:
        needed = champion[config.primary_metric] + config.min_delta
        value = challenger[config.primary_metric]
        checks.append(
            Check("comparison", value >= needed, f"{config.primary_metric} {value:.4f} vs needed {needed:.4f}")
        )
    if behaviour is not None:
        checks.append(Check("behaviour", not behaviour.failed_required, behaviour.summary()))
    checks.append(
        Check(
            "latency",
            latency.p50_ms <= config.max_latency_ms,
            f"p50 {latency.p50_ms:.2f} ms vs budget {config.max_latency_ms:g} ms",
        )
    )
    return tuple(checks)
