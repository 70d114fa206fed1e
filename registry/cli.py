"""`sotag promote`, `sotag rollback` and `sotag status`; the gate's flags and the promotion report, shared with
`sotag retrain`. The lifecycle functions return results; this module prints them."""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from sotag.data.split import parse_sources
from sotag.infra.argtypes import add_data_argument, positive_float, positive_int, setting, unit_float
from sotag.infra.tracking import TrackingSettings, log_to_launched_run
from sotag.registry.behaviour import DEFAULT_CASES
from sotag.registry.gate import GATE_METRICS, METRIC_LABELS, GateConfig
from sotag.registry.lifecycle import PromotionResult, RollbackResult, promote, rollback, status_text
from sotag.registry.live import LiveGate, evidence_line
from sotag.registry.store import CHAMPION, open_registry
from sotag.registry.validate import Verdict
from sotag.settings import Settings


def add_gate_args(p: argparse.ArgumentParser) -> None:
    setting(p, "--primary-metric", "promote.primary_metric", choices=GATE_METRICS)
    setting(p, "--floor-metric", "promote.floor_metric", choices=GATE_METRICS)
    setting(p, "--floor", "promote.floor", "the floor metric the challenger must reach", type=unit_float)
    setting(
        p,
        "--floor-mode",
        "promote.floor_mode",
        "champion: with a champion, the floor is never above its own value on the same window (a loop on new weeks)",
        choices=("fixed", "champion"),
    )
    setting(p, "--min-delta", "promote.min_delta", "required gain over the champion", type=float)
    setting(
        p,
        "--max-latency-ms",
        "promote.max_latency_ms",
        "refuse a challenger whose single-question p50 (in-process) is over this (TF-IDF and plt pass 5, an SBERT "
        "or ensemble model on a CPU needs a larger budget)",
        type=positive_float,
    )
    setting(
        p,
        "--behaviour-cases",
        "promote.behaviour_cases",
        "behavioural cases file the challenger must pass (none: the cases shipped with sotag)",
        type=Path,
    )
    setting(p, "--no-behaviour-cases", "promote.run_behaviour_cases", "run no behavioural case", action="store_false")
    setting(
        p,
        "--mirror-stages",
        "promote.mirror_stages",
        "also set the legacy stage: champion Production, previous Archived",
        action="store_true",
    )
    setting(
        p,
        "--replace-broken-champion",
        "promote.replace_broken_champion",
        "when @champion's files fail their sha256 or do not load, judge the challenger on the floor alone and "
        "promote it (the history says so); by default nothing is promoted over a broken champion (exit 3)",
        action="store_true",
    )
    add_live_args(p)


def add_live_args(p: argparse.ArgumentParser) -> None:
    """`--live` and its thresholds (the `promote.live_*` settings say why their defaults)."""
    setting(
        p,
        "--live",
        "promote.live",
        "after the offline checks pass, also judge the gateway's prediction log since the challenger was "
        "registered: enough shadow/canary questions, top-1 agreement with the champion, live P@1 on feedback",
        action="store_true",
    )
    setting(
        p,
        "--live-min-questions",
        "promote.live_min_questions",
        "shadow- or canary-scored questions needed since the challenger was registered",
        type=positive_int,
    )
    setting(
        p,
        "--live-min-agreement",
        "promote.live_min_agreement",
        "share of those questions where the challenger's top tag is the champion's",
        type=unit_float,
    )
    setting(
        p,
        "--live-min-feedback",
        "promote.live_min_feedback",
        "feedback rows with both models' P@1 needed before live precision is judged (fewer: reported, not judged)",
        type=positive_int,
    )
    setting(
        p,
        "--live-max-precision-drop",
        "promote.live_max_precision_drop",
        "how far the challenger's live P@1 may be below the champion's on the same feedback rows",
        type=unit_float,
    )
    setting(
        p,
        "--prediction-log",
        "gateway.prediction_log",
        "the gateway's prediction log that --live reads, a database URL; none: sqlite:///<home>/predictions.db",
    )


