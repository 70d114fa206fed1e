"""weekly_ml_pipeline: ingest the inbox's new files -> retrain on the store's newest window (train, register, gate,
promote if better) -> notify. Each step is sotag's CLI (dags/sotag_cli.py); triggerable by hand with the params."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, task
from sotag_cli import CONFIG_PARAM, DAG_DEFAULTS, config_args, post_json, run_sotag, setting

PROMOTED, KEPT = 0, 3  # sotag retrain's exit codes: both a successful run, told apart in the task's return value


@dag(
    dag_id="weekly_ml_pipeline",
    schedule="@weekly",
    doc_md=__doc__,
    **DAG_DEFAULTS,
    params={
        "config": CONFIG_PARAM,
        "inbox": Param(None, type=["null", "string"], description="folder of new files (else the store.inbox setting)"),
        "data": Param("store", type="string", description="what retrain reads (--data): the question store"),
        "eval_days": Param(None, type=["null", "integer"], minimum=1, description="evaluate on the last N days"),
        "floor": Param(None, type=["null", "number"], minimum=0, maximum=1, description="the gate's floor"),
        "webhook": Param(None, type=["null", "string"], description="POST the summary here (else Variable)"),
    },
)
def weekly_ml_pipeline() -> None:
    @task(execution_timeout=timedelta(hours=1))
    def ingest(params: dict[str, Any] | None = None) -> str:
        params = params or {}
        inbox = [str(params["inbox"])] if params.get("inbox") else []
        _, out = run_sotag(["ingest", "--inbox", *inbox, *config_args(params)])
        lines = [line for line in out.splitlines() if line.startswith(("ingest: load", "ingest: no new files"))]
        return lines[0] if lines else out.strip()[-500:]

    @task(execution_timeout=timedelta(hours=4))
    def retrain(ingested: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        params = params or {}
        args = ["retrain", "--data", params.get("data") or "store", *config_args(params)]
        if params.get("eval_days") is not None:
            args += ["--eval-days", str(params["eval_days"])]
        if params.get("floor") is not None:
            args += ["--floor", str(params["floor"])]
        code, out = run_sotag(args, accept=(PROMOTED, KEPT))
        # The gate's line; a champion kept for another reason (sotag retrain: kept: ...) says so on stderr.
        decided = [ln for ln in out.splitlines() if re.match(r"promote: (PROMOTED|KEPT)|sotag retrain: kept: ", ln)]
        reason = decided[0] if decided else out.strip()[-500:]
        version = re.search(r"challenger v(\d+)", out) or re.search(r"\bv(\d+)", reason)
        return {
            "outcome": "promoted" if code == PROMOTED else "kept",
            "version": version.group(1) if version else None,
            "reason": reason,
            "exit_code": code,
        }

    @task
    def notify(ingested: str, outcome: dict[str, Any], params: dict[str, Any] | None = None, run_id=None) -> dict:
        summary = {"dag_id": "weekly_ml_pipeline", "run_id": run_id, "ingest": ingested, **outcome}
        webhook = setting(params or {}, "webhook", "sotag_webhook", "SOTAG_PIPELINE_WEBHOOK")
        if webhook:
            post_json(webhook, summary)
        else:
            print(f"weekly_ml_pipeline: {summary}")
        return summary

    ingested = ingest()
    notify(ingested, retrain(ingested))


weekly_ml_pipeline()
