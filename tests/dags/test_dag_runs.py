"""Both DAGs end to end with `dag.test()` (Airflow's own in-process run: scheduling, branching, XCom, triggering)
against sotag's real CLI on an embedded store: the weekly run ingests the inbox (the bundled sample), trains,
registers and records the gate's decision; the daily run checks a prediction log written by a real gateway and, on
alert, posts to the webhook and triggers the weekly run; a failing step fails the run with sotag's own message and
leaves the registry as it was."""

from __future__ import annotations

import json
import random
import re
import sqlite3
from datetime import datetime, timedelta

import pytest

from .conftest import REPO, SOTAG, free_port, start_server, stop_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dags(airflow_db):
    from airflow.models.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(REPO / "dags"), bundle_path=REPO / "dags").dags


def states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def returned(run, task_id: str):
    """The task's return value (its XCom), as the next task received it."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.execute(
            XComModel.get_many(
                run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key="return_value"
            ).with_only_columns(XComModel.value)
        ).first()
    return XComModel.deserialize_value(row) if row else None


@pytest.fixture(scope="module")
def weekly_run(dags, sotag_home):
    """One weekly run by hand, with the params an operator gives: the settings file and a floor every model passes
    (the gate still judges and records; the daily run needs a champion to serve)."""
    run = dags["weekly_ml_pipeline"].test(run_conf={"config": str(sotag_home.config), "floor": 0.0})
    return run


def test_the_weekly_run_ingests_the_inbox_registers_and_records_the_gate_decision(weekly_run, sotag_home):
    assert weekly_run.state == "success", states(weekly_run)
    assert states(weekly_run) == {"ingest": "success", "retrain": "success", "notify": "success"}
    assert returned(weekly_run, "ingest").startswith("ingest: load 1: read=10758 added=10758")
    outcome = returned(weekly_run, "retrain")
    assert outcome["outcome"] == "promoted" and outcome["exit_code"] == 0 and outcome["version"] == "1"
    assert outcome["reason"].startswith("promote: PROMOTED v1 to @champion")
    assert returned(weekly_run, "notify")["outcome"] == "promoted"
    status = sotag_home.sotag("status")
    assert status.returncode == 0, status.stderr
    # The version is registered, @champion, with the gate's decision on it and a move in the promotion history.
    assert re.search(r"^v1\s+\S*champion\S*\s.*\spromoted\s", status.stdout, re.MULTILINE), status.stdout
    assert "promote  none -> v1" in status.stdout
    # The inbox's file is in the store now: a second ingest finds nothing new.
    again = sotag_home.sotag("ingest", "--inbox")
    assert "ingest: no new files in" in again.stdout


def test_a_kept_challenger_is_a_successful_run_that_says_so(dags, sotag_home, weekly_run, webhook):
    """Exit 3 (champion kept) is an outcome, not a failure; the summary goes to the webhook."""
    run = dags["weekly_ml_pipeline"].test(
        run_conf={"config": str(sotag_home.config), "floor": 1.0, "webhook": webhook.url}
    )
    assert run.state == "success", states(run)
    outcome = returned(run, "retrain")
    assert (outcome["outcome"], outcome["exit_code"], outcome["version"]) == ("kept", 3, "2")
    assert outcome["reason"].startswith("promote: KEPT (v1 stays @champion)")
    assert returned(run, "ingest").startswith("ingest: no new files in")
    assert len(webhook.received) == 1 and webhook.received[0]["outcome"] == "kept"
    assert webhook.received[0]["dag_id"] == "weekly_ml_pipeline" and webhook.received[0]["version"] == "2"
    status = sotag_home.sotag("status").stdout
    assert re.search(r"^v2\s+challenger\s.*\srejected\s", status, re.MULTILINE), status
    assert re.search(r"^v1\s+champion\s", status, re.MULTILINE), status


def test_a_failing_step_fails_the_run_with_its_message_and_the_registry_is_unchanged(
    dags, sotag_home, weekly_run, monkeypatch, capfd
):
    before = sotag_home.sotag("status").stdout
    # The tracking server down: a port on 127.0.0.1 where nothing listens (no retries: fail in seconds).
    down = sotag_home.write_config("down.toml", f'\n[tracking]\nuri = "http://127.0.0.1:{free_port()}"\n')
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    run = dags["weekly_ml_pipeline"].test(run_conf={"config": str(down), "floor": 0.0})
    assert run.state == "failed"
    assert states(run) == {"ingest": "success", "retrain": "failed", "notify": "upstream_failed"}
    # The task's failure (Airflow's task log, here on the console) is sotag's own line, not a traceback of the DAG's.
    logged = "".join(capfd.readouterr())
    failure = "AirflowException: sotag retrain exited 1: sotag retrain: failed: tracking server or model registry: "
    assert failure in logged and "[Errno 111]" in logged, logged[-3000:]  # connection refused
    assert sotag_home.sotag("status").stdout == before


def _questions(n: int, seed: int) -> list[dict[str, str]]:
    topics = {
        "python": ["pandas dataframe", "list comprehension", "pip install", "django view"],
        "javascript": ["react component", "node npm", "promise async", "dom event"],
        "sql": ["join query", "select where", "postgres index", "mysql table"],
    }
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = topics[list(topics)[i % len(topics)]]
        out.append({"title": f"How do I fix {rng.choice(words)} with {rng.choice(words)}?", "body": rng.choice(words)})
    return out


def _backdate(log_file, days: int, first_ids: int) -> None:
    """The first requests as if they had come `days` ago: the reference window's traffic."""
    with sqlite3.connect(log_file) as connection:
        rows = connection.execute("select id, ts from predictions order by id limit ?", (first_ids,)).fetchall()
        for row_id, ts in rows:
            older = datetime.fromisoformat(ts) - timedelta(days=days)
            connection.execute("update predictions set ts = ? where id = ?", (older.isoformat(sep=" "), row_id))