def gate_from_settings(
    settings: Settings,
    data: tuple[Path, ...],
    eval_start: str | None = None,
    eval_end: str | None = None,
    eval_exclude_sources: str | None = None,
) -> GateConfig:
    """The `promote` section as the gate's configuration, on `data` and an optional window."""
    g = settings.promote
    cases = (g.behaviour_cases or DEFAULT_CASES) if g.run_behaviour_cases else None
    return GateConfig(
        data=data,
        primary_metric=g.primary_metric,
        floor_metric=g.floor_metric,
        floor=g.floor,
        floor_mode=g.floor_mode,
        min_delta=g.min_delta,
        eval_start=eval_start,
        eval_end=eval_end,
        exclude_sources=None if eval_exclude_sources is None else parse_sources(eval_exclude_sources),
        mirror_stages=g.mirror_stages,
        max_latency_ms=g.max_latency_ms,
        behaviour_cases=cases,
        replace_broken_champion=g.replace_broken_champion,
        live=live_gate(settings),
    )


def live_gate(settings: Settings) -> LiveGate | None:
    """The live check's configuration when `promote.live` is on; None otherwise."""
    g = settings.promote
    if not g.live:
        return None
    return LiveGate(
        url=settings.prediction_log_url,
        min_questions=g.live_min_questions,
        min_agreement=g.live_min_agreement,
        min_feedback=g.live_min_feedback,
        max_precision_drop=g.live_max_precision_drop,
    )


def promotion_lines(result: PromotionResult, model_name: str) -> list[str]:
    """What `promote` (and `retrain`, and `promote --dry-run`) prints about a result."""
    verdict = result.verdict
    if result.unjudged is not None:
        kept = f"v{result.champion} stays @{CHAMPION}" if result.champion else f"no @{CHAMPION} yet"
        return [f"promote: KEPT ({kept}) without a verdict in {result.seconds:.1f} s: {result.unjudged}"]
    if verdict is None:
        return [f"promote: v{result.version} is already @{CHAMPION}; nothing to do"]
    behaviour = f"; behavioural cases: {verdict.behaviour.summary()}" if verdict.behaviour else ""
    kept = f"v{verdict.champion} stays @{CHAMPION}" if verdict.champion else f"no @{CHAMPION} yet"
    lines = [
        f"promote: challenger v{verdict.version}: single-question p50 {verdict.latency.p50_ms:.2f} ms (budget "
        f"{verdict.latency_budget_ms:g} ms){behaviour}",
        f"promote: evaluation window {verdict.window.describe()} ({verdict.n_questions} questions)",
    ]
    if verdict.live is not None:
        lines.append(evidence_line(verdict.live))
    scored = {role: verdict.metrics[role] for role in ("challenger", "champion") if role in verdict.metrics}
    if scored:
        rows = []
        for role, metrics in scored.items():
            version = verdict.version if role == "challenger" else verdict.champion
            rows.append([f"{role} v{version}", *(f"{metrics[k]:.4f}" for k in METRIC_LABELS)])
        lines += [tabulate(rows, headers=["", *METRIC_LABELS.values()], tablefmt="simple"), scored_note(verdict)]
    checks = f"promote: checks (cheapest first, stopping at the first refusal): {verdict.checks_line()}"
    if result.dry_run:
        would = f"would promote v{verdict.version} to @{CHAMPION}" if verdict.promote else f"would keep ({kept})"
        lines += [
            f"promote: DRY RUN: {would} in {result.seconds:.1f} s: {verdict.reason}",
            f"{checks}; nothing recorded (no tag, no alias move)",
        ]
    elif result.promoted:
        lines += [
            f"promote: PROMOTED v{verdict.version} to @{CHAMPION} in {result.seconds:.1f} s: {verdict.reason}",
            checks,
            f"serve:   models:/{model_name}@{CHAMPION}",
        ]
    else:
        lines += [f"promote: KEPT ({kept}) in {result.seconds:.1f} s: {verdict.reason}", checks]
    return lines


