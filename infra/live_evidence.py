"""What the gateway's prediction log says about a challenger since it was registered: the live evidence the
promotion gate reads (`sotag promote --live`, registry/live.py).

The gateway logs every answered question (infra/prediction_log.py). A challenger appears there two ways:

* shadow: the champion answered (`model_version`, `tags`) and the challenger scored the same question off the
  request path (`shadow_version` == the challenger, `shadow_tags`);
* canary: the challenger answered (`model_version` == the challenger, `arm` == "canary"); when a shadow is also on,
  the other model's answer is in the shadow columns.

On rows where both answers exist the challenger is compared with the other model: the share of questions with the
same top tag, and the mean Jaccard index of the two top-5 tag sets (two empty answers agree: 1.0). The `feedback`
table holds the tags an asker kept, with precision@1 / recall@5 of the answer (`model_version`) and of the shadow
answer (`shadow_version`): the challenger's live figures are read from whichever side it was on, and the other
model's precision@1 on the same rows (when the log has it) gives the relative comparison.

Read only, with SQLAlchemy Core: nothing is created. A log that is not there (no SQLite file, no `predictions`
table, or a log written before shadow and canary existed) is no evidence (zero counts, `absent` says why), not an
error; a database that cannot be reached is a ComponentFault naming the prediction log (exit 1 in the CLI); a URL
SQLAlchemy cannot open (malformed, unknown dialect, driver not installed) is a DataError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from sotag.infra.prediction_log import FEEDBACK, PREDICTIONS
from sotag.infra.store_errors import fault
from sotag.tagger.errors import DataError

COMPONENT = "prediction log"
# The columns a log needs before the challenger can appear in it (added with shadow and canary).
LIVE_COLUMNS = ("arm", "shadow_version", "shadow_tags")
TOP_K = 5  # the Jaccard index compares the two answers' top-5 tag sets


@dataclass(frozen=True)
class LiveEvidence:
    """The questions `version` scored live since `since` (UTC), and how its answers compare.

    Counts are rows of the log; a figure is None when no row allows it (no question with both answers, no
    feedback). `questions` counts each row once even if it matches both ways.
    """

    version: str
    since: datetime
    absent: str | None = None  # why the log holds no evidence at all (no file, no table, too old); None: it was read
    questions: int = 0  # rows the challenger scored: shadow or canary
    shadow_questions: int = 0  # rows with shadow_version == version
    canary_questions: int = 0  # rows with model_version == version and arm == "canary"
    compared: int = 0  # rows where both the challenger's answer and the other model's are logged
    compared_with: tuple[str, ...] = ()  # the other model's versions on those rows
    agreement_top1: float | None = None  # share of the compared rows with the same top tag
    jaccard_at_5: float | None = None  # mean Jaccard index of the two top-5 tag sets on the compared rows
    unreadable: int = 0  # rows whose tag lists are not JSON lists: left out of the comparison
    feedback: int = 0  # feedback rows with the challenger's precision@1
    precision_at_1: float | None = None  # the challenger's mean precision@1 on them
    recall_at_5: float | None = None  # the challenger's mean recall@5 on them (rows that have it)
    paired_feedback: int = 0  # feedback rows where the other model's precision@1 is known too
    paired_precision_at_1: float | None = None  # the challenger's precision@1 on those rows
    champion_precision_at_1: float | None = None  # the other model's precision@1 on the same rows

    def figures(self) -> dict[str, float]:
        """The evidence as metrics (`questions`, `agreement_top1`, `precision_at_1`, …); unknown figures left out."""
        names = (
            "questions", "shadow_questions", "canary_questions", "compared", "agreement_top1", "jaccard_at_5",
            "feedback", "precision_at_1", "recall_at_5", "paired_feedback", "paired_precision_at_1",
            "champion_precision_at_1",
        )  # fmt: skip
        values = {name: getattr(self, name) for name in names}
        return {name: round(float(value), 4) for name, value in values.items() if value is not None}


def live_evidence(url: str, version: str, since: datetime, champion: str | None = None) -> LiveEvidence:
    """The live evidence about `version` in the prediction log at `url` (any SQLAlchemy URL), from `since` on.

    `since` is the challenger's registration time (a naive datetime is read as UTC). `champion`: when given, the
    comparisons (agreement, the other model's precision) use only rows whose other answer came from that version;
    the counts of questions and feedback are the challenger's exposure and do not depend on it.
    Raises ComponentFault (the database cannot be reached or fails), DataError (not a URL SQLAlchemy can open).
    """
    version = str(version)
    since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
    champion = None if champion is None else str(champion)
    shown = _shown(url)
    missing = _missing_sqlite_file(url)
    if missing is not None:
        return LiveEvidence(version, since, absent=f"no prediction log at {missing}")
    try:
        engine = sa.create_engine(url)
    except sa.exc.ArgumentError as exc:  # an unknown dialect
        raise DataError(f"prediction log {shown}: SQLAlchemy cannot open it ({exc})") from None
    except ImportError as exc:  # the dialect's driver is not installed
        hint = " (SQLAlchemy's postgresql:// means psycopg 3; for psycopg2 write postgresql+psycopg2://)"
        hint = hint if getattr(exc, "name", "") == "psycopg" else ""
        raise DataError(f"prediction log {shown}: its database driver is not installed ({exc}){hint}") from None
    try:
        with engine.connect() as conn:
            return _read(conn, version, since, champion)
    except sa.exc.SQLAlchemyError as exc:
        raise fault(f"{COMPONENT} ({shown})", f"reading the live evidence of v{version}", exc) from exc
    finally:
        engine.dispose()


def _read(conn: sa.Connection, version: str, since: datetime, champion: str | None) -> LiveEvidence:
    inspector = sa.inspect(conn)
    if not inspector.has_table(PREDICTIONS.name):
        return LiveEvidence(version, since, absent="the prediction log has no predictions table (no question logged)")
    present = {c["name"] for c in inspector.get_columns(PREDICTIONS.name)}
    lacking = [name for name in LIVE_COLUMNS if name not in present]
    if lacking:
        return LiveEvidence(
            version,
            since,
            absent=f"the prediction log predates shadow and canary (no {', '.join(lacking)} column)",
        )
    questions = _questions(conn, version, since, champion)
    feedback = _feedback(conn, version, since, champion) if inspector.has_table(FEEDBACK.name) else {}
    return LiveEvidence(version, since, **questions, **feedback)


def _questions(conn: sa.Connection, version: str, since: datetime, champion: str | None) -> dict:
    p = PREDICTIONS.c
    query = sa.select(p.model_version, p.arm, p.tags, p.shadow_version, p.shadow_tags).where(
        p.ts >= since, sa.or_(p.shadow_version == version, sa.and_(p.model_version == version, p.arm == "canary"))
    )
    counts = {"questions": 0, "shadow_questions": 0, "canary_questions": 0, "compared": 0, "unreadable": 0}
    agree = jaccard = 0.0
    others: set[str] = set()
    for model_version, arm, tags, shadow_version, shadow_tags in conn.execute(query):
        shadow = shadow_version == version
        counts["questions"] += 1
        counts["shadow_questions"] += shadow
        counts["canary_questions"] += model_version == version and arm == "canary"
        mine, theirs, other = (shadow_tags, tags, model_version) if shadow else (tags, shadow_tags, shadow_version)
        if mine is None or theirs is None or other == version or (champion is not None and other != champion):
            continue  # no other answer on this row, or not the model the caller compares with
        a, b = _tag_list(mine), _tag_list(theirs)
        if a is None or b is None:
            counts["unreadable"] += 1
            continue
        counts["compared"] += 1
        agree += a[:1] == b[:1]
        top_a, top_b = set(a[:TOP_K]), set(b[:TOP_K])
        jaccard += len(top_a & top_b) / len(top_a | top_b) if top_a | top_b else 1.0
        if other is not None:
            others.add(other)
    n = counts["compared"]
    return {
        **counts,
        "compared_with": tuple(sorted(others, key=_version_key)),
        "agreement_top1": agree / n if n else None,
        "jaccard_at_5": jaccard / n if n else None,
    }


def _feedback(conn: sa.Connection, version: str, since: datetime, champion: str | None) -> dict:
    f = FEEDBACK.c
    columns = (f.model_version, f.precision_at_1, f.recall_at_5, f.shadow_version, f.shadow_precision_at_1)
    concerning = sa.or_(f.model_version == version, f.shadow_version == version)
    query = sa.select(*columns, f.shadow_recall_at_5).where(f.ts >= since, concerning)
    n = n_recall = paired = 0
    precision = recall = paired_mine = paired_theirs = 0.0
    for model_version, p1, r5, shadow_version, shadow_p1, shadow_r5 in conn.execute(query):
        if model_version == version:  # the challenger answered (canary); the other model, if any, shadowed
            mine_p1, mine_r5, other, other_p1 = p1, r5, shadow_version, shadow_p1
        else:  # the challenger was the shadow
            mine_p1, mine_r5, other, other_p1 = shadow_p1, shadow_r5, model_version, p1
        if mine_p1 is None:
            continue
        n += 1
        precision += mine_p1
        if mine_r5 is not None:
            n_recall += 1
            recall += mine_r5
        if other_p1 is not None and other != version and (champion is None or other == champion):
            paired += 1
            paired_mine += mine_p1
            paired_theirs += other_p1
    return {
        "feedback": n,
        "precision_at_1": precision / n if n else None,
        "recall_at_5": recall / n_recall if n_recall else None,
        "paired_feedback": paired,
        "paired_precision_at_1": paired_mine / paired if paired else None,
        "champion_precision_at_1": paired_theirs / paired if paired else None,
    }


def _tag_list(text: str) -> list[str] | None:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return [str(t) for t in value] if isinstance(value, list) else None


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


def _shown(url: str) -> str:
    """The URL as messages show it: the password hidden."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return repr(url)


def _missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file `url` names when it does not exist (connecting would create it empty); else None."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise DataError(f"prediction log {url!r}: not a database URL ({exc})") from None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path
