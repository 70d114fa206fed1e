"""`promote`, `rollback` and `status`: the registry lifecycle, as the CLI, the gateway and retrain call it.

Library functions return results; the CLI (registry/cli.py) prints them. `promote` judges first
(`validate`, unlocked, writes nothing), then records the verdict on the version and deploys it
(`Registry.move_champion`: the lock covers only the compare-and-set and the history event).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
from tabulate import tabulate

from sotag.registry.card import ModelCard, read_card
from sotag.registry.gate import GateConfig
from sotag.registry.store import CHALLENGER, CHAMPION, Event, Registry, RegistryConflict, RegistryError
from sotag.registry.validate import Verdict, validate

EXIT_PROMOTED = 0
EXIT_KEPT = 3
# A promote whose champion moved while it was judging judges again against the new one, this many times at most.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class PromotionResult:
    version: str
    promoted: bool
    champion: str | None  # the champion after the command
    verdict: Verdict | None  # None: the version already was the champion, nothing was judged
    seconds: float
    dry_run: bool = False  # the verdict was computed and nothing was recorded
    # Why the champion was kept without a verdict (retrain: too few questions neither model trained on).
    unjudged: str | None = None

    @property
    def exit_code(self) -> int:
        if self.unjudged is not None:
            return EXIT_KEPT
        if self.verdict is None:
            return EXIT_PROMOTED
        if self.dry_run:
            return EXIT_PROMOTED if self.verdict.promote else EXIT_KEPT
        return EXIT_PROMOTED if self.promoted else EXIT_KEPT


def promote(
    registry: Registry,
    config: GateConfig,
    version: str | None = None,
    questions: pd.DataFrame | None = None,
    dry_run: bool = False,
) -> PromotionResult:
    """Judge `version` (default @challenger) against @champion; move @champion only if the gate says so.

    `questions` is the data set when the caller has already read it (retrain); else it is read from
    `config.data`. `dry_run`: return the verdict, record nothing. When another writer moves @champion
    while this one judges, the move's compare-and-set refuses and the challenger is judged again against
    the new champion (at most MAX_ATTEMPTS times, then RegistryConflict).
    """
    start = time.perf_counter()
    if not dry_run:
        registry.recover("promote")  # an interrupted move is completed or abandoned before anything is judged
    candidate = str(version) if version is not None else registry.alias(CHALLENGER)
    if candidate is None:
        raise RegistryError(f"{registry.name} has no @{CHALLENGER}: train a model first (sotag train)")
    registry.version(candidate)  # refuse an unknown version before reading any data
    attempt = 0
    while True:
        attempt += 1
        champion = registry.alias(CHAMPION)
        if champion == candidate:
            return PromotionResult(candidate, False, champion, None, time.perf_counter() - start, dry_run)
        verdict = validate(registry, config, candidate, champion, questions)
        if dry_run:
            return PromotionResult(candidate, False, champion, verdict, time.perf_counter() - start, True)
        last = attempt >= MAX_ATTEMPTS
        if not verdict.promote:
            if not last and registry.alias(CHAMPION) != champion:
                continue  # judged against a champion that has since moved: judge again
            record_verdict(registry, verdict)
            return PromotionResult(candidate, False, champion, verdict, time.perf_counter() - start)
        try:
            deploy(registry, verdict, config.mirror_stages)
        except RegistryConflict as exc:
            if last:
                raise RegistryConflict(
                    f"conflict: @{CHAMPION} moved while v{candidate} was judged, {attempt} times in a row ({exc})"
                ) from exc
            continue
        record_verdict(registry, verdict)
        return PromotionResult(candidate, True, candidate, verdict, time.perf_counter() - start)


def record_verdict(registry: Registry, verdict: Verdict) -> None:
    """The verdict on the judged version: in its card (`gate`) and `gate_decision` tag; a refusal also as the
    version's description, one sentence (a promotion's is written by the move)."""
    registry.record_gate(verdict.version, verdict.tags())
    if not verdict.promote:
        against = f"champion v{verdict.champion} stays" if verdict.champion else "no champion yet"
        registry.describe(verdict.version, f"Kept out of @{CHAMPION} ({against}): {'; '.join(verdict.reasons)}")


def deploy(registry: Registry, verdict: Verdict, mirror_stages: bool = False) -> Event:
    """Move @champion to the verdict's version if @champion is still the one it was judged against."""
    if not verdict.promote:
        raise RegistryError(f"v{verdict.version} was not judged fit for @{CHAMPION}: {verdict.reason}")
    return registry.move_champion(
        verdict.version, verdict.champion, "promote", verdict.reason, verdict.metrics, mirror_stages=mirror_stages
    )


