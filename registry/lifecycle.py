"""`promote`, `rollback` and `status`: the registry lifecycle, as the CLI, the gateway and retrain call it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pandas as pd
from tabulate import tabulate

from registry.behaviour import run_cases
from registry.gate import (
    METRIC_LABELS,
    GateConfig,
    Verdict,
    evaluation_frame,
    extra_checks,
    judge,
    measure_latency,
    overlap_note,
    score_models,
    window_for,
)
from registry.store import CHALLENGER, CHAMPION, Registry, RegistryError
from tagger.errors import ArtifactError

EXIT_PROMOTED = 0
EXIT_KEPT = 3


@dataclass(frozen=True)
class PromotionResult:
    version: str
    promoted: bool
    champion: str | None  # the champion after the command
    verdict: Verdict | None
    seconds: float

    @property
    def exit_code(self) -> int:
        return EXIT_PROMOTED if self.promoted or self.verdict is None else EXIT_KEPT


def promote(
    registry: Registry, config: GateConfig, version: str | None = None, questions: pd.DataFrame | None = None
) -> PromotionResult:
    """Re-score challenger and champion on one window; move `champion` only if the gate says so.

    `questions` is the data set when the caller has already read it (retrain); else it is read from `config.data`.
    """
    start = time.perf_counter()
    candidate = str(version) if version is not None else registry.alias(CHALLENGER)
    if candidate is None:
        raise RegistryError(f"{registry.name} has no @{CHALLENGER}: train a model first (sotag train)")
    challenger_mv = registry.version(candidate)
    with registry.locked():
        # Decided under the lock, so a second promote waits and then judges against the new champion.
        champion = registry.alias(CHAMPION)
        if champion == candidate:
            print(f"promote: v{candidate} is already @{CHAMPION}; nothing to do")
            return PromotionResult(candidate, False, champion, None, time.perf_counter() - start)
        window = window_for(config, challenger_mv.tags)
        frame = evaluation_frame(config.data, window, questions)
        models = {"challenger": registry.load_tagger(candidate)}
        note = ""
        if champion is not None:
            try:
                models["champion"] = registry.load_tagger(champion)
                note = overlap_note(registry.version(champion).tags, window)
            except ArtifactError as exc:
                # A champion that no longer loads cannot be served either: judge the challenger on the floor.
                note = f"(champion v{champion} cannot be loaded, so it was not compared: {exc})"
        scored = score_models(models, frame, config.batch_size)
        verdict = judge(config, scored["challenger"], scored.get("champion"), champion, note)
        latency = measure_latency(models["challenger"], frame, config.latency_sample)
        behaviour = run_cases(models["challenger"], config.behaviour_cases) if config.behaviour_cases else None
        verdict = extra_checks(config, verdict, latency, behaviour)
        stamp = {
            "gate_decision": "promoted" if verdict.promote else "rejected",
            "gate_reason": verdict.reason[:5000],
            "gate_window": window.describe(),
            "gate_metrics": json.dumps(verdict.metrics, sort_keys=True),
            "latency_p50_ms": f"{latency.p50_ms:.3f}",
            "latency_p99_ms": f"{latency.p99_ms:.3f}",
            "latency_budget_ms": f"{config.max_latency_ms:g}",
        }
        if behaviour is not None:
            stamp["behaviour_summary"] = behaviour.summary()
            stamp["behaviour_results"] = json.dumps(behaviour.results(), sort_keys=True)
        registry.tag_version(candidate, stamp)
        if verdict.promote:
            registry.move_champion(
                candidate, champion, "promote", verdict.reason, verdict.metrics, mirror_stages=config.mirror_stages
            )
    seconds = time.perf_counter() - start
    after = candidate if verdict.promote else champion
    print(
        f"promote: challenger v{candidate}: single-question p50 {latency.p50_ms:.2f} ms (budget "
        f"{config.max_latency_ms:g} ms)" + (f"; behavioural cases: {behaviour.summary()}" if behaviour else "")
    )
    _print_verdict(registry.name, candidate, champion, verdict, window.describe(), len(frame), seconds)
    return PromotionResult(candidate, verdict.promote, after, verdict, seconds)


def _print_verdict(
    name: str, candidate: str, champion: str | None, verdict: Verdict, window: str, n: int, seconds: float
) -> None:
    rows = []
    for role, metrics in verdict.metrics.items():
        version = candidate if role == "challenger" else champion
        rows.append([f"{role} v{version}", *(f"{metrics[k]:.4f}" for k in METRIC_LABELS)])
    print(f"promote: evaluation window {window} ({n} questions)")
    print(tabulate(rows, headers=["", *METRIC_LABELS.values()], tablefmt="simple"))
    if verdict.promote:
        print(f"promote: PROMOTED v{candidate} to @{CHAMPION} in {seconds:.1f} s: {verdict.reason}")
        print(f"serve:   models:/{name}@{CHAMPION}")
    else:
        kept = f"v{champion} stays @{CHAMPION}" if champion else f"no @{CHAMPION} yet"
        print(f"promote: KEPT ({kept}) in {seconds:.1f} s: {verdict.reason}")


def rollback(registry: Registry, reason: str = "manual rollback", mirror_stages: bool = False) -> str:
    """Put `champion` back on the champion before the current one; return that version."""
    with registry.locked():
        current = registry.alias(CHAMPION)
        if current is None:
            raise RegistryError(f"{registry.name} has no @{CHAMPION}: nothing to roll back")
        lineage = registry.lineage()
        if lineage and lineage[-1] != current:
            raise RegistryError(
                f"@{CHAMPION} is v{current} but sotag's history ends at v{lineage[-1]}: the alias was moved "
                f"outside sotag; promote a version (sotag promote --version N) to resume the history"
            )
        if len(lineage) < 2:
            raise RegistryError(f"v{current} is the first champion: there is no previous champion to roll back to")
        target = lineage[-2]
        registry.version(target)  # refuse a deleted version before touching the alias
        event = registry.move_champion(target, current, "rollback", reason, mirror_stages=mirror_stages)
        registry.tag_version(current, {"rolled_back_at": event.at, "rollback_reason": reason})
    print(f"rollback: @{CHAMPION} moved from v{current} back to v{target} ({reason})")
    return target


def status_text(registry: Registry) -> str:
    aliases = registry.aliases()
    rows = []
    for mv in registry.versions():
        tags = mv.tags
        rows.append(
            [
                f"v{mv.version}",
                ",".join(sorted(aliases.get(str(mv.version), []))),
                tags.get("vectorizer", ""),
                tags.get("top_n_tags", ""),
                tags.get("precision_at_1", ""),
                tags.get("f1_at_3", ""),
                tags.get("recall_at_5", ""),
                tags.get("gate_decision", ""),
                pd.Timestamp(mv.creation_timestamp, unit="ms").strftime("%Y-%m-%d %H:%M"),
                (tags.get("run_id") or mv.run_id or "")[:12],
            ]
        )
    headers = ["version", "aliases", "vectorizer", "tags", "P@1", "F1@3", "R@5", "gate", "created (UTC)", "run"]
    lines = [f"model {registry.name}", tabulate(rows, headers=headers, tablefmt="simple"), "", "promotion history:"]
    history = registry.history()
    if not history:
        lines.append("  (no champion yet: sotag promote)")
    for event in history:
        previous = f"v{event.previous}" if event.previous else "none"
        lines.append(f"  {event.at}  {event.action:<8} {previous} -> v{event.version}  by {event.by}: {event.reason}")
    return "\n".join(lines)
