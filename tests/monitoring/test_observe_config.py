"""Prometheus' configuration, the alert rules and the Grafana dashboard (monitoring/observe/): promtool checks them
and runs every rule's unit tests; the committed files are what their generators write; the dashboard fits
Grafana's schema and names the provisioned datasource; the gateway's drift gauges read the drift job's summary."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from sotag.infra.drift_summary import DriftSummary, MonthSummary, write_summary
from sotag.monitoring.observe import (
    DASHBOARD,
    DASHBOARD_PROVIDER,
    DATASOURCE,
    DATASOURCE_UID,
    JOB,
    PROMETHEUS_CONFIG,
    RULES,
    RULES_TESTS,
)
from sotag.monitoring.observe import dashboard as generator
from sotag.monitoring.observe.__main__ import main as observe_main
from sotag.monitoring.observe.prometheus import Scrape, command, duration, render
from sotag.monitoring.severity import LEVELS
from sotag.serving.metrics import DRIFT_LEVELS, DriftCollector, exposition
from sotag.settings import Settings, load_settings

PANEL_TYPES = {"timeseries", "stat", "table", "bargauge"}


def promtool(*args: str, cwd: Path = RULES.parent) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is missing (Debian package prometheus; make system-deps installs it)")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_checks_the_configuration_and_the_rules():
    config = promtool("check", "config", PROMETHEUS_CONFIG.name)
    assert config.returncode == 0, config.stdout + config.stderr
    assert f"SUCCESS: {len(rules())} rules found" in config.stdout  # the configuration loads alerts.yml
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0 and f"SUCCESS: {len(rules())} rules found" in checked.stdout, checked.stdout


def test_promtool_runs_every_rules_unit_tests():
    result = promtool("test", "rules", RULES_TESTS.name)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_every_rule_has_a_firing_and_a_quiet_unit_test():
    names = {rule["alert"] for rule in rules()}
    assert len(names) == len(rules()) == 8
    firing, quiet = set(), set()
    for case in yaml.safe_load(RULES_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing == names and quiet == names
    for rule in rules():
        assert rule["labels"]["severity"] in {"page", "ticket"} and rule["annotations"]["summary"], rule["alert"]


def test_a_broken_rules_test_fails(tmp_path):
    """promtool's verdict is read: a test expecting the wrong labels fails (the suite does not pass vacuously)."""
    shutil.copy(RULES, tmp_path / RULES.name)
    cases = yaml.safe_load(RULES_TESTS.read_text())
    cases["tests"][0]["alert_rule_test"][1]["exp_alerts"][0]["exp_labels"]["severity"] = "ticket"
    (tmp_path / RULES_TESTS.name).write_text(yaml.safe_dump(cases))
    result = promtool("test", "rules", RULES_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


def test_the_committed_configuration_is_the_defaults_rendering_and_make_observe_renders_the_settings(
    tmp_path, capsys, monkeypatch
):
    assert PROMETHEUS_CONFIG.read_text() == render(Scrape())
    assert Scrape.from_settings(Settings(), "alerts.yml") == Scrape()
    assert duration(15.0) == "15s" and duration(0.5) == "500ms"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOTAG_HOME", str(tmp_path))
    monkeypatch.setenv("SOTAG_OBSERVE__SCRAPE_INTERVAL_S", "5")
    assert observe_main(["--print-config", "--gateway-port", "8123"]) == 0
    text = capsys.readouterr().out
    assert '- targets: ["127.0.0.1:8123"]' in text and "scrape_interval: 5s" in text and f"  - {RULES}" in text
    assert f"job_name: {JOB}" in text
    settings = load_settings({"observe.port": 9123}, environ={}, cwd=tmp_path).settings
    assert settings.observe_dir == tmp_path / "observe"
    assert command("prometheus", tmp_path / "p.yml", tmp_path / "data", settings.observe.port)[-1] == (
        "--web.listen-address=127.0.0.1:9123"
    )


def test_the_committed_dashboard_is_the_generators_output():
    assert DASHBOARD.read_text() == generator.render(), "run: python -m sotag.monitoring.observe.dashboard"


def test_the_dashboard_fits_grafanas_schema_and_reads_the_provisioned_datasource():
    board = json.loads(DASHBOARD.read_text())
    assert 39 <= board["schemaVersion"] <= 41 and board["uid"] and board["title"]
    [source] = yaml.safe_load(DATASOURCE.read_text())["datasources"]
    assert (source["uid"], source["type"]) == (DATASOURCE_UID, "prometheus")
    [provider] = yaml.safe_load(DASHBOARD_PROVIDER.read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels) and len({p["title"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        assert p["type"] in PANEL_TYPES, p["title"]
        assert p["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, p["title"]
        assert p["targets"] and len({t["refId"] for t in p["targets"]}) == len(p["targets"]), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == DATASOURCE_UID and t["expr"].strip(), p["title"]
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine
    # The screen: each of these is on it.
    wanted = ("request", "error", "latency", "served version", "alias", "arm", "shadow", "predicted tags", "no-tag",
              "drift severity", "drift statistics", "precision@1")  # fmt: skip
    titles = " | ".join(p["title"].lower() for p in panels)
    assert all(word in titles for word in wanted), titles


def _drift_metrics(reports: Path) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = exposition(CollectorRegistry(), None, [DriftCollector(reports)]).decode()
    return {
        family.name: [(s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
        if family.name.startswith("sotag_drift")
    }


def test_the_gateway_exports_the_latest_drift_summary_per_family_and_window(tmp_path):
    # Every judged level has a value; "unjudged" (no family had enough questions) exports no series.
    assert list(DRIFT_LEVELS) == [level for level in LEVELS if level != "unjudged"]
    assert list(DRIFT_LEVELS.values()) == [0, 1, 2]
    reports = tmp_path / "reports"
    assert _drift_metrics(reports) == {}  # no job yet: no drift series, no error
    month = MonthSummary
    old = DriftSummary(
        reference={}, baselines={}, notes=(), worst="alert", seconds=1.0, timings={},
        months=(month("2018-04", 90, "alert", ("…",), "2018-04.html", {"embedding_drift_auc": 0.9}, (),
                      {"embeddings": "alert"}),),
        rule_families={"embedding_drift_auc": "embeddings"},
    )  # fmt: skip
    (reports / "20260101T000000_2018-04_2018-04").mkdir(parents=True)
    write_summary(reports / "20260101T000000_2018-04_2018-04", old)
    new = DriftSummary(
        reference={}, baselines={}, notes=(), worst="warn", seconds=1.0, timings={},
        months=(
            month("2018-05", 80, "alert", ("…",), "2018-05.html",
                  {"embedding_drift_auc": 0.8, "tag_psi": float("nan"), "n_questions": 80.0}, (),
                  {"embeddings": "alert", "predictions": "ok"}),
            month("2018-06", 85, "warn", ("…",), "2018-06.html", {"embedding_drift_auc": 0.7, "tag_psi": 2.5}, (),
                  {"embeddings": "warn", "predictions": "warn", "text": "ok"}),
        ),
        rule_families={"embedding_drift_auc": "embeddings", "tag_psi": "predictions"},
    )  # fmt: skip
    newer = reports / "20260201T000000_2018-05_2018-06"
    newer.mkdir()
    write_summary(newer, new)
    metrics = _drift_metrics(reports)
    severity = {(labels["family"], labels["window"]): value for labels, value in metrics["sotag_drift_severity"]}
    assert severity == {
        ("embeddings", "2018-05"): 2, ("predictions", "2018-05"): 0, ("all", "2018-05"): 2,
        ("embeddings", "2018-06"): 1, ("predictions", "2018-06"): 1, ("text", "2018-06"): 0, ("all", "2018-06"): 1,
    }  # fmt: skip
    latest = {(labels["family"], labels["window"]): value for labels, value in metrics["sotag_drift_latest_severity"]}
    assert latest == {("embeddings", "2018-06"): 1, ("predictions", "2018-06"): 1, ("text", "2018-06"): 0,
                      ("all", "2018-06"): 1}  # fmt: skip
    statistics = {tuple(labels.values()): value for labels, value in metrics["sotag_drift_statistic"]}
    # Only the statistics a rule reads, finite: the NaN PSI of 2018-05 and the sample size are left out.
    assert statistics == {
        ("embeddings", "embedding_drift_auc", "2018-05"): 0.8,
        ("embeddings", "embedding_drift_auc", "2018-06"): 0.7,
        ("predictions", "tag_psi", "2018-06"): 2.5,
    }
    [(_, stamp)] = metrics["sotag_drift_summary_timestamp_seconds"]
    assert stamp == (newer / "summary.json").stat().st_mtime
    (newer / "summary.json").write_text("{not json")  # a damaged newest summary: no drift series, no error
    assert _drift_metrics(reports) == {}