@dataclass(frozen=True)
class RollbackResult:
    version: str  # the champion after the rollback
    previous: str  # the champion it replaced
    reason: str
    event: Event


def rollback(registry: Registry, reason: str = "manual rollback", mirror_stages: bool = False) -> RollbackResult:
    """Put `champion` back on the champion before the current one.

    Decided from the history without a lock; the move's compare-and-set refuses (RegistryConflict) when
    @champion changed meanwhile.
    """
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
    return RollbackResult(target, current, reason, event)


def gate_label(card: ModelCard, version: str, history: list[Event]) -> str:
    """A version's gate decision as `status` and the app show it: "promoted", "rejected", or
    "promoted, then rolled back (at <time>)" for a champion a rollback replaced (the last such rollback)."""
    decision = card.gate.get("gate_decision", "")
    rolled_back = [e for e in history if e.action == "rollback" and e.state == "done" and e.previous == str(version)]
    if rolled_back:
        return f"{decision or 'champion'}, then rolled back (at {rolled_back[-1].at})"
    return decision


def status_text(registry: Registry) -> str:
    """Versions, aliases and the promotion history; an interrupted move found now is repaired and said first."""
    recovered = registry.recover("status") if registry.model() is not None else []
    aliases = registry.aliases()
    history = registry.history()
    rows = []
    for mv in registry.versions():
        card = read_card(registry.client, mv)
        rows.append(
            [
                f"v{mv.version}",
                ",".join(sorted(aliases.get(str(mv.version), []))),
                card.vectorizer,
                "" if card.vocabulary_size is None else str(card.vocabulary_size),
                card.headline("precision_at_1"),
                card.headline("f1_at_3"),
                card.headline("recall_at_5"),
                card.headline("precision_at_1_all"),
                card.headline("recall_at_5_all"),
                card.headline("f1_at_3_all"),
                card.headline("vocabulary_coverage"),
                gate_label(card, mv.version, history),
                pd.Timestamp(mv.creation_timestamp, unit="ms").strftime("%Y-%m-%d %H:%M"),
                (card.run_id or mv.run_id or "")[:12],
            ]
        )
    headers = [
        "version", "aliases", "vectorizer", "tags", "P@1", "F1@3", "R@5",
        "P@1 all", "R@5 all", "F1@3 all", "vocab cov", "gate", "created (UTC)", "run",
    ]  # fmt: skip
    legend = (
        "P@1 F1@3 R@5: the model's own tags, questions carrying one; '… all': every question of its evaluation window "
        "against every tag its asker chose; vocab cov: share of those tag occurrences its vocabulary holds "
        "(empty: trained before sotag recorded them)"
    )
    lines = [f"model {registry.name}"]
    for event in recovered:
        lines.append(
            f"INTERRUPTED MOVE: {event.action} v{event.previous or 'none'} -> v{event.version}: {event.recovered}"
        )
    lines += [
        tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True),  # figures as the card has them
        legend,
        "",
        f"promotion history (one run per move in the MLflow experiment '{registry.log.experiment}'):",
    ]
    if not history:
        lines.append("  (no champion yet: sotag promote)")
    for event in history:
        previous = f"v{event.previous}" if event.previous else "none"
        state = "" if event.state == "done" and not event.recovered else f" [{event.state}: {event.recovered}]"
        lines.append(
            f"  {event.at}  {event.action:<8} {previous} -> v{event.version}  by {event.by}: {event.reason}{state}"
        )
    return "\n".join(lines)