def test_the_daily_run_checks_the_gateways_log_alerts_and_triggers_the_weekly_run(
    dags, sotag_home, weekly_run, webhook
):
    import requests

    port = free_port()
    gateway = start_server(
        [str(SOTAG), "gateway", "--port", str(port), "--config", str(sotag_home.config)],
        f"http://127.0.0.1:{port}/health",
    )
    try:
        for seed in (1, 2):
            response = requests.post(
                f"http://127.0.0.1:{port}/predict/batch", json={"questions": _questions(150, seed)}, timeout=300
            )
            assert response.status_code == 200, response.text
    finally:
        stop_server(gateway)  # the log is flushed on shutdown
    log_file = sotag_home.root / "predictions.db"
    with sqlite3.connect(log_file) as connection:
        assert connection.execute("select count(*) from predictions").fetchone() == (300,)
    _backdate(log_file, days=10, first_ids=150)
    # Thresholds any drift reaches: this run must alert, so the alert branch runs for real.
    thresholds = json.loads((REPO / "monitoring" / "thresholds.json").read_text())
    thresholds["embedding_drift_auc"].update(warn=0.0, alert=0.0)
    (sotag_home.root / "alerting.json").write_text(json.dumps(thresholds))
    config = sotag_home.write_config("daily.toml", f'\n[drift]\nthresholds = "{sotag_home.root / "alerting.json"}"\n')

    run = dags["daily_drift_check"].test(run_conf={"config": str(config), "webhook": webhook.url})
    assert run.state == "success", states(run)
    assert states(run) == {
        "drift": "success",
        "branch_on_severity": "success",
        "alert": "success",
        "trigger_weekly_ml_pipeline": "success",
        "no_alert": "skipped",
    }
    result = returned(run, "drift")
    assert result["severity"] == "alert" and result["mlflow_run_id"]
    assert [w["n"] for w in result["windows"]] == [150]
    # The drift run is logged in the tracking store, finished.
    with sqlite3.connect(sotag_home.root / "mlflow.db") as connection:
        found = connection.execute("select status from runs where run_uuid = ?", (result["mlflow_run_id"],)).fetchall()
    assert found == [("FINISHED",)]
    assert len(webhook.received) == 1 and webhook.received[0]["severity"] == "alert"
    assert webhook.received[0]["action"] == "weekly_ml_pipeline triggered"
    # The weekly pipeline is queued early, with the same settings file; the champion is not touched.
    from airflow.models.dagrun import DagRun

    triggered = [r for r in DagRun.find(dag_id="weekly_ml_pipeline") if r.conf.get("config") == str(config)]
    assert len(triggered) == 1 and triggered[0].state == "queued"
    assert "rollback" not in sotag_home.sotag("status").stdout.lower()
