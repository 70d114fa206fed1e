"""`sotag promote`, `sotag rollback` and `sotag status`; the gate's flags and the promotion report, shared with
`sotag retrain`. The lifecycle functions return results; this module prints them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tabulate import tabulate

from infra.argtypes import add_data_argument, positive_float, unit_float
from infra.tracking import MODEL_NAME, TrackingSettings
from registry.gate import GATE_METRICS, METRIC_LABELS, GateConfig
from registry.lifecycle import PromotionResult, RollbackResult, promote, rollback, status_text
from registry.store import CHAMPION, open_registry
from registry.validate import Verdict
from tagger.data import resolve_data_paths
from tagger.data.split import parse_sources


def add_gate_args(p: argparse.ArgumentParser) -> None:
    d = GateConfig.__dataclass_fields__
    p.add_argument("--primary-metric", choices=GATE_METRICS, default=d["primary_metric"].default)
    p.add_argument("--floor-metric", choices=GATE_METRICS, default=d["floor_metric"].default)
    p.add_argument(
        "--floor", type=unit_float, default=float(os.environ.get("SOTAG_PROMOTION_FLOOR", d["floor"].default))
    )
    p.add_argument("--min-delta", type=float, default=d["min_delta"].default, help="required gain over the champion")
    p.add_argument(
        "--max-latency-ms",
        type=positive_float,
        default=float(os.environ.get("SOTAG_MAX_LATENCY_MS", d["max_latency_ms"].default)),
        help="refuse a challenger whose single-question p50 (in-process) is over this (default 5: TF-IDF passes, "
        "an SBERT or ensemble model on a CPU needs a larger budget)",
    )
    p.add_argument(
        "--behaviour-cases",
        type=Path,
        default=d["behaviour_cases"].default,
        help="behavioural cases file the challenger must pass (default: registry/behaviour_cases.json)",
    )
    p.add_argument("--no-behaviour-cases", action="store_true", help="run no behavioural case")
    p.add_argument(
        "--mirror-stages", action="store_true", help="also set the legacy stage: champion Production, previous Archived"
    )
    p.add_argument(
        "--replace-broken-champion",
        action="store_true",
        help="when @champion's files fail their sha256 or do not load, judge the challenger on the floor alone and "
        "promote it (the history says so); by default nothing is promoted over a broken champion (exit 3)",
    )


def gate_from_args(args: argparse.Namespace, data: tuple[Path, ...]) -> GateConfig:
    exclude = None
    if getattr(args, "eval_exclude_sources", None) is not None:
        exclude = parse_sources(args.eval_exclude_sources)
    return GateConfig(
        data=data,
        primary_metric=args.primary_metric,
        floor_metric=args.floor_metric,
        floor=args.floor,
        min_delta=args.min_delta,
        eval_start=getattr(args, "eval_start", None),
        eval_end=getattr(args, "eval_end_gate", None),
        exclude_sources=exclude,
        mirror_stages=args.mirror_stages,
        max_latency_ms=args.max_latency_ms,
        behaviour_cases=None if args.no_behaviour_cases else args.behaviour_cases,
        replace_broken_champion=args.replace_broken_champion,
    )


def promotion_lines(result: PromotionResult, model_name: str) -> list[str]:
    """What `promote` (and `retrain`, and `promote --dry-run`) prints about a result."""
    verdict = result.verdict
    if verdict is None:
        return [f"promote: v{result.version} is already @{CHAMPION}; nothing to do"]
    behaviour = f"; behavioural cases: {verdict.behaviour.summary()}" if verdict.behaviour else ""
    kept = f"v{verdict.champion} stays @{CHAMPION}" if verdict.champion else f"no @{CHAMPION} yet"
    lines = [
        f"promote: challenger v{verdict.version}: single-question p50 {verdict.latency.p50_ms:.2f} ms (budget "
        f"{verdict.latency_budget_ms:g} ms){behaviour}",
        f"promote: evaluation window {verdict.window.describe()} ({verdict.n_questions} questions)",
    ]
    if verdict.metrics:
        rows = []
        for role, metrics in verdict.metrics.items():
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


def _promote(args: argparse.Namespace) -> int:
    registry = open_registry(TrackingSettings.from_env(), args.model_name)
    gate = gate_from_args(args, resolve_data_paths(args.data))
    result = promote(registry, gate, args.version, dry_run=args.dry_run)
    print("\n".join(promotion_lines(result, registry.name)))
    return result.exit_code


def _rollback(args: argparse.Namespace) -> int:
    result = rollback(open_registry(TrackingSettings.from_env(), args.model_name), args.reason, args.mirror_stages)
    print(rollback_line(result))
    return 0


def _status(args: argparse.Namespace) -> int:
    print(status_text(open_registry(TrackingSettings.from_env(), args.model_name)))
    return 0


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
    add_data_argument(p, "questions for the evaluation window: files or folders, as for train (default: README, Data)")
    p.add_argument("--eval-start", default=None, help="window start (default: the challenger's split date)")
    p.add_argument("--eval-end", dest="eval_end_gate", default=None, help="window end (default: the challenger's)")
    p.add_argument(
        "--eval-exclude-sources", default=None, help="sources to drop from the window (default: the challenger's)"
    )
    p.add_argument("--model-name", default=MODEL_NAME)
    add_gate_args(p)
    p.set_defaults(handler=_promote)

    p = subparsers.add_parser("rollback", help="put @champion back on the previous champion")
    p.add_argument("--reason", default="manual rollback")
    p.add_argument("--model-name", default=MODEL_NAME)
    p.add_argument("--mirror-stages", action="store_true", help="also move the legacy Production stage")
    p.set_defaults(handler=_rollback)

    p = subparsers.add_parser("status", help="versions, aliases, key metrics and the promotion history")
    p.add_argument("--model-name", default=MODEL_NAME)
    p.set_defaults(handler=_status)
