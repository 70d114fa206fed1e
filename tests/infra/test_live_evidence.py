"""infra/live_evidence.py on a prediction log filled by hand: the counts, the agreement and the feedback figures of a
challenger since its registration, with exact numbers; absence is no evidence, an unreachable database a fault."""

from __future__ import annotations

import importlib.util
import json
import socket
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from sotag.infra.live_evidence import LiveEvidence, live_evidence
from sotag.infra.prediction_log import FEEDBACK, PREDICTIONS, create_tables
from sotag.tagger.errors import ComponentFault, DataError

SINCE = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # when the challenger, v5, was registered; v4 is the champion
LATER = SINCE + timedelta(minutes=5)
BEFORE = SINCE - timedelta(minutes=1)


def prediction(
    model_version: str | None,
    tags: list[str],
    arm: str | None = "champion",
    shadow_version: str | None = None,
    shadow_tags: list[str] | str | None = None,
    ts: datetime = LATER,
) -> dict:
    """One `predictions` row as the gateway writes it (tag lists as JSON; a str shadow_tags is written as is)."""
    shadow = shadow_tags if isinstance(shadow_tags, str) or shadow_tags is None else json.dumps(shadow_tags)
    return {
        "ts": ts,
        "model_name": "stackoverflow-tagger",
        "model_version": model_version,
        "route": "/predict",
        "input_digest": "0" * 64,
        "tags": json.dumps(tags),
        "scores": json.dumps([0.9] * len(tags)),
        "latency_ms": 1.0,
        "arm": arm,
        "shadow_version": shadow_version,
        "shadow_tags": shadow,
        "shadow_scores": None if shadow is None else "[]",
    }


def feedback(
    pid: str,
    model_version: str,
    p1: float | None,
    r5: float | None,
    shadow_version: str | None = None,
    shadow_p1: float | None = None,
    shadow_r5: float | None = None,
    ts: datetime = LATER,
) -> dict:
    return {
        "prediction_id": pid,
        "ts": ts,
        "tags": "[]",
        "model_name": "stackoverflow-tagger",
        "model_version": model_version,
        "precision_at_1": p1,
        "recall_at_5": r5,
        "shadow_version": shadow_version,
        "shadow_precision_at_1": shadow_p1,
        "shadow_recall_at_5": shadow_r5,
    }


SIX = ["python", "pandas", "numpy", "scipy", "matplotlib"]
PREDICTIONS_ROWS = [
    # Shadow: champion v4 answered, v5 scored the same question off the request path.
    prediction("4", [*SIX, "django"], shadow_version="5", shadow_tags=[*SIX, "flask"]),  # top-1 =, top-5 sets = -> 1
    prediction("4", ["java", "spring"], shadow_version="5", shadow_tags=["kotlin", "java"]),  # top-1 !=, J 1/3
    prediction("4", ["css"], shadow_version="5", shadow_tags=["css"]),  # =, 1
    prediction("4", [], shadow_version="5", shadow_tags=[]),  # two empty answers agree: =, 1
    # Canary: v5 answered; with the shadow on, v4's answer is in the shadow columns.
    prediction("5", ["sql", "mysql"], arm="canary", shadow_version="4", shadow_tags=["sql", "postgresql"]),  # =, 1/3
    prediction("5", ["docker"], arm="canary"),  # a canary without a shadow: counted, nothing to compare
    # Against an older champion, v3: compared only when the caller does not name the champion.
    prediction("3", ["go"], shadow_version="5", shadow_tags=["rust"]),  # !=, 0
    # Counted as a question, its shadow answer unreadable: left out of the comparison, counted.
    prediction("4", ["c"], shadow_version="5", shadow_tags="not json"),
    # Not the challenger's, or before it was registered: not counted.
    prediction("5", ["html"], shadow_version="5", shadow_tags=["html"], ts=BEFORE),
    prediction("4", ["php"]),
    prediction("4", ["php"], shadow_version="3", shadow_tags=["php"]),
    prediction("5", ["ruby"], arm="champion"),  # answered as champion, not as a canary
]
FEEDBACK_ROWS = [
    feedback("f1", "4", 1.0, 0.5, shadow_version="5", shadow_p1=0.0, shadow_r5=0.5),  # v5 shadow: 0 / 0.5; v4 1
    feedback("f2", "4", 0.0, 1.0, shadow_version="5", shadow_p1=1.0, shadow_r5=1.0),  # v5 1 / 1; v4 0
    feedback("f3", "5", 1.0, 0.5, shadow_version="4", shadow_p1=1.0, shadow_r5=0.0),  # v5 canary 1 / 0.5; v4 1
    feedback("f4", "5", 1.0, None),  # canary without a shadow, no recall: v5 1; not paired
    feedback("f5", "3", 1.0, 1.0, shadow_version="5", shadow_p1=0.0, shadow_r5=0.0),  # v5 0 / 0; paired with v3
    feedback("f6", "4", 1.0, 1.0, shadow_version="5", shadow_p1=None),  # v5's precision unknown: left out
    feedback("f7", "4", 1.0, 1.0, shadow_version="5", shadow_p1=1.0, shadow_r5=1.0, ts=BEFORE),  # before: left out
    feedback("f8", "4", 1.0, 1.0, shadow_version="3", shadow_p1=1.0),  # not v5's
]


