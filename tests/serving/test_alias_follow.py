"""The gateway follows the alias it serves: a promotion is served without a restart or a /reload."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from mlflow.webhooks.delivery import _generate_hmac_signature

from sotag.infra.tracking import MODEL_NAME, use_fluent
from sotag.mlruns_config.servers import free_port
from sotag.serving.app import create_app
from sotag.tagger.errors import InputError
from tests.processes import start_server, stop_server, venv_env
from tests.serving.test_gateway import QUESTION, _tamper
from tests.support.settings import gateway_config

POLL_S = 1.0
CLIENTS = 16
SECRET = "webhook-secret"


def _health(base: str) -> dict:
    return requests.get(f"{base}/health", timeout=10).json()


@pytest.mark.integration
def test_a_promotion_is_served_within_the_poll_interval_with_16_clients_and_no_failed_request(store):
    stop = threading.Event()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = venv_env(dict(os.environ), **store.env, SOTAG_RELOAD_POLL_S=str(POLL_S))
    proc = start_server([sys.executable, "-m", "sotag", "gateway", "--port", str(port)], env, f"{base}/health")
    try:
        health = _health(base)
        old = health["model"]["version"]
        assert health["alias_watch"]["poll_s"] == POLL_S and health["alias_watch"]["polling"]

        failures: list[str] = []
        served: list[tuple[float, str]] = []  # (monotonic time of the answer, version)
        deadline = time.monotonic() + 240

        def client() -> None:
            with requests.Session() as session:
                for _ in range(20_000):  # bounded in count and in time
                    if stop.is_set() or time.monotonic() > deadline:
                        return
                    try:
                        response = session.post(f"{base}/predict", json=QUESTION, timeout=30)
                    except requests.RequestException as exc:
                        failures.append(type(exc).__name__)
                        continue
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    else:
                        served.append((time.monotonic(), response.json()["model"]["version"]))

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        new = store.train_and_promote(C=5.0)
        promoted_at = time.monotonic()
        assert str(MlflowClient().get_model_version_by_alias(MODEL_NAME, "champion").version) == new != old
        while (health := _health(base))["model"]["version"] != new and time.monotonic() < promoted_at + 120:
            time.sleep(0.1)  # polling /health for the swap, not waiting a fixed time
        noticed_after = time.monotonic() - promoted_at
        check, reload = health["alias_watch"]["last_check"], health["last_reload"]
        # Swapped by the watch (the next poll may already say unchanged), not by anyone calling /reload.
        assert check["outcome"] in ("swapped", "unchanged") and check["registry_version"] == new, check
        assert reload["ok"] and f"now serving stackoverflow-tagger v{new}" in reload["message"], reload
        # Within one poll interval, plus the swap itself (load + verify), plus scheduling slack on a busy machine.
        assert noticed_after <= POLL_S + reload["seconds"] + 2.0, (noticed_after, reload)
        swapped_at = time.monotonic()
        while time.monotonic() < swapped_at + 30 and not any(t > swapped_at and v == new for t, v in served):
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(timeout=60)

        assert failures == []
        assert len(served) > CLIENTS and {v for _, v in served} == {old, new}
        assert all(v == new for t, v in served if t > swapped_at)  # no request after the swap got the old model
        metrics = requests.get(f"{base}/metrics", timeout=10).text
        assert f'sotag_model_version{{name="stackoverflow-tagger",version="{new}"}} 1.0' in metrics
        assert 'sotag_alias_checks_total{outcome="swapped"} 1.0' in metrics
        assert re.search(
            rf'sotag_alias_last_check{{outcome="(swapped|unchanged)",registry_version="{new}"}} 1.0', metrics
        )
        assert "sotag_alias_last_check_timestamp_seconds" in metrics
    finally:
        stop.set()
        stop_server(proc)


def _gateway(tmp_path: Path, **overrides: object) -> TestClient:
    config = gateway_config(prediction_log_url=f"sqlite:///{tmp_path / 'predictions.db'}", **overrides)
    return TestClient(create_app(config))


def _train(store, **overrides: object) -> str:
    """A registered version (@challenger), not promoted."""
    from sotag.training.config import TrainConfig
    from sotag.training.train import train
    from tests.serving.conftest import SMALL

    config = TrainConfig(data=store.data, cache_dir=store.root / "cache", **{**SMALL, **overrides})
    return train(config, use_fluent(store.settings, config.experiment)).version


def _wait_for_check(client: TestClient, outcomes: set[str], version: str, timeout_s: float = 120) -> dict:
    """The last check once it is one of `outcomes` for `version` (polling /health; a later poll may replace it)."""
    deadline = time.monotonic() + timeout_s
    check = None
    while time.monotonic() < deadline:
        check = client.get("/health").json()["alias_watch"]["last_check"]
        if check and check["outcome"] in outcomes and check["registry_version"] == version:
            return check
        time.sleep(0.05)
    raise AssertionError(f"no {outcomes} check of v{version} in {timeout_s} s; last: {check}")


def test_a_version_that_fails_verification_is_refused_and_the_old_one_keeps_serving(store, tmp_path):
    with _gateway(tmp_path, reload_poll_s=0.2) as client:
        good = client.post("/predict", json=QUESTION).json()["model"]["version"]
        bad = _train(store, C=2.0)
        _tamper(store, bad)
        # The gate would refuse a version that does not load, so the alias is moved by hand (as in the MLflow UI).
        MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", bad)
        # Refused once, then skipped at every later poll (the next poll may already have replaced the refusal).
        check = _wait_for_check(client, {"refused", "skipped"}, bad)
        assert check["served_version"] == good
        health = client.get("/health").json()
        assert health["model"]["version"] == good and not health["last_reload"]["ok"]
        assert "sha256 mismatch" in health["last_reload"]["message"]
        assert client.post("/predict", json=QUESTION).json()["model"]["version"] == good
        skipped = _wait_for_check(client, {"skipped"}, bad)
        assert f"v{bad} was refused before; still serving v{good}" in skipped["message"]
        # Loaded and refused once, not again at every poll.
        metrics = client.get("/metrics").text
        assert 'sotag_reloads_total{outcome="failed"} 1.0' in metrics
        assert 'sotag_alias_checks_total{outcome="refused"} 1.0' in metrics
        assert f'sotag_alias_last_check{{outcome="skipped",registry_version="{bad}"}} 1.0' in metrics
        fixed = store.train_and_promote(C=3.0)
        _wait_for_check(client, {"swapped", "unchanged"}, fixed)
        assert client.get("/health").json()["model"]["version"] == fixed
        assert client.post("/predict", json=QUESTION).json()["model"]["version"] == fixed


def _signed(body: str, secret: str = SECRET, age_s: int = 0) -> dict[str, str]:
    delivery, stamp = "d-1", str(int(time.time()) - age_s)
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        # MLflow's own signing function: the route checks what MLflow's server sends.
        "X-MLflow-Signature": _generate_hmac_signature(secret, delivery, stamp, body),
    }


def _alias_event(version: str, alias: str = "champion") -> str:
    import json

    data = {"name": "stackoverflow-tagger", "alias": alias, "version": version}
    return json.dumps({"entity": "model_version_alias", "action": "created", "timestamp": "t", "data": data})


def test_a_signed_mlflow_webhook_swaps_at_once_and_unsigned_ones_are_refused(store, tmp_path):
    with _gateway(tmp_path, reload_poll_s=0, webhook_secret=SECRET) as client:
        health = client.get("/health").json()
        assert health["alias_watch"] == {"poll_s": 0, "polling": False, "last_check": None}
        new = _train(store, C=4.0)
        MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", new)
        body = _alias_event(new)
        assert client.post("/webhooks/mlflow", content=body, headers=_signed(body, "wrong")).status_code == 401
        stale = client.post("/webhooks/mlflow", content=body, headers=_signed(body, age_s=3600))
        assert stale.status_code == 401 and "X-MLflow-Timestamp" in stale.json()["error"]
        unsigned = client.post("/webhooks/mlflow", content=body, headers={"Content-Type": "application/json"})
        assert unsigned.status_code == 401 and "X-MLflow-Signature" in unsigned.json()["error"]
        other = _alias_event(new, alias="challenger")
        ignored = client.post("/webhooks/mlflow", content=other, headers=_signed(other))
        assert ignored.status_code == 200 and "not the alias this gateway serves" in ignored.json()["ignored"]
        assert client.post("/predict", json=QUESTION).json()["model"]["version"] != new

        swapped = client.post("/webhooks/mlflow", content=body, headers=_signed(body))
        assert swapped.status_code == 200, swapped.json()
        assert swapped.json()["outcome"] == "swapped" and swapped.json()["trigger"] == "webhook"
        assert client.post("/predict", json=QUESTION).json()["model"]["version"] == new
        assert client.get("/health").json()["alias_watch"]["last_check"]["served_version"] == new


def test_the_webhook_route_is_off_without_a_secret(store, tmp_path):
    with _gateway(tmp_path, reload_poll_s=0) as client:
        body = _alias_event("1")
        response = client.post("/webhooks/mlflow", content=body, headers=_signed(body))
    assert response.status_code == 403 and "SOTAG_WEBHOOK_SECRET" in response.json()["error"]


@pytest.mark.parametrize(("value", "expected"), [(None, 30.0), ("0", 0.0), ("2.5", 2.5)])
def test_the_poll_interval_is_read_at_the_edge(value, expected):
    env = {} if value is None else {"SOTAG_RELOAD_POLL_S": value}
    assert gateway_config(env).reload_poll_s == expected


@pytest.mark.parametrize("value", ["-1", "soon", "nan"])
def test_a_bad_poll_interval_names_the_variable(value):
    with pytest.raises(InputError, match="SOTAG_RELOAD_POLL_S"):
        gateway_config({"SOTAG_RELOAD_POLL_S": value})


@pytest.mark.integration
def test_mlflow_servers_own_webhook_swaps_the_gateway_with_polling_off(store):
    """End to end: the alias moved through `mlflow server`, which signs and delivers the webhook to the gateway."""
    from cryptography.fernet import Fernet

    from sotag.mlruns_config.servers import MlflowServer

    server = MlflowServer(
        backend_store_uri=store.env["MLFLOW_TRACKING_URI"],
        artifacts_destination=store.env["SOTAG_ARTIFACT_ROOT"],
        env={
            # A gateway on 127.0.0.1 over http: MLflow delivers only to public https URLs unless told otherwise.
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        },
    ).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = venv_env(
        dict(os.environ),
        **{**store.env, "MLFLOW_TRACKING_URI": server.url},
        SOTAG_RELOAD_POLL_S="0",  # only the webhook can make it follow
        SOTAG_WEBHOOK_SECRET=SECRET,
    )
    proc = start_server([sys.executable, "-m", "sotag", "gateway", "--port", str(port)], env, f"{base}/health")
    try:
        old = _health(base)["model"]["version"]
        new = _train(store, C=6.0)
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        client.create_webhook(
            name="sotag-gateway",
            url=f"{base}/webhooks/mlflow",
            events=["model_version_alias.created"],
            secret=SECRET,
        )
        client.set_registered_model_alias(MODEL_NAME, "champion", new)
        deadline = time.monotonic() + 60
        while (health := _health(base))["model"]["version"] != new and time.monotonic() < deadline:
            time.sleep(0.2)
        assert health["model"]["version"] == new != old, (health, server.log_text()[-3000:])
        check = health["alias_watch"]["last_check"]
        assert check["trigger"] == "webhook" and check["outcome"] == "swapped", check
        assert requests.post(f"{base}/predict", json=QUESTION, timeout=10).json()["model"]["version"] == new
    finally:
        stop_server(proc)
        server.stop()
