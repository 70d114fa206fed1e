"""/admin/retrain: `sotag retrain` as a child process with the gateway's settings (sotag.infra.retrain_job, the one
way a component starts a retrain), one at a time, with a bounded history."""

from __future__ import annotations

import sys
import threading
import time
from functools import partial

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from sotag.cli import build_parser
from sotag.infra.retrain_job import RetrainProcess, RetrainResult, retrain_command
from sotag.infra.tracking import MODEL_NAME
from sotag.serving.app import create_app
from sotag.serving.config import GatewayConfig
from sotag.serving.jobs import JobRefused, Jobs
from sotag.training import cli as training_cli
from tests.support.settings import gateway_config, settings_from

TOKEN = "jobs-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _finished(jobs: Jobs, job_id: str, timeout_s: float = 30.0) -> dict:
    """The job's record once it left `running` (polled until then)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = jobs.get(job_id)
        if job is not None and job["status"] != "running":
            return job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} still running after {timeout_s} s")


class FakeProcess:
    """A job's process as the Jobs table sees it: a pid, `wait()` giving the command's result, `stop()`."""

    def __init__(self, code: int, output: str = "", release: threading.Event | None = None):
        self.pid, self.code, self.output, self.release, self.stopped = 4242, code, output, release, False

    def wait(self) -> RetrainResult:
        if self.release is not None:
            self.release.wait(30)
        return RetrainResult(self.code, self.output)

    def stop(self, timeout_s: float = 30.0) -> None:
        self.stopped = True
        if self.release is not None:
            self.release.set()


def test_the_gateway_command_no_longer_carries_a_training_function():
    args = build_parser().parse_args(["gateway"])
    assert not hasattr(args, "retrain_job")
    assert build_parser().parse_args(["retrain"]).handler is training_cli._retrain
    assert retrain_command(["--data", "x"]) == [sys.executable, "-m", "sotag", "retrain", "--data", "x"]


def test_retrain_route_runs_one_process_at_a_time_and_records_its_outcome(store, tmp_path):
    release = threading.Event()
    started: list[FakeProcess] = []

    def launch() -> FakeProcess:
        started.append(FakeProcess(3, "training...\nsotag retrain: kept: v2 F1@3 0.41 < champion 0.52\n", release))
        return started[-1]

    config = gateway_config(admin_token=TOKEN, prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}")
    app = create_app(config, retrain=launch)
    with TestClient(app) as client:
        response = client.post("/admin/retrain", headers=AUTH)
        assert response.status_code == 202
        job = response.json()
        assert (job["status"], job["pid"], job["exit_code"]) == ("running", 4242, None)
        refused = client.post("/admin/retrain", headers=AUTH)
        assert refused.status_code == 409 and job["id"] in refused.json()["error"]
        release.set()
        done = _finished(app.state.jobs, job["id"])
        assert client.get(f"/admin/jobs/{job['id']}", headers=AUTH).json() == done
        assert (done["status"], done["exit_code"]) == ("kept", 3)
        assert done["last_line"] == "sotag retrain: kept: v2 F1@3 0.41 < champion 0.52"
        assert client.get("/admin/jobs/nope", headers=AUTH).status_code == 404
    assert len(started) == 1


def test_a_job_still_running_at_shutdown_is_stopped(store, tmp_path):
    release = threading.Event()
    process = FakeProcess(143, "sotag retrain: interrupted (SIGTERM)\n", release)
    config = gateway_config(admin_token=TOKEN, prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}")
    app = create_app(config, retrain=lambda: process)
    with TestClient(app) as client:
        job = client.post("/admin/retrain", headers=AUTH).json()
    assert process.stopped
    assert _finished(app.state.jobs, job["id"])["status"] == "failed"


def test_retrain_route_without_a_job_is_unavailable(store, tmp_path):
    config = gateway_config(admin_token=TOKEN, prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}")
    with TestClient(create_app(config)) as client:
        response = client.post("/admin/retrain", headers=AUTH)
    assert response.status_code == 503 and "retrain" in response.json()["error"]


def test_job_history_is_bounded_and_failures_carry_the_command_exit_code_and_line():
    jobs = Jobs(keep=3)

    def cannot_start() -> FakeProcess:
        raise OSError("[Errno 12] Cannot allocate memory")

    launches = [
        lambda: FakeProcess(0),
        lambda: FakeProcess(3),
        lambda: FakeProcess(1, "Traceback...\nsotag retrain: failed: tracking server: connection refused\n"),
        lambda: FakeProcess(2, "sotag retrain: error: --data: no data file at /nowhere\n"),
        cannot_start,
    ]
    ids = []
    for launch in launches:
        ids.append(jobs.start(launch)["id"])
        _finished(jobs, ids[-1])
    assert len(jobs) == 3
    assert jobs.get(ids[0]) is None and jobs.get(ids[1]) is None
    failed = jobs.get(ids[2])
    assert (failed["status"], failed["exit_code"]) == ("failed", 1)
    assert failed["last_line"] == "sotag retrain: failed: tracking server: connection refused"
    assert jobs.get(ids[3])["last_line"] == "sotag retrain: error: --data: no data file at /nowhere"
    unstarted = jobs.get(ids[4])
    assert (unstarted["status"], unstarted["exit_code"], unstarted["pid"]) == ("failed", 1, None)
    assert "Cannot allocate memory" in unstarted["last_line"]
    assert jobs.start(lambda: FakeProcess(0))["status"] == "running"  # a failed start does not block the next


def test_a_second_job_is_refused_while_one_runs():
    jobs, release = Jobs(), threading.Event()
    first = jobs.start(lambda: FakeProcess(0, release=release))
    with pytest.raises(JobRefused):
        jobs.start(lambda: FakeProcess(0))
    release.set()
    assert _finished(jobs, first["id"])["status"] == "promoted"


@pytest.mark.integration
def test_admin_retrain_runs_sotag_retrain_in_a_child_process_with_the_gateways_settings(
    tracking, questions_parquet, tmp_path, monkeypatch
):
    """The gateway fits nothing: the job is `python -m sotag retrain` (its own pid), and the settings the gateway
    was given as flags (not in any environment or file the child could read) reach the child's training run."""
    monkeypatch.chdir(tmp_path)
    flags = dict(
        data=(str(questions_parquet),), train__kind="tfidf", train__top_n_tags=6, train__max_features=2000,
        train__min_df=1, train__C=10.0, train__threshold=0.2, train__eval_days=60, train__retrain_min_questions=1,
        promote__floor=0.1, promote__run_behaviour_cases=False,
    )  # fmt: skip
    settings = settings_from(**flags)
    assert training_cli.retrain_job(settings) == 0  # a champion to serve, trained in this process
    config = GatewayConfig.from_settings(
        settings, admin_token=TOKEN, prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}"
    )
    app = create_app(config, retrain=partial(RetrainProcess, settings))
    with TestClient(app) as client:
        job = client.post("/admin/retrain", headers=AUTH).json()
        assert job["status"] == "running" and isinstance(job["pid"], int)
        done = _finished(app.state.jobs, job["id"], timeout_s=300)
    assert done["exit_code"] in (0, 3) and done["status"] in ("promoted", "kept"), done
    assert done["last_line"] and "Traceback" not in done["output"]
    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name(settings.train.experiment).experiment_id],
        order_by=["attributes.start_time DESC"],
    )
    newest = next(r for r in runs if r.info.run_id != runs[-1].info.run_id)
    assert newest.data.params["top_n_tags"] == "6" and newest.data.params["C"] == "10.0"
    versions = MlflowClient().search_model_versions(f"name='{MODEL_NAME}'")
    assert len(versions) == 2 and {v.run_id for v in versions} >= {newest.info.run_id}


def test_workers_sharing_a_jobs_folder_run_one_job_and_each_reads_its_record(tmp_path):
    """Two workers' tables on one shared folder (sotag gateway --workers N): one job at a time across them, and
    /admin/jobs/{id} answers on the worker that did not start it."""
    first, second = Jobs(directory=tmp_path / "jobs"), Jobs(directory=tmp_path / "jobs")
    release = threading.Event()
    job = first.start(lambda: FakeProcess(3, "promote: KEPT v2\n", release=release))
    with pytest.raises(JobRefused) as refused:
        second.start(lambda: FakeProcess(0))
    assert str(refused.value) == job["id"]
    assert second.get(job["id"])["status"] == "running"
    release.set()
    done = _finished(second, job["id"])
    assert (done["status"], done["exit_code"], done["last_line"]) == ("kept", 3, "promote: KEPT v2")
    assert second.start(lambda: FakeProcess(0))["status"] == "running"  # the lock went with the job
    assert second.get("no-such-job") is None and first.get("../../etc") is None
