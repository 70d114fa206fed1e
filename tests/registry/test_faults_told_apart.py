"""Issue 22: the registry never decides on a fault. Absence (RESOURCE_DOES_NOT_EXIST), outage (any other failure of
the tracking server or the artifact store) and corruption (files that fail their sha256) are told apart, and a
champion move interrupted at any point is completed or abandoned by the next registry command.

One test per "what can go wrong today" of the issue; each failed before the change."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE
from mlflow.tracking import MlflowClient

import sotag.registry.lifecycle as lifecycle
from sotag.cli import main
from sotag.infra.model_loading import fetch_model
from sotag.infra.tracking import MODEL_NAME, TrackingSettings
from sotag.registry.card import CardError, ModelCard
from sotag.registry.gate import GateConfig
from sotag.registry.lifecycle import promote, rollback, status_text
from sotag.registry.resolve import load_version, pin, resolve
from sotag.registry.store import CHAMPION, Registry, open_registry
from sotag.tagger.errors import BrokenModel, ComponentFault, SotagError

GATE = ["--floor", "0", "--no-behaviour-cases", "--max-latency-ms", "1000"]


def unavailable(*_args, **_kwargs):
    raise MlflowException("API request failed with error code 503 != 200", error_code=TEMPORARILY_UNAVAILABLE)


def forbidden(*_args, **_kwargs):
    raise MlflowException("API request failed with error code 403 != 200", error_code=PERMISSION_DENIED)


def dropped(*_args, **_kwargs):
    raise ConnectionError("connection reset by peer")


class FakeClient:
    """A registry client whose reads of the registered model (and of an alias) fail as `failure` says; every
    write is recorded. Version 2 exists; the registered model holds @champion -> 1 and one history event."""

    def __init__(self, failure):
        self.failure, self.writes = failure, []

    def get_registered_model(self, *_args):
        self.failure()

    get_model_version_by_alias = get_registered_model

    def get_model_version(self, name, version):
        return SimpleNamespace(version=str(version), tags={}, run_id="r")

    def __getattr__(self, name):
        if name.startswith(("set_", "delete_", "transition_")):
            return lambda *args, **kwargs: self.writes.append(name)
        raise AttributeError(name)


@pytest.fixture()
def judged_promotable(monkeypatch):
    """The gate says promote whatever the champion (so only the champion read decides what happens)."""

    def verdict(registry, config, version, champion, questions=None):
        return SimpleNamespace(
            promote=True, version=version, champion=champion, reason="stub", metrics={}, tags=lambda: {}
        )

    monkeypatch.setattr(lifecycle, "validate", verdict)


@pytest.mark.parametrize(
    "failure",
    [unavailable, forbidden, dropped],
    ids=["503", "403", "dropped"],
)
def test_an_outage_on_the_champion_read_stops_promote_and_rollback_and_moves_nothing(
    failure, judged_promotable, tmp_path
):
    client = FakeClient(failure)
    registry = Registry(client, MODEL_NAME, "fake", tmp_path)
    with pytest.raises(ComponentFault, match=r"^tracking server \(model registry\): reading registered model"):
        promote(registry, GateConfig(data=None), "2")
    with pytest.raises(ComponentFault, match=r"^tracking server"):
        rollback(registry)
    with pytest.raises(ComponentFault, match=r"^tracking server"):
        registry.alias(CHAMPION)
    assert client.writes == []  # before: v2 promoted as the "first champion" on the floor alone


def test_only_resource_does_not_exist_is_absence(tmp_path):
    def absent(*_a, **_k):
        raise MlflowException("Registered Model with name=x not found", error_code=RESOURCE_DOES_NOT_EXIST)

    registry = Registry(FakeClient(absent), MODEL_NAME, "fake", tmp_path)
    assert registry.alias(CHAMPION) is None
    assert registry.history() == []


class Answers503(http.server.BaseHTTPRequestHandler):
    """A tracking server / artifact store that answers every request 503 without MLflow's JSON body."""

    def _answer(self):
        self.send_response(503)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"upstream unavailable")

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture()
def server_503(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answers503)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    try:
        yield TrackingSettings(tracking_uri=url, artifact_root=None, lock_dir=Path("unused"))
    finally:
        server.shutdown()


def test_an_outage_while_fetching_a_model_is_a_component_fault_not_a_broken_model(server_503):
    with pytest.raises(ComponentFault, match=r"^tracking server \(model registry\): locating the files"):
        load_version(server_503.client(), MODEL_NAME, "1")
    host = server_503.tracking_uri.removeprefix("http://")
    with pytest.raises(ComponentFault, match=r"^artifact store: downloading"):
        fetch_model(f"mlflow-artifacts://{host}/1/models/m-1/artifacts", server_503.tracking_uri)


def test_an_outage_in_resolve_is_not_bad_input(server_503):
    for uri in (f"models:/{MODEL_NAME}@champion", f"models:/{MODEL_NAME}/1"):
        with pytest.raises(ComponentFault, match=r"^tracking server"):
            resolve(uri, server_503)
        with pytest.raises(ComponentFault, match=r"^tracking server"):
            pin(uri, server_503)


