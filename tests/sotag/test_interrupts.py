"""SIGTERM and Ctrl-C to a running `sotag` job: its runs end KILLED (nested ones too), exit 143 / 130,
and no model version is registered from the interrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sotag.infra.tracking import MODEL_NAME, TrackingSettings, use_fluent
from tests.support.settings import REPO

pytestmark = pytest.mark.integration
SAMPLE = REPO / "data" / "questions-sample.parquet"


def _start(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen, MlflowClient]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        MLFLOW_TRACKING_URI=uri,
        SOTAG_ARTIFACT_ROOT=(tmp_path / "artifacts").as_uri(),
        SOTAG_CACHE=str(tmp_path / "cache"),
        SOTAG_LOCK_DIR=str(tmp_path / "locks"),
    )
    # The store exists (with its tables) before the job starts, as a user's does: the job and this test's polls then
    # only read and write it, never race to create it.
    TrackingSettings(uri, (tmp_path / "artifacts").as_uri()).client().search_experiments()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "sotag"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, MlflowClient(uri, uri)


def _wait_running(proc: subprocess.Popen, client: MlflowClient, run_name: str, timeout_s: float = 240) -> None:
    """Readiness: the run named `run_name` is RUNNING in the store (polled), while the job is still alive."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the job ended before its run started: {proc.stderr.read()[-2000:]}")
        try:
            runs = client.search_runs(
                [e.experiment_id for e in client.search_experiments()],
                filter_string=f"attributes.status = 'RUNNING' and attributes.run_name = '{run_name}'",
            )
        except Exception:  # the store is being created by the job
            runs = []
        if runs:
            return
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"run {run_name} never RUNNING")


def _all_runs(client: MlflowClient) -> list:
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_sigterm_to_train_kills_its_run_and_registers_nothing(tmp_path):
    # The sbert kind encodes every training question inside its run (cold cache: tens of seconds on 2 cores), so
    # the signal lands mid-run however fast the machine; a tfidf fit of the sample can end before it arrives.
    proc, client = _start(["train", "--data", str(SAMPLE), "--vectorizer", "sbert"], tmp_path)
    _wait_running(proc, client, "sbert-top100")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-2000:]
    assert "sotag train: interrupted (SIGTERM); runs ended KILLED: " in stderr
    assert "Traceback" not in stderr
    runs = _all_runs(client)
    assert [(r.info.run_name, r.info.status) for r in runs] == [("sbert-top100", "KILLED")]
    assert client.search_model_versions(f"name = '{MODEL_NAME}'") == []


def test_ctrl_c_to_compare_kills_the_parent_and_the_nested_run(tmp_path):
    # sbert first: its nested run is still encoding when the signal comes (see the test above).
    args = ["compare", "--data", str(SAMPLE), "--vectorizers", "sbert,bow", "--top-n-tags", "20"]
    proc, client = _start(args, tmp_path)
    _wait_running(proc, client, "sbert-top20")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "sotag compare: interrupted (SIGINT)" in stderr
    statuses = {r.info.run_name: r.info.status for r in _all_runs(client)}
    assert statuses == {"compare-top20": "KILLED", "sbert-top20": "KILLED"}
    assert client.search_model_versions(f"name = '{MODEL_NAME}'") == []


def test_a_version_registered_from_the_interrupted_run_is_deleted(tracking, tmp_path):
    """The signal came after registration but before the run ended: the version goes with the run."""
    import mlflow

    from sotag import interrupts

    client = MlflowClient()
    client.create_registered_model(MODEL_NAME)
    use_fluent(tracking, "stackoverflow-tagger")
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.interruptible():
        with (
            pytest.raises(interrupts.Interrupted) as caught,
            mlflow.start_run(run_name="outer") as outer,
            mlflow.start_run(run_name="inner", nested=True) as inner,
        ):
            kept = mlflow.start_run(run_name="unended", nested=True)  # started without `with`
            client.create_model_version(MODEL_NAME, (tmp_path / "m").as_uri(), run_id=inner.info.run_id)
            os.kill(os.getpid(), signal.SIGTERM)
        assert caught.value.code == 143
    killed = interrupts.end_interrupted_runs(tracking)
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are back as they were
    assert set(killed) == {outer.info.run_id, inner.info.run_id, kept.info.run_id}
    assert mlflow.active_run() is None
    for run_id in killed:
        assert client.get_run(run_id).info.status == "KILLED"
    assert client.search_model_versions(f"name = '{MODEL_NAME}'") == []


def test_an_interruption_swallowed_on_the_way_is_delivered_again_until_the_command_unwinds():
    """Python may run the handler inside a garbage-collector callback, which prints "Exception ignored" and goes on:
    the interruption comes again (SIGALRM timer) until it unwinds the command, then the timer is off."""
    import time

    from sotag import interrupts

    with pytest.raises(interrupts.Interrupted) as caught, interrupts.interruptible():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs here
        except KeyboardInterrupt:
            pass  # swallowed, as a weakref callback would
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the command carries on working
            time.sleep(0.05)
    assert caught.value.code == 143
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)


def test_an_interruption_swallowed_by_a_finalizer_is_redelivered_not_printed(capfd, monkeypatch):
    """A signal that lands in a `__del__` or weakref callback: Python cannot raise there and prints "Exception
    ignored … Traceback"; the timer delivers it again, so the user sees nothing of the swallowed one. Any other
    exception there is still printed."""
    import sys

    from sotag import interrupts

    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)  # Python's own, which prints (not pytest's)

    class Dying:
        def __init__(self, exc: BaseException) -> None:
            self.exc = exc

        def __del__(self) -> None:
            raise self.exc

    with interrupts.interruptible():
        interrupts._pending.append(signal.SIGTERM)  # a signal being delivered (the timer would raise it again)
        Dying(interrupts.Interrupted(signal.SIGTERM))
        Dying(ValueError("a finalizer's own bug"))
        interrupts._pending.clear()
    err = capfd.readouterr().err
    assert "Interrupted" not in err and "SIGTERM" not in err
    assert "Exception ignored" in err and "a finalizer's own bug" in err