@pytest.fixture()
def log_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    engine = sa.create_engine(url)
    create_tables(engine)
    with engine.begin() as conn:
        conn.execute(PREDICTIONS.insert(), PREDICTIONS_ROWS)
        conn.execute(FEEDBACK.insert(), FEEDBACK_ROWS)
    engine.dispose()
    return url


def test_the_challengers_questions_agreement_and_feedback_against_the_champion(log_url):
    e = live_evidence(log_url, "5", SINCE, champion="4")
    assert e.absent is None
    assert (e.questions, e.shadow_questions, e.canary_questions) == (8, 6, 2)
    # Compared with v4 on 5 rows: top-1 equal on 4; Jaccard of the top-5 sets 1, 1/3, 1, 1, 1/3.
    assert (e.compared, e.compared_with, e.unreadable) == (5, ("4",), 1)
    assert e.agreement_top1 == pytest.approx(4 / 5)
    assert e.jaccard_at_5 == pytest.approx((1 + 1 / 3 + 1 + 1 + 1 / 3) / 5)
    # Feedback about v5: f1 f2 f3 f4 f5 (P@1 0 1 1 1 0; R@5 0.5 1 0.5 - 0); paired with v4: f1 f2 f3.
    assert e.feedback == 5
    assert e.precision_at_1 == pytest.approx(3 / 5)
    assert e.recall_at_5 == pytest.approx(2.0 / 4)
    assert e.paired_feedback == 3
    assert e.paired_precision_at_1 == pytest.approx(2 / 3)
    assert e.champion_precision_at_1 == pytest.approx(2 / 3)
    assert e.figures() == {
        "questions": 8.0, "shadow_questions": 6.0, "canary_questions": 2.0, "compared": 5.0, "agreement_top1": 0.8,
        "jaccard_at_5": 0.7333, "feedback": 5.0, "precision_at_1": 0.6, "recall_at_5": 0.5, "paired_feedback": 3.0,
        "paired_precision_at_1": 0.6667, "champion_precision_at_1": 0.6667,
    }  # fmt: skip


def test_without_a_champion_named_every_other_model_is_compared(log_url):
    e = live_evidence(log_url, "5", SINCE)
    assert (e.questions, e.compared, e.compared_with) == (8, 6, ("3", "4"))
    assert e.agreement_top1 == pytest.approx(4 / 6)
    assert e.jaccard_at_5 == pytest.approx((1 + 1 / 3 + 1 + 1 + 1 / 3 + 0) / 6)
    assert (e.feedback, e.paired_feedback) == (5, 4)
    assert e.paired_precision_at_1 == pytest.approx(2 / 4)
    assert e.champion_precision_at_1 == pytest.approx(3 / 4)