# -- against an embedded registry ----------------------------------------------------------------------------------


def test_absent_alias_and_version_are_not_in_the_registry(make_version, registry, tracking):
    make_version()
    assert registry.alias(CHAMPION) is None  # MLflow answers INVALID_PARAMETER_VALUE here; read as absence
    with pytest.raises(SotagError, match="not in the registry"):
        resolve(f"models:/{MODEL_NAME}@champion", tracking)
    with pytest.raises(SotagError, match="not in the registry"):
        pin(f"models:/{MODEL_NAME}/99", tracking)


def test_a_malformed_eval_metrics_tag_is_an_error_naming_the_version_and_the_tag(make_version, tracking):
    version = make_version()
    run_id = MlflowClient().get_model_version(MODEL_NAME, version).run_id
    MlflowClient().set_tag(run_id, "sotag.card", "{not json")
    with pytest.raises(CardError, match=rf"model version {version}: tag sotag.card is not valid JSON"):
        resolve(f"models:/{MODEL_NAME}/{version}", tracking)
    with pytest.raises(CardError, match="tag eval_metrics is not valid JSON"):
        ModelCard.from_tags(version, {"eval_metrics": "{not json"})  # drift's baseline: before, {} (silently)


def _estimator_file(version: str) -> Path:
    source = MlflowClient().get_model_version_download_uri(MODEL_NAME, version)
    found = list(Path(source.removeprefix("file://")).rglob("estimator.joblib"))
    assert len(found) == 1, found
    return found[0]


def test_a_broken_champion_is_kept_unless_the_operator_replaces_it_and_the_history_says_how(
    make_version, registry, questions_parquet, capsys
):
    v1 = make_version()
    assert main(["promote", "--data", str(questions_parquet), *GATE]) == 0
    with _estimator_file(v1).open("ab") as handle:
        handle.write(b"altered")  # no longer matches the sha256 config.json records
    with pytest.raises(BrokenModel, match="sha256 mismatch"):
        registry.load_tagger(v1)
    v2 = make_version()
    history_before = registry.history()

    assert main(["promote", "--data", str(questions_parquet), *GATE]) == 3  # before: 0, on the floor alone
    err = capsys.readouterr().err
    assert f"champion v{v1} is broken" in err and "--replace-broken-champion" in err
    assert registry.alias(CHAMPION) == v1 and registry.history() == history_before
    assert "gate_decision" not in registry.version(v2).tags

    small = ["--top-n-tags", "8", "--max-features", "2000", "--min-df", "1", "--eval-days", "120"]
    small += ["--min-questions", "1"]
    assert main(["retrain", "--data", str(questions_parquet), *small, *GATE]) == 3  # retrain says so too
    assert f"sotag retrain: kept: champion v{v1} is broken" in capsys.readouterr().err
    assert registry.alias(CHAMPION) == v1 and registry.history() == history_before

    flag = ["--version", v2, "--replace-broken-champion"]
    assert main(["promote", "--data", str(questions_parquet), *GATE, *flag]) == 0
    assert registry.alias(CHAMPION) == v2
    last = registry.history()[-1]
    assert (last.version, last.previous) == (v2, v1)
    assert f"replaced broken champion v{v1} on the floor alone, by --replace-broken-champion" in last.reason


class DiesAfter:
    """The registry client, failing (as a killed tracking server does) on the first call of `method` made after
    `after` was called; every call before goes through."""

    def __init__(self, client: MlflowClient, after: str, method: str):
        self._client, self._after, self._method, self._armed, self.died = client, after, method, False, False

    def __getattr__(self, name):
        call = getattr(self._client, name)

        def wrapped(*args, **kwargs):
            if self._armed and name == self._method and not self.died:
                self.died = True
                raise MlflowException("API request failed: connection refused", error_code=TEMPORARILY_UNAVAILABLE)
            if name == self._after:
                self._armed = True
            return call(*args, **kwargs)

        return wrapped


class DeadAfter:
    """The registry client of a tracking server that dies once `after` was called: every later call fails."""

    def __init__(self, client: MlflowClient, after: str):
        self._client, self._after, self._armed = client, after, False

    def __getattr__(self, name):
        call = getattr(self._client, name)

        def wrapped(*args, **kwargs):
            if self._armed:
                raise MlflowException("API request failed: connection refused", error_code=TEMPORARILY_UNAVAILABLE)
            self._armed = name == self._after
            return call(*args, **kwargs)

        return wrapped


