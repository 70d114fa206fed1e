"""The server profile for real: PostgreSQL + moto S3 + `mlflow server`, all on 127.0.0.1.

train → register → promote → load `@champion` from the server → same predictions as the
model in memory; the artifacts are in the bucket and the version and alias are in PostgreSQL.
"""

from __future__ import annotations

import json
import time

import mlflow
import pandas as pd
import psycopg2
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sotag.infra.tracking import MODEL_NAME, use_fluent
from sotag.mlruns_config.servers import AuthSettings, MlflowServer, MotoS3, PostgresCluster
from sotag.registry.gate import GateConfig
from sotag.registry.lifecycle import promote
from sotag.registry.store import CHAMPION, open_registry
from sotag.training.config import TrainConfig
from sotag.training.train import train
from tests.processes import REQUEST_TIMEOUT_S, needs_postgres
from tests.support.settings import tracking_settings

pytestmark = pytest.mark.integration
BUCKET = "sotag-artifacts"


@pytest.fixture(scope="module")
def components():
    needs_postgres()
    pg = PostgresCluster().start()
    s3 = MotoS3().start()
    try:
        yield pg, s3
    finally:
        s3.stop()
        pg.stop()


@pytest.fixture(scope="module")
def server(components):
    pg, s3 = components
    destination = s3.create_bucket(BUCKET) + "/mlartifacts"
    env = {**MotoS3.credentials(), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint}
    srv = MlflowServer(pg.create_database("mlflow"), destination, env=env).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_train_register_promote_load_on_postgres_and_s3(server, components, questions_parquet, tmp_path, monkeypatch):
    pg, s3 = components
    # The one setting users change; clients need no S3 credentials (the server proxies artifacts).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    for key in ("SOTAG_ARTIFACT_ROOT", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SOTAG_LOCK_DIR", str(tmp_path / "locks"))
    settings = tracking_settings()
    config = TrainConfig(
        vectorizer="tfidf",
        data=questions_parquet,
        cache_dir=tmp_path / "cache",
        split_date="2018-03-01",
        top_n_tags=8,
        max_features=2000,
        min_df=1,
        C=10.0,
        threshold=0.2,
    )
    start = time.perf_counter()
    outcome = train(config, use_fluent(settings, config.experiment))
    registry = open_registry(settings, MODEL_NAME)
    result = promote(registry, GateConfig(data=questions_parquet, floor=0.5))
    print(f"server profile: train → promote in {time.perf_counter() - start:.1f} s")
    assert result.promoted and registry.alias(CHAMPION) == outcome.version

    served = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    questions = pd.DataFrame(
        {
            "title": ["pandas dataframe merge fails", "react component promise async", "docker volume mount"],
            "body": ["<p>pip install pandas</p>", "", "<p>compose service</p>"],
        }
    )
    got = served.predict(questions, params={"top_k": 3, "threshold": 0.0})
    expected = outcome.result.tagger.suggest(questions["title"].tolist(), questions["body"].tolist(), 3, 0.0)
    assert [row["tags"] for row in got] == [s.tags for s in expected]
    for row, suggestion in zip(got, expected, strict=True):
        assert row["scores"] == pytest.approx(suggestion.scores, abs=1e-6)

    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    for name in ("estimator.joblib", "vectorizer.joblib", "mlb.joblib", "config.json", "MLmodel"):
        assert any(k.endswith(name) for k in keys), f"{name} not in the bucket"
    assert any(k.endswith("evaluation/per_tag_f1.png") for k in keys)

    conn = psycopg2.connect(pg.dsn("mlflow"))
    with conn, conn.cursor() as cur:
        cur.execute("SELECT version FROM model_versions WHERE name = %s", (MODEL_NAME,))
        assert [str(v) for (v,) in cur.fetchall()] == [outcome.version]
        cur.execute("SELECT alias, version FROM registered_model_aliases WHERE name = %s ORDER BY alias", (MODEL_NAME,))
        assert cur.fetchall() == [("challenger", int(outcome.version)), ("champion", int(outcome.version))]
        # The promotion's history: one FINISHED run of the history experiment; the model's own tag table is empty.
        cur.execute(
            "SELECT r.status, t.value FROM runs r JOIN experiments x ON x.experiment_id = r.experiment_id "
            "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'sotag.event' WHERE x.name = %s",
            (f"{MODEL_NAME}-registry-history",),
        )
        [(status, event)] = cur.fetchall()
        assert status == "FINISHED" and json.loads(event)["version"] == outcome.version
        cur.execute("SELECT key FROM registered_model_tags WHERE name = %s", (MODEL_NAME,))
        assert cur.fetchall() == []
    conn.close()


