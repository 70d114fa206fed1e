"""A real Prometheus (1 s scrapes and rule evaluations, the committed rules with shorter `for:`) scraping a real
gateway (`sotag gateway`, a champion and a shadow @challenger) after a real drift job: every query of every panel of
the committed dashboard returns data, and the error-ratio alert fires when the gateway answers 5xx."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from sotag.infra.drift_summary import latest_summary
from sotag.mlruns_config.servers import free_port
from sotag.monitoring.observe import DASHBOARD, JOB, RULES
from sotag.monitoring.observe.prometheus import Scrape, command, render
from sotag.monitoring.severity import DEFAULT_THRESHOLDS
from tests.processes import REQUEST_TIMEOUT_S, start_server, stop_server, venv_env
from tests.serving.conftest import throwaway_store

pytestmark = pytest.mark.integration
# Grafana's range-query variable, as a query over a few 1 s scrapes reads it.
RATE_INTERVAL = "20s"


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is missing (Debian package prometheus; make system-deps installs it)")
    return binary


@pytest.fixture(scope="module")
def store(tmp_path_factory, questions_parquet):
    """A champion and a @challenger (for the shadow), and the drift job's result on the same questions."""
    with throwaway_store(tmp_path_factory.mktemp("observe-store"), questions_parquet) as s:
        s.train_and_promote(min_tags=0)  # no minimum: a question with no tag over the threshold gets none
        s.train(C=1.0)  # registered as @challenger
        yield s


def _drift(store, tmp_path: Path) -> Path:
    """`sotag drift` as the schedule runs it, on three months of the store's questions; every family is judged at
    this size (a thresholds file with floors of 1 question: the months hold about 20)."""
    thresholds = json.loads(DEFAULT_THRESHOLDS.read_text())
    thresholds["_min_questions"] = {family: 1 for family in thresholds["_min_questions"]}
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps(thresholds))
    args = [sys.executable, "-m", "sotag", "drift", "--data", str(store.data), "--months", "2018-04..2018-06",
            "--thresholds", str(path), "--no-mlflow"]  # fmt: skip
    env = venv_env(dict(os.environ), **store.env)
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 4), done.stdout[-3000:] + done.stderr[-3000:]  # 4: a month at alert
    found = latest_summary(store.root / "reports" / "drift")  # where the gateway reads it (<home>/reports/drift)
    assert found is not None, done.stdout[-3000:]
    return found[0]


def _rules_with_short_waits(tmp_path: Path) -> Path:
    """The committed rules with every `for:` at 0 s; the expressions are the committed ones, unchanged."""
    committed = yaml.safe_load(RULES.read_text())
    fast = yaml.safe_load(RULES.read_text())
    for group in fast["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
    assert [r["expr"] for g in fast["groups"] for r in g["rules"]] == [
        r["expr"] for g in committed["groups"] for r in g["rules"]
    ]
    path = tmp_path / "alerts.yml"
    path.write_text(yaml.safe_dump(fast, sort_keys=False))
    return path


def _query(prometheus: str, expr: str) -> list[dict]:
    answer = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=REQUEST_TIMEOUT_S)
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]["result"]


def _panel_queries() -> dict[tuple[str, str], str]:
    """(panel title, refId) -> the query as Prometheus gets it from Grafana, for every panel of the dashboard."""
    board = json.loads(DASHBOARD.read_text())
    return {
        (panel["title"], target["refId"]): target["expr"].replace("$__rate_interval", RATE_INTERVAL)
        for panel in board["panels"]
        for target in panel["targets"]
    }


