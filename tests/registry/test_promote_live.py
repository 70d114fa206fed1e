"""`sotag promote --live`: after the offline checks pass, the gate judges the gateway's prediction log since the
challenger was registered (registry/live.py, infra/live_evidence.py), on a throwaway registry whose champion is v1
and challenger v2, and a SQLite log filled as the gateway fills it."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient

from sotag.cli import main
from sotag.infra.prediction_log import FEEDBACK, PREDICTIONS, create_tables
from sotag.registry.gate import GateConfig
from sotag.registry.lifecycle import promote
from sotag.registry.live import LiveGate
from sotag.registry.store import CHAMPION
from sotag.settings import load_settings
from sotag.tagger.errors import InputError


@pytest.fixture()
def pair(make_version, registry, questions_parquet) -> tuple[str, str]:
    """v1 @champion (through the offline gate), v2 the challenger: the same small model, so offline it passes."""
    v1 = make_version()
    assert promote(registry, GateConfig(data=questions_parquet, floor=0.5)).promoted
    return v1, make_version()


@pytest.fixture()
def log_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    engine = sa.create_engine(url)
    create_tables(engine)
    engine.dispose()
    return url


def log_shadow(url: str, champion: str, challenger: str, n: int, agree: int, ts: datetime | None = None) -> None:
    """`n` questions the champion answered and the challenger scored as a shadow; the first `agree` with the same
    top tag."""
    ts = ts or datetime.now(UTC)
    rows = [
        {
            "ts": ts,
            "model_name": "stackoverflow-tagger",
            "model_version": champion,
            "route": "/predict",
            "input_digest": f"{i:064x}",
            "tags": json.dumps(["python", "pandas"]),
            "scores": "[0.9, 0.5]",
            "prediction_id": f"p{i}",
            "arm": "champion",
            "shadow_version": challenger,
            "shadow_tags": json.dumps(["python", "numpy"] if i < agree else ["java", "pandas"]),
            "shadow_scores": "[0.8, 0.4]",
        }
        for i in range(n)
    ]
    _insert(url, PREDICTIONS, rows)


def log_feedback(url: str, champion: str, challenger: str, n: int, champion_right: int, challenger_right: int) -> None:
    """`n` feedback rows on shadowed predictions: the champion's top tag right on the first `champion_right`, the
    challenger's on the first `challenger_right`."""
    rows = [
        {
            "prediction_id": f"p{i}",
            "ts": datetime.now(UTC),
            "tags": '["python"]',
            "model_version": champion,
            "precision_at_1": float(i < champion_right),
            "recall_at_5": 1.0,
            "shadow_version": challenger,
            "shadow_precision_at_1": float(i < challenger_right),
            "shadow_recall_at_5": 1.0,
        }
        for i in range(n)
    ]
    _insert(url, FEEDBACK, rows)


