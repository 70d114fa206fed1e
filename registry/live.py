"""The gate's live check (`sotag promote --live`): after the offline checks pass, the challenger must also have
been scored on enough live questions since it was registered, agree enough with the champion on them, and not
lose precision@1 on the askers' feedback beyond a margin.

The evidence comes from the gateway's prediction log (infra/live_evidence.py), read before any model is scored (a
log that cannot be reached stops the command before minutes of scoring, exit 1) and judged after the offline
checks, so a refusal for thin evidence still shows the offline verdict. The thresholds, and why these defaults,
are the `promote.live_*` settings (sotag/settings.py, PromoteSection).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.entities.model_registry import ModelVersion

from sotag.infra.live_evidence import LiveEvidence, live_evidence
from sotag.tagger.errors import DataError

LOG_SETTING = "gateway.prediction_log (--prediction-log, $SOTAG_PREDICTION_LOG)"


@dataclass(frozen=True)
class LiveGate:
    """Where the live evidence is and what it must show (the `promote.live_*` settings)."""

    url: str  # the gateway's prediction log (settings.prediction_log_url)
    min_questions: int = 200
    min_agreement: float = 0.5
    min_feedback: int = 100
    max_precision_drop: float = 0.10


def registered_at(version: ModelVersion) -> datetime:
    """When the version was registered (MLflow's creation_timestamp, milliseconds), in UTC."""
    return datetime.fromtimestamp(int(version.creation_timestamp) / 1000, UTC)


def stamp(moment: datetime) -> str:
    """`2026-12-07T10:00Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def read_evidence(gate: LiveGate, version: str, since: datetime, champion: str | None) -> LiveEvidence:
    """The evidence about `version` since `since`, compared with `champion`; a URL that cannot be opened is a
    DataError naming the setting (exit 2), a database that cannot be reached a ComponentFault (exit 1)."""
    try:
        return live_evidence(gate.url, version, since, champion=champion)
    except DataError as exc:
        raise DataError(f"{LOG_SETTING}: {exc}") from None


@dataclass(frozen=True)
class LiveJudgement:
    """`refusal`: why the evidence refuses the challenger (None: it passes); `summary`: what was judged, in one
    clause, for the reason line of a passing verdict and the check's detail."""

    refusal: str | None
    summary: str


def judge_live(gate: LiveGate, evidence: LiveEvidence, champion: str | None) -> LiveJudgement:
    """Thin evidence, low top-1 agreement, or a precision@1 drop beyond the margin refuse; figures that are too
    few to judge (agreement on fewer than `min_questions` compared rows, fewer than `min_feedback` paired feedback
    rows) are reported and not judged, and the summary says so."""
    v, since = evidence.version, stamp(evidence.since)
    if evidence.questions < gate.min_questions:
        why = f": {evidence.absent}" if evidence.absent else ""
        return LiveJudgement(
            f"{evidence.questions} shadow/canary questions since v{v} was registered ({since}), the gate needs "
            f"{gate.min_questions} (promote.live_min_questions){why}",
            "",
        )
    against = f"champion v{champion}" if champion else "the other model"
    parts = [f"{evidence.questions} questions since {since} ({evidence.shadow_questions} shadow, "]
    parts[0] += f"{evidence.canary_questions} canary)"
    if evidence.agreement_top1 is None or evidence.compared < gate.min_questions:
        shown = "" if evidence.agreement_top1 is None else f" {evidence.agreement_top1:.4f}"
        parts.append(
            f"top-1 agreement{shown} on {evidence.compared} questions with both answers not judged (needs "
            f"{gate.min_questions}: a canary without a shadow logs one answer)"
        )
    elif evidence.agreement_top1 < gate.min_agreement:
        return LiveJudgement(
            f"top-1 agreement with {against} {evidence.agreement_top1:.4f} on {evidence.compared} questions is "
            f"below {gate.min_agreement:.2f} (promote.live_min_agreement; Jaccard@5 {evidence.jaccard_at_5:.4f})",
            "",
        )
    else:
        parts.append(f"top-1 agreement {evidence.agreement_top1:.4f} (Jaccard@5 {evidence.jaccard_at_5:.4f})")
    mine, theirs = evidence.paired_precision_at_1, evidence.champion_precision_at_1
    if mine is None or theirs is None or evidence.paired_feedback < gate.min_feedback:
        own = f"P@1 {evidence.precision_at_1:.4f} on " if evidence.precision_at_1 is not None else ""
        parts.append(
            f"{own}{evidence.feedback} feedback rows ({evidence.paired_feedback} with {against}'s P@1) reported, "
            f"not judged (needs {gate.min_feedback}, promote.live_min_feedback)"
        )
    elif theirs - mine > gate.max_precision_drop:
        return LiveJudgement(
            f"P@1 {mine:.4f} vs {against}'s {theirs:.4f} on the same {evidence.paired_feedback} feedback rows: a "
            f"drop of {theirs - mine:.4f}, more than the {gate.max_precision_drop:.2f} allowed "
            "(promote.live_max_precision_drop)",
            "",
        )
    else:
        parts.append(f"P@1 {mine:.4f} vs {against}'s {theirs:.4f} on {evidence.paired_feedback} feedback rows")
    return LiveJudgement(None, "; ".join(parts))


def evidence_line(evidence: LiveEvidence) -> str:
    """The printed line of the live figures, beside the offline ones."""
    e = evidence
    text = (
        f"promote: live since v{e.version} was registered ({stamp(e.since)}): {e.questions} questions "
        f"({e.shadow_questions} shadow, {e.canary_questions} canary)"
    )
    if e.absent:
        return f"{text}: {e.absent}"
    if e.compared:
        with_ = f" with v{', v'.join(e.compared_with)}" if e.compared_with else ""
        text += f"; agreement{with_} on {e.compared}: top-1 {e.agreement_top1:.4f}, Jaccard@5 {e.jaccard_at_5:.4f}"
    else:
        text += "; no question with both answers"
    if e.unreadable:
        text += f" ({e.unreadable} rows with unreadable tags left out)"
    if e.feedback:
        recall = f" R@5 {e.recall_at_5:.4f}" if e.recall_at_5 is not None else ""
        text += f"; feedback {e.feedback}: P@1 {e.precision_at_1:.4f}{recall}"
        if e.paired_feedback:
            text += (
                f"; on the {e.paired_feedback} rows with the champion's P@1: {e.paired_precision_at_1:.4f} vs "
                f"{e.champion_precision_at_1:.4f}"
            )
    else:
        text += "; no feedback"
    return text
