"""daily_drift_check: `sotag drift` on the gateway's prediction log (the last 7 days against the 30 before) ->
on alert, a webhook alert and an early run of weekly_ml_pipeline; never a rollback (a person decides that)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task
from sotag_cli import CONFIG_PARAM, DAG_DEFAULTS, config_args, post_json, run_sotag, setting

ALERT = 4  # sotag drift's exit code when a window is alert (0: ok or warn; 2: bad input)


def prediction_log(params: dict[str, Any]) -> str:
    """The run's param, the Variable sotag_prediction_log, else the log the settings give the gateway."""
    url = setting(params, "predictions", "sotag_prediction_log")
    if url:
        return str(url)
    _, out = run_sotag(["config", *config_args(params)])
    found = re.search(r"^\s*prediction log: (\S+)$", out, re.MULTILINE)
    if not found:
        raise ValueError("sotag config names no prediction log: set the Variable sotag_prediction_log")
    return found.group(1)


@dag(
    dag_id="daily_drift_check",
    schedule="@daily",
    doc_md=__doc__,
    **DAG_DEFAULTS,
    params={
        "config": CONFIG_PARAM,
        "predictions": Param(None, type=["null", "string"], description="prediction log URL (else the settings')"),
        "current_days": Param(7, type="integer", minimum=1),
        "reference_days": Param(30, type="integer", minimum=1),
        "as_of": Param(
            None, type=["null", "string"], description="the windows end here (YYYY-MM-DD or ISO); none: the run's end"
        ),
        "webhook": Param(None, type=["null", "string"], description="POST alerts here (else Variable sotag_webhook)"),
    },
)
def daily_drift_check() -> None:
    @task(execution_timeout=timedelta(hours=1))
    def drift(params: dict[str, Any] | None = None, data_interval_end=None) -> dict[str, Any]:
        params = params or {}
        # The windows end at the run's data interval end (a scheduled run: midnight UTC; by hand: when triggered), so
        # a rerun judges the same days.
        as_of = params.get("as_of") or (data_interval_end.isoformat() if data_interval_end else None)
        args = ["drift", "--predictions", prediction_log(params), "--current-days", str(params["current_days"])]
        args += ["--reference-days", str(params["reference_days"]), "--on-alert", "none", *config_args(params)]
        args += ["--as-of", str(as_of)] if as_of else []
        code, out = run_sotag(args, accept=(0, ALERT))
        reports = re.search(r"^reports: (.+)$", out, re.MULTILINE)
        summary = json.loads((Path(reports.group(1)) / "summary.json").read_text()) if reports else {}
        return {
            "severity": "alert" if code == ALERT else summary.get("worst", "ok"),
            "windows": [
                {k: m.get(k) for k in ("month", "n", "severity", "reasons")} for m in summary.get("months", [])
            ],
            "reports": reports.group(1) if reports else None,
            "mlflow_run_id": summary.get("mlflow_run_id"),
        }

    @task.branch
    def branch_on_severity(result: dict[str, Any]) -> str:
        return "alert" if result["severity"] == "alert" else "no_alert"

    @task
    def alert(result: dict[str, Any], params: dict[str, Any] | None = None, run_id=None) -> dict[str, Any]:
        payload = {"dag_id": "daily_drift_check", "run_id": run_id, "action": "weekly_ml_pipeline triggered", **result}
        webhook = setting(params or {}, "webhook", "sotag_webhook", "SOTAG_PIPELINE_WEBHOOK")
        if webhook:
            post_json(webhook, payload)
        else:
            print(f"daily_drift_check: ALERT {payload}")
        return payload

    retrain_early = TriggerDagRunOperator(
        task_id="trigger_weekly_ml_pipeline",
        trigger_dag_id="weekly_ml_pipeline",
        conf={"config": "{{ params.config or '' }}"},
    )
    result = drift()
    alerted = alert(result)
    branch_on_severity(result) >> [alerted, EmptyOperator(task_id="no_alert")]
    alerted >> retrain_early


daily_drift_check()
