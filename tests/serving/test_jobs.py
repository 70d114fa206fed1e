"""/admin/retrain: the job the `sotag` command layer hands the gateway, one at a time, with a bounded history."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from sotag.cli import build_parser
from sotag.serving.app import create_app
from sotag.serving.jobs import JobRefused, Jobs
from sotag.tagger.errors import DataError
from sotag.training import cli as training_cli
from tests.support.settings import gateway_config

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


def test_the_gateway_command_is_handed_the_function_sotag_retrain_runs():
    args = build_parser().parse_args(["gateway"])
    assert args.retrain_job is training_cli.retrain_job
    assert build_parser().parse_args(["retrain"]).handler is training_cli._retrain


def test_retrain_route_runs_the_injected_job_once_at_a_time(store, tmp_path):
    release = threading.Event()
    calls: list[int] = []

    def job() -> int:
        calls.append(1)
        release.wait(30)
        return 3

    config = gateway_config(admin_token=TOKEN, prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}")
    app = create_app(config, retrain=job)
    with TestClient(app) as client:
        started = client.post("/admin/retrain", headers=AUTH)
        assert started.status_code == 202 and started.json()["status"] == "running"
        job_id = started.json()["id"]
        refused = client.post("/admin/retrain", headers=AUTH)
        assert refused.status_code == 409 and job_id in refused.json()["error"]
        release.set()
        done = _finished(app.state.jobs, job_id)
        assert client.get(f"/admin/jobs/{job_id}", headers=AUTH).json() == done
        assert (done["status"], done["exit_code"]) == ("kept", 3)
        assert client.get("/admin/jobs/nope", headers=AUTH).status_code == 404
    assert calls == [1]


def test_retrain_route_without_a_job_is_unavailable(store, tmp_path):
    config = gateway_config(admin_token=TOKEN, prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}")
    with TestClient(create_app(config)) as client:
        response = client.post("/admin/retrain", headers=AUTH)
    assert response.status_code == 503 and "retrain" in response.json()["error"]


def test_job_history_is_bounded_and_failures_carry_the_command_exit_code():
    jobs = Jobs(keep=3)
    outcomes = iter([0, 3, 7])

    def failing() -> int:
        raise DataError("no data file at /nowhere")

    ids = []
    for work in (lambda: next(outcomes), lambda: next(outcomes), lambda: next(outcomes), failing, failing):
        ids.append(jobs.start(work)["id"])
        _finished(jobs, ids[-1])
    assert len(jobs) == 3
    assert jobs.get(ids[0]) is None and jobs.get(ids[1]) is None
    assert jobs.get(ids[2])["status"] == "failed" and jobs.get(ids[2])["exit_code"] == 7
    failed = jobs.get(ids[4])
    assert (failed["status"], failed["exit_code"]) == ("failed", 2)
    assert "no data file at /nowhere" in failed["output"]


def test_a_second_job_is_refused_while_one_runs():
    jobs, release = Jobs(), threading.Event()
    first = jobs.start(lambda: int(not release.wait(30)))
    with pytest.raises(JobRefused):
        jobs.start(lambda: 0)
    release.set()
    assert _finished(jobs, first["id"])["status"] == "promoted"