def test_a_crash_between_the_alias_move_and_the_history_is_completed_by_the_next_command(make_version, tracking):
    registry = open_registry(tracking, MODEL_NAME)
    v1 = make_version()
    registry.move_champion(v1, None, "promote", "first")
    v2 = make_version()
    crashing = replace_client(registry, DiesAfter(registry.client, "set_registered_model_alias", "log_batch"))
    with pytest.raises(ComponentFault, match="tracking server"):
        crashing.move_champion(v2, v1, "promote", "better")
    assert crashing.client.died
    assert registry.alias(CHAMPION) == v2  # the alias moved; the confirmation did not reach the registry
    assert [(e.state, e.run_status) for e in registry.history()] == [("done", "FINISHED"), ("pending", "RUNNING")]

    text = status_text(registry)  # the next registry command repairs it and says so
    assert (
        f"INTERRUPTED MOVE: promote v{v1} -> v{v2}: interrupted after the alias move; completed by sotag status" in text
    )
    assert [(e.version, e.state, e.run_status) for e in registry.history()] == [
        (v1, "done", "FINISHED"),
        (v2, "done", "FINISHED"),
    ]
    assert f"promoted over v{v1}" in registry.version(v2).description  # the annotations the crash skipped

    result = rollback(registry)  # before: refused, "the alias was moved outside sotag"
    assert (result.previous, result.version) == (v2, v1)
    assert registry.alias(CHAMPION) == v1


def test_a_crash_between_the_intent_and_the_alias_move_is_abandoned_by_the_next_command(make_version, tracking):
    registry = open_registry(tracking, MODEL_NAME)
    v1 = make_version()
    registry.move_champion(v1, None, "promote", "first")
    v2 = make_version()
    crashing = replace_client(registry, DeadAfter(registry.client, "log_batch"))  # dies after the intent
    with pytest.raises(ComponentFault, match=r"moving @champion to v"):
        crashing.move_champion(v2, v1, "promote", "better")
    assert registry.alias(CHAMPION) == v1
    assert [e.state for e in registry.history()] == ["done", "pending"]
    recovered = registry.recover("rollback")
    assert [(e.version, e.state) for e in recovered] == [(v2, "abandoned")]
    assert "interrupted before the alias move" in recovered[0].recovered
    assert [e.run_status for e in registry.history()] == ["FINISHED", "KILLED"]  # the UI's run table says so
    assert registry.lineage() == [v1]  # an abandoned move is no champion to roll back to
    assert "gate_decision" not in registry.version(v2).tags and "Champion" not in (
        registry.version(v2).description or ""
    )


def test_a_refused_alias_move_abandons_its_intent_at_once(make_version, tracking):
    registry = open_registry(tracking, MODEL_NAME)
    v1 = make_version()
    refusing = replace_client(registry, DiesAfter(registry.client, "create_run", "set_registered_model_alias"))
    with pytest.raises(ComponentFault, match=r"moving @champion to v"):
        refusing.move_champion(v1, None, "promote", "first")
    [event] = registry.history()  # the registry answered: @champion did not move, so nothing is left pending
    assert (event.state, event.run_status) == ("abandoned", "KILLED") and "the alias move failed" in event.recovered
    assert registry.recover("status") == [] and registry.alias(CHAMPION) is None


def test_a_crash_between_the_confirmation_and_the_run_status_is_finished_by_the_next_command(make_version, tracking):
    registry = open_registry(tracking, MODEL_NAME)
    v1 = make_version()
    crashing = replace_client(registry, DiesAfter(registry.client, "set_registered_model_alias", "set_terminated"))
    with pytest.raises(ComponentFault, match="tracking server"):
        crashing.move_champion(v1, None, "promote", "first")
    [event] = registry.history()
    assert (event.state, event.run_status) == ("done", "RUNNING")  # the record is confirmed, its mirror is not
    assert registry.recover("status") == []  # no interrupted move: the alias and the record agree
    [event] = registry.history()
    assert (event.state, event.run_status) == ("done", "FINISHED")


def test_history_written_before_intents_still_reads(registry, make_version):
    v1 = make_version()
    old = {"action": "promote", "version": v1, "previous": None, "at": "2026-01-01T00:00:00.000+00:00",
           "by": "someone", "reason": "first", "metrics": {}}  # fmt: skip
    MlflowClient().set_registered_model_tag(MODEL_NAME, "sotag.history.20260101T000000000000.abcd1234", json.dumps(old))
    assert [(e.version, e.state) for e in registry.history()] == [(v1, "done")]
    assert registry.lineage() == [v1]
    # The next registry command moves it into a run of the history experiment; twice changes nothing more.
    for _ in range(2):
        registry.recover("status")
        assert registry.model().tags == {}
        [event] = registry.history()
        assert (event.version, event.state, event.run_status, event.by) == (v1, "done", "FINISHED", "someone")
        assert event.key == "sotag.history.20260101T000000000000.abcd1234" and event.run_id
    assert registry.lineage() == [v1]
    MlflowClient().set_registered_model_tag(MODEL_NAME, "sotag.history.20260102T000000000000.bad", "{oops")
    with pytest.raises(SotagError, match=r"tag sotag.history.20260102T000000000000.bad: not a sotag history event"):
        registry.history()


def replace_client(registry: Registry, client: object) -> Registry:
    """The same registry (same lock file) through another client."""
    other = Registry.__new__(Registry)
    other.__dict__.update(registry.__dict__)
    other.client = client
    return other