def test_basic_auth_refuses_anonymous_and_accepts_the_admin(components, monkeypatch):
    pg, s3 = components
    s3.create_bucket("sotag-auth")
    auth = AuthSettings("admin", "s3cret-Passw0rd-for-tests", pg.create_database("mlflow_auth"))
    env = {**MotoS3.credentials(), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint}
    srv = MlflowServer(pg.create_database("mlflow_secured"), "s3://sotag-auth", env=env, auth=auth).start()
    try:
        api = f"{srv.url}/api/2.0/mlflow/experiments/search"
        anonymous = requests.post(api, json={"max_results": 10}, timeout=REQUEST_TIMEOUT_S)
        assert anonymous.status_code == 401
        wrong = requests.post(api, json={"max_results": 10}, auth=("admin", "nope"), timeout=REQUEST_TIMEOUT_S)
        assert wrong.status_code == 401
        ok = requests.post(
            api, json={"max_results": 10}, auth=("admin", auth.admin_password), timeout=REQUEST_TIMEOUT_S
        )
        assert ok.status_code == 200

        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        with pytest.raises(MlflowException):
            MlflowClient(srv.url).search_experiments()
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", auth.admin_password)
        client = MlflowClient(srv.url, registry_uri=srv.url)
        experiment_id = client.create_experiment("secured")
        assert client.get_experiment(experiment_id).name == "secured"
    finally:
        srv.stop()


def test_a_reader_account_reads_runs_but_cannot_move_the_champion(components, monkeypatch, tmp_path):
    """default_permission READ: any signed-in account reads; moving @champion needs MANAGE or UPDATE."""
    pg, s3 = components
    s3.create_bucket("sotag-reader")
    auth = AuthSettings("admin", "s3cret-Passw0rd-for-tests", pg.create_database("mlflow_auth_reader"))
    env = {**MotoS3.credentials(), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint}
    srv = MlflowServer(pg.create_database("mlflow_reader"), "s3://sotag-reader", env=env, auth=auth).start()
    admin = ("admin", auth.admin_password)
    try:
        created = requests.post(
            f"{srv.url}/api/2.0/mlflow/users/create",
            json={"username": "reader", "password": "reader-Passw0rd-2026"},
            auth=admin,
            timeout=REQUEST_TIMEOUT_S,
        )
        assert created.status_code == 200, created.text
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", auth.admin_password)
        # Registry URI too: an earlier test may have pointed the process's default registry elsewhere.
        client = MlflowClient(srv.url, registry_uri=srv.url)
        experiment_id = client.create_experiment("reader-check")
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "f1_at_3", 0.5)
        client.create_registered_model(MODEL_NAME)
        for _ in range(2):
            client.create_model_version(MODEL_NAME, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, "1")

        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "reader")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "reader-Passw0rd-2026")
        reader = MlflowClient(srv.url, registry_uri=srv.url)
        assert reader.get_run(run.info.run_id).data.metrics["f1_at_3"] == 0.5
        assert reader.get_model_version_by_alias(MODEL_NAME, CHAMPION).version == "1"
        with pytest.raises(MlflowException) as refused:
            reader.set_registered_model_alias(MODEL_NAME, CHAMPION, "2")
        assert refused.value.get_http_status_code() == 403
        direct = requests.post(
            f"{srv.url}/api/2.0/mlflow/registered-models/alias",
            json={"name": MODEL_NAME, "alias": CHAMPION, "version": "2"},
            auth=("reader", "reader-Passw0rd-2026"),
            timeout=REQUEST_TIMEOUT_S,
        )
        assert direct.status_code == 403

        # Through sotag's registry layer: refused at the alias write, a fault of the tracking server that names it;
        # the alias does not move and the move's intent is recorded as abandoned.
        from sotag.registry.store import Registry
        from sotag.tagger.errors import ComponentFault

        registry = Registry(reader, MODEL_NAME, srv.url, tmp_path / "locks")
        with pytest.raises(ComponentFault, match=r"^tracking server .*Permission denied") as refused:
            registry.move_champion("2", "1", "promote", "a reader tries")
        assert isinstance(refused.value.__cause__, MlflowException)
        assert refused.value.__cause__.get_http_status_code() == 403
        assert reader.get_model_version_by_alias(MODEL_NAME, CHAMPION).version == "1"
        # The intent run was written (the reader may create runs); the refusal abandons it at once.
        [event] = registry.history()
        assert (event.state, event.run_status) == ("abandoned", "KILLED") and "the alias move failed" in event.recovered
        assert registry.recover("status") == []
    finally:
        srv.stop()
