"""The DAG files import in Airflow's DagBag with no error, with the expected tasks, order and schedules."""

from __future__ import annotations

import pytest

from .conftest import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bag(airflow_db):
    from airflow.models.dagbag import BundleDagBag

    # As the dag-processor and the task runner parse the dags-folder bundle: its folder on sys.path (sotag_cli).
    return BundleDagBag(dag_folder=str(REPO / "dags"), bundle_path=REPO / "dags")


def test_the_dag_files_import_with_no_error(bag):
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["daily_drift_check", "weekly_ml_pipeline"]


def test_weekly_ml_pipeline_ingests_then_retrains_then_notifies(bag):
    dag = bag.dags["weekly_ml_pipeline"]
    assert dag.timetable.summary == "0 0 * * 0" and not dag.catchup and dag.max_active_runs == 1  # @weekly
    assert sorted(dag.task_ids) == ["ingest", "notify", "retrain"]
    assert dag.get_task("retrain").upstream_task_ids == {"ingest"}
    assert dag.get_task("notify").upstream_task_ids == {"ingest", "retrain"}
    assert {"config", "inbox", "data", "eval_days", "floor", "webhook"} <= set(dag.params)


def test_daily_drift_check_branches_on_severity_and_never_rolls_back(bag):
    dag = bag.dags["daily_drift_check"]
    assert dag.timetable.summary == "0 0 * * *" and not dag.catchup  # @daily
    assert sorted(dag.task_ids) == ["alert", "branch_on_severity", "drift", "no_alert", "trigger_weekly_ml_pipeline"]
    assert dag.get_task("branch_on_severity").downstream_task_ids == {"alert", "no_alert"}
    trigger = dag.get_task("trigger_weekly_ml_pipeline")
    assert trigger.upstream_task_ids == {"alert"} and trigger.trigger_dag_id == "weekly_ml_pipeline"
    assert not any("rollback" in task_id for task_id in dag.task_ids)
    assert (dag.params["current_days"], dag.params["reference_days"]) == (7, 30)