def scored_note(verdict: Verdict) -> str:
    """The line under the promotion table: what was scored, and why `status` shows other figures."""
    sizes = verdict.vocabulary_sizes
    own = ", ".join(f"{role} {n}" for role, n in sizes.items())
    union = (
        f"the union of both vocabularies ({verdict.scored_tags} tags: {own})"
        if len(sizes) > 1
        else f"the challenger's {verdict.scored_tags} tags"
    )
    primary = METRIC_LABELS.get(verdict.primary_metric, verdict.primary_metric)
    return (
        f"scored: both models now, on these {verdict.n_questions} questions; deciding metric {primary}. The 'all' "
        "columns: every question of the window, the 5 best suggestions against every tag its asker chose (vocab "
        "cov: the share of those tag occurrences the model's vocabulary holds). P@1 F1@3 R@5 coverage: the "
        f"questions carrying a tag of either vocabulary, over {union}; a model is marked down for the union's tags "
        "it cannot suggest, so the rows compare like with like. `sotag status` shows each version's figures from "
        "its own training run (its own window and vocabulary): other numbers"
    )


def rollback_line(result: RollbackResult) -> str:
    return f"rollback: @{CHAMPION} moved from v{result.previous} back to v{result.version} ({result.reason})"


def _promote(args: argparse.Namespace, settings: Settings) -> int:
    registry = open_registry(TrackingSettings.from_settings(settings), settings.tracking.model_name)
    data = settings.data_paths()
    gate = gate_from_settings(settings, data, args.eval_start, args.eval_end_gate, args.eval_exclude_sources)
    result = promote(registry, gate, args.version, dry_run=args.dry_run)
    print("\n".join(promotion_lines(result, registry.name)))
    verdict = result.verdict
    figures = {} if verdict is None else verdict.metrics
    log_to_launched_run(
        TrackingSettings.from_settings(settings),
        {f"{who}_{name}": value for who, values in figures.items() for name, value in values.items()},
        {
            "sotag.promote.version": result.version,
            "sotag.promote.decision": "promoted" if result.promoted else "kept",
            "sotag.promote.champion": result.champion or "",
            "sotag.promote.reason": "" if verdict is None else verdict.reason[:4000],
        },
    )
    return result.exit_code


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    registry = open_registry(TrackingSettings.from_settings(settings), settings.tracking.model_name)
    result = rollback(registry, args.reason, settings.promote.mirror_stages)
    print(rollback_line(result))
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    print(status_text(open_registry(TrackingSettings.from_settings(settings), settings.tracking.model_name)))
    return 0


def add_model_name_argument(p: argparse.ArgumentParser) -> None:
    setting(p, "--model-name", "tracking.model_name", "the registered model")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "promote",
        help="re-score @challenger and @champion on one window; move @champion if the challenger is as good",
        description="Exit codes: 0 promoted (or already champion), 3 champion kept (or broken: see "
        "--replace-broken-champion), 2 bad input or registry state, 1 a component (tracking server, artifact store) "
        "failed and nothing moved. "
        "With --dry-run: 0 the gate would promote, 3 it would keep the champion; nothing is recorded.",
    )
    p.add_argument("--version", default=None, help="the version to judge (default: @challenger)")
    p.add_argument(
        "--dry-run", action="store_true", help="judge and print the verdict; record no tag and move no alias"
    )
    add_data_argument(p, "questions for the evaluation window: files or folders, as for train (default: docs/data.md)")
    p.add_argument("--eval-start", default=None, help="window start (default: the challenger's split date)")
    p.add_argument("--eval-end", dest="eval_end_gate", default=None, help="window end (default: the challenger's)")
    p.add_argument(
        "--eval-exclude-sources", default=None, help="sources to drop from the window (default: the challenger's)"
    )
    add_model_name_argument(p)
    add_gate_args(p)
    p.set_defaults(handler=_promote)

    p = subparsers.add_parser("rollback", help="put @champion back on the previous champion")
    p.add_argument("--reason", default="manual rollback")
    add_model_name_argument(p)
    setting(p, "--mirror-stages", "promote.mirror_stages", "also move the legacy Production stage", action="store_true")
    p.set_defaults(handler=_rollback)

    p = subparsers.add_parser("status", help="versions, aliases, key metrics and the promotion history")
    add_model_name_argument(p)
    p.set_defaults(handler=_status)