def _insert(url: str, table: sa.Table, rows: list[dict]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    engine.dispose()


def live_promote(questions_parquet, url: str, *extra: str) -> int:
    gate = ["--floor", "0.5", "--live", "--prediction-log", url]
    return main(["promote", "--data", str(questions_parquet), *gate, *extra])


def test_too_few_live_questions_since_the_registration_refuse_and_say_so(
    pair, registry, questions_parquet, log_url, capsys
):
    v1, v2 = pair
    registered = datetime.fromtimestamp(registry.version(v2).creation_timestamp / 1000, UTC)
    log_shadow(log_url, v1, v2, 37, agree=37)
    log_shadow(log_url, v1, v2, 500, agree=500, ts=registered - timedelta(hours=1))  # before it: does not count
    capsys.readouterr()

    assert live_promote(questions_parquet, log_url) == 3
    out = capsys.readouterr().out
    print(out)  # the report's sample output (pytest -s)
    stamp = registered.strftime("%Y-%m-%dT%H:%MZ")
    why = f"live: 37 shadow/canary questions since v{v2} was registered ({stamp}), the gate needs 200 "
    why += "(promote.live_min_questions)"
    assert f"promote: KEPT (v{v1} stays @champion) in " in out and out.splitlines()[-2].endswith(why)
    assert "comparison passed, live FAILED" in out  # judged after the offline checks, which passed
    assert f"promote: live since v{v2} was registered ({stamp}): 37 questions (37 shadow, 0 canary)" in out
    assert "challenger v2" in out and "F1@3 all" in out  # the offline figures are printed beside
    # Refused as every gate refusal is: the champion stays, the version records why, with the live figures.
    assert registry.alias(CHAMPION) == v1 and len(registry.history()) == 1
    version = registry.version(v2)
    assert version.tags["gate_decision"] == "rejected"
    assert version.description == f"Kept out of @champion (champion v{v1} stays): {why}"


def test_low_agreement_with_the_champion_refuses(pair, registry, questions_parquet, log_url, capsys):
    v1, v2 = pair
    log_shadow(log_url, v1, v2, 200, agree=80)
    capsys.readouterr()

    assert live_promote(questions_parquet, log_url) == 3
    out = capsys.readouterr().out
    assert (
        f"live: top-1 agreement with champion v{v1} 0.4000 on 200 questions is below 0.50 "
        "(promote.live_min_agreement; Jaccard@5 0.3333)"
    ) in out
    assert registry.alias(CHAMPION) == v1 and registry.version(v2).tags["gate_decision"] == "rejected"
    # A lower bar from the command line lets the same evidence through.
    assert live_promote(questions_parquet, log_url, "--live-min-agreement", "0.4") == 0
    assert registry.alias(CHAMPION) == v2


def test_a_live_precision_drop_beyond_the_margin_refuses(pair, registry, questions_parquet, log_url, capsys):
    v1, v2 = pair
    log_shadow(log_url, v1, v2, 200, agree=160)
    log_feedback(log_url, v1, v2, 120, champion_right=90, challenger_right=60)
    capsys.readouterr()

    assert live_promote(questions_parquet, log_url) == 3
    out = capsys.readouterr().out
    assert (
        f"live: P@1 0.5000 vs champion v{v1}'s 0.7500 on the same 120 feedback rows: a drop of 0.2500, more than "
        "the 0.10 allowed (promote.live_max_precision_drop)"
    ) in out
    assert registry.alias(CHAMPION) == v1


def test_enough_live_evidence_promotes_and_the_figures_are_recorded_beside_the_offline_ones(
    pair, registry, questions_parquet, log_url, capsys, monkeypatch
):
    v1, v2 = pair
    log_shadow(log_url, v1, v2, 250, agree=200)
    log_feedback(log_url, v1, v2, 120, champion_right=90, challenger_right=84)  # 0.70 vs 0.75: within 0.10
    client = MlflowClient()
    launched = client.create_run(client.create_experiment("stackoverflow-tagger-promotions")).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", launched)  # as `mlflow run . -e promote` sets it
    capsys.readouterr()

    assert live_promote(questions_parquet, log_url) == 0
    out = capsys.readouterr().out
    print(out)  # the report's sample output (pytest -s)
    assert registry.alias(CHAMPION) == v2
    assert "comparison passed, live passed" in out
    live = (
        "live: 250 questions since {} (250 shadow, 0 canary); top-1 agreement 0.8000 (Jaccard@5 0.3333); "
        f"P@1 0.7000 vs champion v{v1}'s 0.7500 on 120 feedback rows"
    )
    promoted = next(line for line in out.splitlines() if line.startswith(f"promote: PROMOTED v{v2}"))
    assert promoted.endswith(live.format(promoted.split(" since ")[1].split(" ")[0]))
    assert (
        f"agreement with v{v1} on 250: top-1 0.8000, Jaccard@5 0.3333; feedback 120: P@1 0.7000 R@5 1.0000; on the "
        "120 rows with the champion's P@1: 0.7000 vs 0.7500"
    ) in out
    # The history event and the launcher's run hold the live figures beside the offline ones.
    event = registry.history()[-1]
    assert event.metrics["live"]["questions"] == 250 and event.metrics["live"]["agreement_top1"] == 0.8
    assert event.metrics["challenger"]["f1_at_3"] > 0.5
    metrics = client.get_run(launched).data.metrics
    assert {k: metrics[k] for k in metrics if k.startswith("live_")} == {
        "live_questions": 250.0, "live_shadow_questions": 250.0, "live_canary_questions": 0.0, "live_compared": 250.0,
        "live_agreement_top1": 0.8, "live_jaccard_at_5": 0.3333, "live_feedback": 120.0, "live_precision_at_1": 0.7,
        "live_recall_at_5": 1.0, "live_paired_feedback": 120.0, "live_paired_precision_at_1": 0.7,
        "live_champion_precision_at_1": 0.75,
    }  # fmt: skip
    assert "challenger_f1_at_3" in metrics
    gate = json.loads(client.get_run(registry.version(v2).run_id).data.tags["sotag.card"])["gate"]
    assert json.loads(gate["gate_live"])["questions"] == 250 and "since" in json.loads(gate["gate_live"])


def test_too_little_feedback_is_reported_not_judged(pair, registry, questions_parquet, log_url, capsys):
    v1, v2 = pair
    log_shadow(log_url, v1, v2, 200, agree=200)
    log_feedback(log_url, v1, v2, 30, champion_right=30, challenger_right=0)  # a drop of 1.0, but on 30 rows only
    capsys.readouterr()
    assert live_promote(questions_parquet, log_url) == 0
    out = capsys.readouterr().out
    assert (
        f"P@1 0.0000 on 30 feedback rows (30 with champion v{v1}'s P@1) reported, not judged (needs 100, "
        "promote.live_min_feedback)"
    ) in out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_prediction_log_that_cannot_be_reached_is_exit_1_and_the_registry_is_unchanged(
    pair, registry, questions_parquet, capsys
):
    v1, v2 = pair
    before = registry.version(v2)
    capsys.readouterr()
    url = f"postgresql+psycopg2://sotag:s3cret@127.0.0.1:{closed_port()}/predictions"
    assert live_promote(questions_parquet, url) == 1
    captured = capsys.readouterr()
    assert (
        captured.err.startswith("sotag promote: failed: prediction log (postgresql+psycopg2://sotag:***@127.0.0.1:")
        and f"reading the live evidence of v{v2} failed: " in captured.err
    )
    assert "s3cret" not in captured.err and captured.out == ""  # stopped before any model was scored
    after = registry.version(v2)
    assert registry.alias(CHAMPION) == v1 and len(registry.history()) == 1
    assert (after.tags, after.description) == (before.tags, before.description)
    card = json.loads(MlflowClient().get_run(after.run_id).data.tags["sotag.card"])
    assert not card.get("gate")  # no verdict recorded


def test_the_first_champion_is_not_judged_live_and_says_so(make_version, registry, questions_parquet, log_url):
    make_version()
    gate = GateConfig(data=questions_parquet, floor=0.5, live=LiveGate(url=log_url))
    result = promote(registry, gate)
    assert result.promoted
    live = next(c for c in result.verdict.checks if c.name == "live")
    assert (live.status, live.detail) == ("skipped", "no champion yet: nothing can have served v1 live")
    assert result.verdict.reason.endswith("; live: not judged (no champion yet: nothing can have served v1 live)")


def test_without_live_the_gate_has_no_live_check(make_version, registry, questions_parquet):
    make_version()
    result = promote(registry, GateConfig(data=questions_parquet, floor=0.5))
    assert [c.name for c in result.verdict.checks] == ["latency", "behaviour", "floor", "comparison"]
    assert result.verdict.live is None and "live" not in result.verdict.metrics


def test_the_live_settings_and_flags_refuse_values_out_of_range_naming_the_field(tmp_path, capsys):
    assert load_settings(environ={}, cwd=tmp_path).settings.promote.live is False
    loaded = load_settings(environ={"SOTAG_PROMOTE__LIVE_MIN_QUESTIONS": "50"}, cwd=tmp_path).settings.promote
    assert (loaded.live_min_questions, loaded.live_min_agreement, loaded.live_min_feedback) == (50, 0.5, 100)
    assert loaded.live_max_precision_drop == 0.10
    with pytest.raises(InputError, match=r"promote\.live_min_agreement"):
        load_settings(environ={"SOTAG_PROMOTE__LIVE_MIN_AGREEMENT": "1.5"}, cwd=tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["promote", "--live-min-agreement", "1.5"])
    assert exited.value.code == 2
    assert "--live-min-agreement: must be between 0 and 1, got 1.5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["promote", "--live-min-questions", "0"])
    assert "--live-min-questions: must be >= 1, got 0" in capsys.readouterr().err