def _eventually(what: str, check, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, f"{what}: not within {seconds} s"
            return result
        time.sleep(0.5)


def test_every_panel_has_data_and_the_error_ratio_alert_fires(store, questions, prometheus_binary, tmp_path):
    reports = _drift(store, tmp_path)
    gateway_port, prometheus_port = free_port(), free_port()
    gateway = f"http://127.0.0.1:{gateway_port}"
    env = venv_env(
        dict(os.environ),
        **store.env,
        SOTAG_RELOAD_POLL_S="1",
        SOTAG_PREDICTION_LOG=f"sqlite:///{tmp_path / 'predictions.db'}",
        SOTAG_GATEWAY__RUN_DIR=str(tmp_path / "run"),
        SOTAG_GATEWAY__SHADOW="challenger",
        # A batch of questions takes longer than this: /predict/batch answers 504 (the gateway's time limit).
        SOTAG_REQUEST_TIMEOUT_S="0.001",
    )
    args = [sys.executable, "-m", "sotag", "gateway", "--port", str(gateway_port), "--workers", "1"]
    proc = start_server(args, env, f"{gateway}/health")
    config = tmp_path / "prometheus.yml"
    scrape = Scrape(f"127.0.0.1:{gateway_port}", 1, 1, str(_rules_with_short_waits(tmp_path)))
    config.write_text(render(scrape))
    prometheus = f"http://127.0.0.1:{prometheus_port}"
    line = command(prometheus_binary, config, tmp_path / "tsdb", prometheus_port)
    watcher = None
    try:
        watcher = start_server(line, dict(os.environ), f"{prometheus}/-/ready")
        _eventually("the gateway scraped", lambda: _query(prometheus, f'up{{job="{JOB}"}} == 1'))
        _eventually("the drift summary scraped", lambda: _query(prometheus, "sotag_drift_summary_timestamp_seconds"))

        session = requests.Session()
        rows = questions.sample(n=60, random_state=0)
        answered = []
        for i, (title, body) in enumerate(zip(rows["title"], rows["body"], strict=True)):
            question = {"title": title, "body": body, **({"threshold": 1.0} if i % 6 == 0 else {})}
            answer = session.post(f"{gateway}/predict", json=question, timeout=REQUEST_TIMEOUT_S)
            assert answer.status_code == 200, answer.text
            answered.append(answer.json())
        for answer, tags in zip(answered[:20], rows["tags"][:20], strict=True):
            kept = session.post(
                f"{gateway}/feedback",
                json={"prediction_id": answer["prediction_id"], "tags": list(tags)},
                timeout=REQUEST_TIMEOUT_S,
            )
            assert kept.status_code == 200 and kept.json()["recorded"], kept.text
        assert session.post(f"{gateway}/predict", json={"title": ""}, timeout=30).status_code == 400
        pairs = list(zip(rows["title"], rows["body"], strict=True)) * 10
        batch = {"questions": [{"title": t, "body": b} for t, b in pairs]}  # 600 questions: over 1 ms to score

        def late() -> None:
            answer = session.post(f"{gateway}/predict/batch", json=batch, timeout=REQUEST_TIMEOUT_S)
            assert answer.status_code == 504, answer.text

        # The first 504 creates the series; rate() counts from its first scrape, so the others come after it.
        late()
        _eventually("the 504 scraped", lambda: _query(prometheus, 'sotag_requests_total{code="504"}'))
        for _ in range(9):
            late()
        # About one answer in ten (the scrapes of /metrics aside) is a 5xx: over the rule's 5%.
        firing = _eventually(
            "SotagHighErrorRatio firing",
            lambda: _query(prometheus, 'ALERTS{alertname="SotagHighErrorRatio",alertstate="firing"}'),
        )
        assert firing[0]["metric"]["job"] == JOB
        alerts = requests.get(f"{prometheus}/api/v1/alerts", timeout=30).json()["data"]["alerts"]
        assert any(a["labels"]["alertname"] == "SotagHighErrorRatio" and a["state"] == "firing" for a in alerts)

        queries = _panel_queries()
        empty: dict[tuple[str, str], str] = {}

        def every_panel_answers() -> bool:
            empty.clear()
            empty.update({key: expr for key, expr in queries.items() if not _query(prometheus, expr)})
            return not empty

        _eventually("every panel's queries answer", every_panel_answers, seconds=60)
        exercised = {key for key in queries if key not in empty}
        assert exercised == set(_panel_queries()) and len(exercised) >= 15

        # What the panels show is what happened.
        def one(expr: str) -> dict[str, float]:
            return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in _query(prometheus, expr)}

        served = _query(prometheus, "max by (version) (sotag_model_version > 0)")
        assert [r["metric"]["version"] for r in served] == ["1"]
        assert [r["metric"]["version"] for r in _query(prometheus, "sotag_challenger_version > 0")] == ["2"]
        assert one('sum(sotag_requests_total{route="/predict/batch",code="504"})') == {"{}": 10.0}
        assert one('sum(sotag_answers_total{arm="champion"})') == {"{}": 60.0}
        assert one("sum(sotag_live_precision_at_1_count)") == {"{}": 20.0}
        assert one("sum(sotag_no_tag_answers_total)")["{}"] >= 10  # the questions asked with threshold 1.0
        summary = latest_summary(reports.parent)[1]
        newest = summary.months[-1]
        latest = {
            r["metric"]["family"]: float(r["value"][1]) for r in _query(prometheus, "sotag_drift_latest_severity")
        }
        levels = {"ok": 0.0, "warn": 1.0, "alert": 2.0}
        # Each family the drift job judged has its level; one no rule reads ("text": "unjudged") has no series.
        judged = {f: levels[s] for f, s in newest.family_severity.items() if s != "unjudged"}
        assert latest == {**judged, "all": levels[newest.severity]} and "embeddings" in judged
        assert newest.family_severity.get("text") == "unjudged" and "text" not in latest
        statistics = _query(prometheus, 'sotag_drift_statistic{statistic="embedding_drift_auc"}')
        assert {r["metric"]["window"] for r in statistics} == {m.month for m in summary.months}
    finally:
        if watcher is not None:
            stop_server(watcher)
        stop_server(proc)