def test_since_is_a_moment_a_naive_one_is_utc_and_an_aware_one_any_zone(log_url):
    naive = live_evidence(log_url, "5", SINCE.replace(tzinfo=None), champion="4")
    paris = live_evidence(log_url, "5", SINCE.astimezone(ZoneInfo("Europe/Paris")), champion="4")
    assert naive.questions == paris.questions == 8
    assert naive.since == paris.since == SINCE
    # An hour earlier, the row logged a minute before the registration counts too.
    assert live_evidence(log_url, "5", SINCE - timedelta(hours=1), champion="4").questions == 9


def test_a_version_nothing_served_has_zero_counts_and_no_figures(log_url):
    e = live_evidence(log_url, "6", SINCE)
    assert e == LiveEvidence("6", SINCE)
    assert e.figures() == {
        "questions": 0.0, "shadow_questions": 0.0, "canary_questions": 0.0, "compared": 0.0, "feedback": 0.0,
        "paired_feedback": 0.0,
    }  # fmt: skip


def test_an_absent_log_is_no_evidence_and_is_not_created(tmp_path):
    path = tmp_path / "nowhere" / "predictions.db"
    e = live_evidence(f"sqlite:///{path}", "5", SINCE)
    assert (e.questions, e.feedback, e.absent) == (0, 0, f"no prediction log at {path}")
    assert not path.exists() and not path.parent.exists()


def test_a_database_without_the_predictions_table_is_no_evidence(tmp_path):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE something (x INTEGER)"))
    engine.dispose()
    e = live_evidence(url, "5", SINCE)
    assert e.questions == 0 and e.absent == "the prediction log has no predictions table (no question logged)"


def test_a_log_written_before_shadow_and_canary_is_no_evidence(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE predictions (id INTEGER PRIMARY KEY, ts DATETIME, model_version TEXT)"))
    engine.dispose()
    e = live_evidence(url, "5", SINCE)
    assert e.questions == 0
    assert e.absent == "the prediction log predates shadow and canary (no arm, shadow_version, shadow_tags column)"


def test_predictions_without_a_feedback_table_have_no_feedback(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    engine = sa.create_engine(url)
    PREDICTIONS.create(engine)
    with engine.begin() as conn:
        conn.execute(PREDICTIONS.insert(), PREDICTIONS_ROWS)
    engine.dispose()
    e = live_evidence(url, "5", SINCE, champion="4")
    assert (e.questions, e.compared, e.feedback, e.precision_at_1) == (8, 5, 0, None)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_database_that_cannot_be_reached_is_a_component_fault_naming_the_log_without_its_password():
    url = f"postgresql+psycopg2://sotag:s3cret@127.0.0.1:{closed_port()}/predictions"
    with pytest.raises(ComponentFault) as caught:
        live_evidence(url, "5", SINCE)
    message = str(caught.value)
    assert message.startswith("prediction log (postgresql+psycopg2://sotag:***@127.0.0.1:")
    assert "reading the live evidence of v5 failed: " in message and "s3cret" not in message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("not a url", "not a database URL"),
        ("nosuchdb://host/x", "SQLAlchemy cannot open it"),
        pytest.param(
            "postgresql://h/x",
            r"driver is not installed .* for psycopg2 write postgresql\+psycopg2://",
            marks=pytest.mark.skipif(importlib.util.find_spec("psycopg") is not None, reason="psycopg 3 is installed"),
        ),
    ],
)
def test_a_url_sqlalchemy_cannot_open_is_a_data_error(url, words):
    with pytest.raises(DataError, match=words):
        live_evidence(url, "5", SINCE)
