"""The gateway in process (FastAPI TestClient): contract, admin routes, reload, metrics, log."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from sotag.infra.prediction_log import read_predictions
from sotag.infra.tracking import MODEL_NAME
from sotag.serving.app import create_app
from tests.processes import needs_postgres
from tests.support.answers import without_ids
from tests.support.settings import gateway_config

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTION = {"title": "pandas dataframe merge fails", "body": "<p>pip install pandas, list comprehension</p>"}


@pytest.fixture()
def gateway(store, tmp_path):
    config = gateway_config(
        admin_token=TOKEN,
        prediction_log_url=f"sqlite:///{tmp_path / 'predictions.db'}",
        log_text=True,
        max_batch=50,
        reload_poll_s=0,  # these tests swap with /reload; following the alias is tests/serving/test_alias_follow.py
    )
    app = create_app(config)
    with TestClient(app) as client:
        yield client, config
    # leaving the context ran the shutdown: the log is drained


def test_predict_returns_ranked_tags_and_the_model(gateway, store):
    client, _ = gateway
    response = client.post("/predict", json={**QUESTION, "top_k": 3, "threshold": 0.0})
    assert response.status_code == 200
    body = response.json()
    assert body["tags"][0] == "python"
    assert len(body["tags"]) == 3 == len(body["scores"])
    assert body["scores"] == sorted(body["scores"], reverse=True)
    assert body["model"] == {
        "name": MODEL_NAME,
        "version": "1",
        "alias": "champion",
        "arm": "champion",
        "uri": f"models:/{MODEL_NAME}@champion",
    }
    assert len(body["prediction_id"]) == 32
    assert response.headers["X-Sotag-Model-Version"] == "1"


def test_the_original_tagger_api_clients_requests(gateway):
    """What the original Streamlit client sends: {"text": "<title>\n\n<body>", "topk"?, "threshold"?}."""
    client, _ = gateway
    text = f"{QUESTION['title']}\n\n{QUESTION['body']}"
    ours = client.post("/predict", json={**QUESTION, "top_k": 3, "threshold": 0.0}).json()
    for request in ({"text": text}, {"text": text, "topk": 3}, {"text": text, "threshold": 0.0}):
        response = client.post("/predict", json=request)
        assert response.status_code == 200, response.text
        body = response.json()
        assert all(isinstance(t, str) for t in body["tags"]) and body["tags"][0] == "python"
        assert len(body["scores"]) == len(body["tags"]) and body["model"]["version"] == "1"
    # The same question in either vocabulary gets the same answer.
    assert without_ids(client.post("/predict", json={"text": text, "topk": 3, "threshold": 0.0}).json()) == without_ids(
        ours
    )
    assert client.post("/predict", json={"text": "docker compose volume mount"}).json()["tags"][0] == "docker"


def test_explain_breaks_each_logit_into_terms_and_the_intercept(gateway):
    client, _ = gateway
    response = client.post("/explain", json={**QUESTION, "top_k": 3, "threshold": 0.0})
    assert response.status_code == 200
    body = response.json()
    assert body["tags"] == client.post("/predict", json={**QUESTION, "top_k": 3, "threshold": 0.0}).json()["tags"]
    tagger = client.app.state.holder.current.tagger
    features = tagger.model.features.transform(tagger.model.texts([QUESTION["title"]], [QUESTION["body"]]))
    logits = tagger.estimator.decision_function(features)[0]
    for tag, explanation in zip(body["tags"], body["explanations"], strict=True):
        assert explanation["tag"] == tag and explanation["note"] is None
        listed = sum(t["contribution"] for t in explanation["terms"])
        assert abs(explanation["intercept"] + listed + explanation["other_terms"] - explanation["logit"]) < 1e-5
        assert abs(explanation["logit"] - logits[list(tagger.vocabulary).index(tag)]) < 1e-5
        assert abs(1 / (1 + np.exp(-explanation["logit"])) - explanation["score"]) < 1e-5
        for term in explanation["terms"]:
            assert abs(term["value"] * term["weight"] - term["contribution"]) < 1e-5
    # The top tag's strongest term is one of the question's own words.
    top = body["explanations"][0]["terms"][0]
    assert top["contribution"] > 0 and top["term"] in (QUESTION["title"] + " " + QUESTION["body"]).lower()
    assert client.post("/explain", json={"text": QUESTION["title"]}).status_code == 200


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"text": "pandas merge", "title": "pandas merge"}, "title"),
        ({"text": "pandas merge", "body": "x"}, "body"),
        ({"text": "pandas merge", "top_k": 3}, "top_k"),
        ({"title": "pandas merge", "topk": 3}, "topk"),
        ({"text": ""}, "text"),
        ({"text": None}, "text"),
        ({"topk": 3}, "title"),
        ({"text": "pandas merge", "topk": 0}, "topk"),
    ],
)
def test_mixed_or_empty_inputs_are_a_400_naming_the_field(gateway, request_body, field):
    client, _ = gateway
    response = client.post("/predict", json=request_body)
    assert response.status_code == 400
    assert field in [d["field"] for d in response.json()["details"]], response.json()


@pytest.mark.parametrize("route", ["/predict", "/explain", "/predict/batch"])
@pytest.mark.parametrize(
    ("content", "content_type", "problem"),
    [
        (b"{not json", "application/json", "is not valid JSON (Expecting property name enclosed in double quotes at"),
        (b"title=pandas", "text/plain", "is not JSON (content-type text/plain); send a JSON object"),
        (b"[1, 2]", "application/json", "must be a JSON object"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400_naming_the_body(gateway, route, content, content_type, problem):
    client, _ = gateway
    response = client.post(route, content=content, headers={"content-type": content_type})
    assert response.status_code == 400
    (detail,) = response.json()["details"]
    assert detail["field"] == "body" and detail["problem"].startswith(problem), detail
    # /reload takes no body: whatever is sent is ignored, never reported as a field "0" or "1".
    reload = client.post("/reload", content=content, headers={"content-type": content_type, **AUTH})
    assert reload.status_code == 200 and reload.json()["ok"]


@pytest.mark.parametrize("route", ["/predict", "/explain", "/predict/batch"])
@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe",  # what the user sent (FF FE also reads as a UTF-16 byte order mark)
        b"\xff",
        b'{"title": "caf\xe9 au lait"}',  # latin-1 inside a string
        b'{"title": "pandas", "body": "\xc3\x28"}',
        b"\xfe\xff\x00{\x00}\xd8\x00",  # a UTF-16 byte order mark, then an unpaired surrogate
    ],
)
def test_a_body_that_is_not_utf8_is_a_400_naming_the_body_and_the_byte(gateway, route, content):
    """FastAPI answered a JSON body that does not decode with a bare 400 "There was an error parsing the body"
    and no details; the answer is now the shape of any body that is not JSON, naming UTF-8."""
    client, _ = gateway
    response = client.post(route, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    answer = response.json()
    (detail,) = answer["details"]
    assert detail["field"] == "body", answer
    assert detail["problem"].startswith("is not valid UTF-8 ("), answer
    assert "at byte" in detail["problem"] and "send JSON encoded as UTF-8" in detail["problem"], answer
    assert answer["error"] == f"invalid request: body: {detail['problem']}"
    assert client.post(route, json=QUESTION if route != "/predict/batch" else {"questions": [QUESTION]}).is_success


def test_batch_health_model_info_docs(gateway):
    client, _ = gateway
    batch = client.post("/predict/batch", json={"questions": [QUESTION, {"title": "docker compose volume mount"}]})
    assert batch.status_code == 200
    results = batch.json()["results"]
    assert results[0]["tags"][0] == "python" and results[1]["tags"][0] == "docker"
    assert len(results[0]["tags"]) == len(results[0]["scores"])
    mixed = client.post("/predict/batch", json={"questions": [QUESTION, {"text": "docker compose volume mount"}]})
    assert mixed.json()["results"][1]["tags"][0] == "docker"
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/model_info").json()
    assert info["version"] == "1" and info["alias"] == "champion" and info["run_id"]
    assert info["metrics"]["precision_at_1"] > 0.9 and info["data_digest"] and info["trained_at"]
    assert client.get("/docs").status_code == 200
    assert "/predict/batch" in client.get("/openapi.json").json()["paths"]


def test_batch_over_the_limit_and_body_over_the_limit(gateway):
    client, config = gateway
    too_many = client.post("/predict/batch", json={"questions": [QUESTION] * (config.max_batch + 1)})
    assert too_many.status_code == 400 and "limit is 50" in too_many.json()["error"]
    huge = client.post(
        "/predict", content=b"x" * (config.max_body_bytes + 1), headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413 and "limit" in huge.json()["error"]


def test_metrics_count_requests_errors_tags_and_version(gateway):
    client, _ = gateway
    client.post("/predict", json=QUESTION)
    client.post("/predict", json={"title": ""})
    text = client.get("/metrics").text
    assert 'sotag_requests_total{code="200",route="/predict"} 1.0' in text
    assert 'sotag_errors_total{code="400",route="/predict"} 1.0' in text
    assert 'sotag_predicted_tags_total{tag="python"}' in text
    assert 'sotag_model_version{name="stackoverflow-tagger",version="1"} 1.0' in text
    assert "sotag_request_seconds_bucket" in text


def test_admin_routes_need_the_token(gateway):
    client, _ = gateway
    assert client.post("/reload").status_code == 401
    assert client.post("/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/admin/rollback").status_code == 401


def test_admin_routes_disabled_without_a_configured_token(store, tmp_path):
    app = create_app(gateway_config(prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}"))
    with TestClient(app) as client:
        response = client.post("/reload", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403 and "SOTAG_ADMIN_TOKEN" in response.json()["error"]


def test_reload_swaps_to_the_new_champion_and_keeps_the_old_one_on_failure(gateway, store):
    client, _ = gateway
    auth = {"Authorization": f"Bearer {TOKEN}"}
    new_version = store.train_and_promote(C=5.0)
    ok = client.post("/reload", headers=auth)
    assert ok.status_code == 200 and ok.json()["ok"], ok.json()
    assert client.post("/predict", json=QUESTION).json()["model"]["version"] == new_version

    # Tamper with the next champion's estimator: the reload must refuse it and keep serving.
    bad_version = store.train_and_promote(C=2.0)
    _tamper(store, bad_version)
    failed = client.post("/reload", headers=auth)
    assert failed.status_code == 409
    assert "sha256 mismatch" in failed.json()["message"]
    assert client.post("/predict", json=QUESTION).json()["model"]["version"] == new_version
    assert 'sotag_reloads_total{outcome="failed"} 1.0' in client.get("/metrics").text
    # The gate cannot compare against the broken champion either: the next good version replaces it on the floor
    # alone, as the operator's --replace-broken-champion does (without it, promote keeps it: tests/registry).
    store.train_and_promote(C=3.0)


def _tamper(store, version: str) -> None:
    """Alter the estimator file of a registered version inside the artifact store."""
    model_id = MlflowClient().get_model_version(MODEL_NAME, version).source.rsplit("/", 1)[-1]  # models:/m-…
    targets = [p for p in (store.root / "artifacts").rglob("estimator.joblib") if model_id in str(p)]
    assert targets, f"no estimator.joblib found for v{version}"
    for path in targets:
        path.write_bytes(path.read_bytes()[:-8] + b"tampered")


def test_reload_during_requests_fails_none(gateway, store):
    client, _ = gateway
    auth = {"Authorization": f"Bearer {TOKEN}"}
    failures: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            response = client.post("/predict", json=QUESTION)
            if response.status_code != 200:
                failures.append(response.status_code)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    store.train_and_promote(C=8.0)
    assert client.post("/reload", headers=auth).json()["ok"]
    stop.set()
    for t in threads:
        t.join()
    assert failures == []


def test_every_prediction_is_logged_and_none_lost_on_shutdown(store, tmp_path):
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    app = create_app(gateway_config(prediction_log_url=url, log_text=True))
    with TestClient(app) as client:
        for i in range(120):
            client.post("/predict", json={"title": f"pandas question {i}", "body": ""})
        client.post("/predict/batch", json={"questions": [QUESTION] * 30})
    rows = read_predictions(url)
    assert len(rows) == 150
    assert set(rows["route"]) == {"/predict", "/predict/batch"}
    assert rows["model_version"].notna().all() and rows["input_digest"].str.len().eq(64).all()
    assert rows.loc[0, "title"] == "pandas question 0"
    assert isinstance(rows.loc[0, "tags"], list)


def test_serves_a_local_model_directory(store, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(_artifact_dir(store), target)
    app = create_app(gateway_config(model_uri=str(target), prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}"))
    with TestClient(app) as client:
        response = client.post("/predict", json=QUESTION)
    assert response.status_code == 200 and response.json()["tags"][0] == "python"
    assert response.json()["model"]["version"] is None


def _artifact_dir(store) -> Path:
    """The four-file directory of the current champion inside the artifact store."""
    model_id = MlflowClient().get_model_version_by_alias(MODEL_NAME, "champion").source.rsplit("/", 1)[-1]
    config = next(p for p in (store.root / "artifacts").rglob("config.json") if model_id in str(p))
    return config.parent


def test_a_batch_over_the_time_limit_is_a_504(store, tmp_path):
    config = gateway_config(prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}", timeout_s=1e-6)
    with TestClient(create_app(config)) as client:
        response = client.post("/predict/batch", json={"questions": [QUESTION] * 200})
        assert response.status_code == 504 and "longer than" in response.json()["error"]
        assert client.get("/health").status_code == 200


@pytest.mark.integration
def test_prediction_log_on_postgresql():
    from sotag.infra.prediction_log import PredictionLog, PredictionRecord, now
    from sotag.mlruns_config.servers import PostgresCluster

    needs_postgres()
    pg = PostgresCluster().start()
    try:
        url = pg.create_database("predictions")
        plog = PredictionLog(url, log_text=False)
        for i in range(300):
            plog.append(PredictionRecord(now(), MODEL_NAME, "3", "/predict", f"t{i}", "", ["python"], [0.91], 0.4))
        plog.close()
        rows = read_predictions(url)
        assert len(rows) == 300 and rows["title"].isna().all() and rows["model_version"].eq("3").all()
    finally:
        pg.stop()


def test_admin_rollback_moves_the_champion_back_and_says_where(gateway, store):
    client, _ = gateway
    before = str(MlflowClient().get_model_version_by_alias(MODEL_NAME, "champion").version)
    store.train_and_promote()
    response = client.post("/admin/rollback", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.json()
    assert response.json()["rolled_back_to"] == before
    assert str(MlflowClient().get_model_version_by_alias(MODEL_NAME, "champion").version) == before


ORIGINAL_TEXT = f"{QUESTION['title']}\n\n{QUESTION['body']}"


@pytest.mark.parametrize(
    ("lax", "strict"),
    [
        # the field cases (original-api-lax-fields/*.json): each was a 400
        ({"topk": 5, "threshold": None}, {"topk": 5}),
        ({"topk": 5, "threshold": "0.2"}, {"topk": 5, "threshold": 0.2}),
        ({"topk": "5"}, {"topk": 5}),
        # the rest of the kind: what the original API's optional, coercing fields took
        ({"topk": None}, {}),
        ({"topk": None, "threshold": None}, {}),
        ({"topk": "03", "threshold": "0.10"}, {"topk": 3, "threshold": 0.1}),
        ({"topk": "+3", "threshold": "0"}, {"topk": 3, "threshold": 0}),
        ({"topk": "50", "threshold": "0.0"}, {"topk": 50, "threshold": 0.0}),
        ({"topk": "1", "threshold": "1"}, {"topk": 1, "threshold": 1.0}),
        ({"topk": 3.0}, {"topk": 3}),
    ],
)
def test_the_original_apis_lax_fields_are_accepted_as_it_accepted_them(gateway, lax, strict):
    client, _ = gateway
    expected = client.post("/predict", json={"text": ORIGINAL_TEXT, **strict})
    response = client.post("/predict", json={"text": ORIGINAL_TEXT, **lax})
    assert response.status_code == 200 == expected.status_code, response.text
    assert response.json()["tags"] == expected.json()["tags"]
    assert response.json()["tags"] or strict.get("threshold") == 1.0


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        # the original vocabulary: anything that is not a number (or a number's string) is still refused
        ({"text": ORIGINAL_TEXT, "topk": "five"}, "topk"),
        ({"text": ORIGINAL_TEXT, "topk": "5.5"}, "topk"),
        ({"text": ORIGINAL_TEXT, "topk": 5.5}, "topk"),
        ({"text": ORIGINAL_TEXT, "topk": ""}, "topk"),
        ({"text": ORIGINAL_TEXT, "topk": " 5"}, "topk"),
        ({"text": ORIGINAL_TEXT, "topk": "0"}, "topk"),
        ({"text": ORIGINAL_TEXT, "topk": "51"}, "topk"),
        ({"text": ORIGINAL_TEXT, "topk": True}, "topk"),
        ({"text": ORIGINAL_TEXT, "topk": [5]}, "topk"),
        ({"text": ORIGINAL_TEXT, "threshold": "high"}, "threshold"),
        ({"text": ORIGINAL_TEXT, "threshold": "nan"}, "threshold"),
        ({"text": ORIGINAL_TEXT, "threshold": "inf"}, "threshold"),
        ({"text": ORIGINAL_TEXT, "threshold": "1e-1"}, "threshold"),
        ({"text": ORIGINAL_TEXT, "threshold": "-0.1"}, "threshold"),
        ({"text": ORIGINAL_TEXT, "threshold": "1.5"}, "threshold"),
        ({"text": ORIGINAL_TEXT, "threshold": True}, "threshold"),
        ({"text": None}, "text"),
        # sotag's own vocabulary stays strict
        ({**QUESTION, "threshold": None}, "threshold"),
        ({**QUESTION, "threshold": "0.2"}, "threshold"),
        ({**QUESTION, "top_k": "5"}, "top_k"),
        ({**QUESTION, "top_k": None}, "top_k"),
    ],
)
def test_what_neither_vocabulary_accepts_is_a_400_naming_the_field(gateway, request_body, field):
    client, _ = gateway
    response = client.post("/predict", json=request_body)
    assert response.status_code == 400, response.text
    assert field in [d["field"] for d in response.json()["details"]], response.json()


def test_the_openapi_document_describes_the_original_apis_lax_fields(gateway):
    """topk and threshold: null or a numeric string besides the number; with title, threshold is a number only."""
    client, _ = gateway
    schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictRequest"]
    for name, taken, refused in (("topk", "5", "51"), ("threshold", "0.2", "1.5")):
        kinds = {alternative["type"]: alternative for alternative in schema["properties"][name]["anyOf"]}
        assert set(kinds) >= {"null", "string"}, kinds
        pattern = re.compile(kinds["string"]["pattern"])
        assert pattern.search(taken) and not pattern.search(refused) and not pattern.search("five")
    ours = next(branch for branch in schema["oneOf"] if "title" in branch["required"])
    assert ours["properties"]["threshold"] == {"type": "number"}


@pytest.mark.parametrize(
    "extra", [{"lang": "fr"}, {"user": {"id": 7}, "client_version": "1.2"}, {"topk": 3, "model": "tagger-v1"}]
)
def test_the_original_vocabulary_ignores_fields_it_did_not_know_as_the_original_did(gateway, extra):
    """The original Tagger API's schema ignored unknown fields (pydantic's default), so its clients send their own;
    sotag's vocabulary keeps refusing them, naming the field."""
    client, _ = gateway
    plain = client.post("/predict", json={"text": ORIGINAL_TEXT, **{k: v for k, v in extra.items() if k == "topk"}})
    response = client.post("/predict", json={"text": ORIGINAL_TEXT, **extra})
    assert response.status_code == 200 == plain.status_code, response.text
    assert response.json()["tags"] == plain.json()["tags"]
    strict = client.post("/predict", json={**QUESTION, "lang": "fr"})
    assert strict.status_code == 400 and "lang" in [d["field"] for d in strict.json()["details"]]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictRequest"]
    ours = next(branch for branch in schema["oneOf"] if "title" in branch["required"])
    assert ours["additionalProperties"] is False and "additionalProperties" not in schema
    assert set(ours["properties"]) == {"title", "body", "top_k", "threshold"}


OF_A_QUESTION = "is not a known field of a question; its fields are title, body, top_k, threshold"
EITHER = (
    "is not a known field; the body of /predict is either a question {title, body, top_k, threshold} or a question in "
    "the original Tagger API's vocabulary {text, topk, threshold}"
)


@pytest.mark.parametrize(
    ("route", "request_body", "field", "problem"),
    [
        # recognised as sotag's question (title): only its fields, not the original vocabulary's text and topk
        ("/predict", {"title": "a", "tittle": "b"}, "tittle", OF_A_QUESTION),
        ("/explain", {"title": "a", "lang": "fr"}, "lang", OF_A_QUESTION),
        # recognised as the original vocabulary (topk; with text, unknown fields are ignored as the original did)
        (
            "/predict",
            {"topk": 3, "txt": "a"},
            "txt",
            "is not a known field of a question in the original Tagger API's vocabulary; its fields are text, topk, "
            "threshold",
        ),
        # a batch sent to /predict, one question sent to /predict/batch: the route that takes it
        (
            "/predict",
            {"questions": [QUESTION]},
            "questions",
            "is not a known field of the body of /predict; a batch of questions {questions, top_k, threshold} goes "
            "to POST /predict/batch",
        ),
        (
            "/predict/batch",
            {"title": "a"},
            "title",
            "is not a known field of the body of /predict/batch; a question {title, body, top_k, threshold} goes to "
            "POST /predict",
        ),
        # no shape recognised, or two: each shape with its own fields
        ("/predict", {"question": "a"}, "question", EITHER),
        ("/predict", {"title": "a", "topk": 3, "x": 1}, "x", EITHER),
        (
            "/predict/batch",
            {"questions": [QUESTION], "top": 3},
            "top",
            "is not a known field of a batch of questions; its fields are questions, top_k, threshold",
        ),
        (
            "/predict/batch",
            {"questions": [QUESTION, {"title": "a", "tags": ["x"]}]},
            "questions.1.tags",
            "is not a known field of a question; its fields are title, body",
        ),
        (
            "/predict/batch",
            {"questions": [{"text": "a", "topk": 3}]},
            "questions.0.topk",
            "is not a known field of a question in the original Tagger API's vocabulary; its fields are text",
        ),
        (
            "/predict/batch",
            {"questions": [{"q": "a"}]},
            "questions.0.q",
            "is not a known field; an item of questions is either a question {title, body} or a question in the "
            "original Tagger API's vocabulary {text}",
        ),
    ],
)
def test_an_unknown_field_is_named_with_the_fields_of_the_shape_sent(gateway, route, request_body, field, problem):
    """Field case: `{"title": ..., "tittle": ...}` was answered "the known fields are body, text, threshold, title,
    top_k, topk", the fields of two request shapes mixed into one list that neither takes."""
    client, _ = gateway
    response = client.post(route, json=request_body)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert {"field": field, "problem": problem} in answer["details"], answer
    assert f"{field}: {problem}" in answer["error"] and answer["error"].startswith("invalid request: ")


def test_the_request_shapes_have_the_fields_of_the_request_models():
    """The shapes unknown fields are named with (schemas.SHAPES) are the pydantic models' fields, no more, no less."""
    from sotag.serving.schemas import (
        BATCH,
        BATCH_ITEM,
        ORIGINAL_BATCH_ITEM,
        ORIGINAL_QUESTION,
        QUESTION,
        SHAPES,
        BatchRequest,
        PredictRequest,
        QuestionFields,
    )

    assert set(QUESTION.fields) | set(ORIGINAL_QUESTION.fields) == set(PredictRequest.model_fields)
    assert set(BATCH.fields) == set(BatchRequest.model_fields)
    assert set(BATCH_ITEM.fields) | set(ORIGINAL_BATCH_ITEM.fields) == set(QuestionFields.model_fields)
    assert {route for route, _ in SHAPES} == {"/predict", "/explain", "/predict/batch"}


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate", "raw-deflate", "gzip, identity"])
def test_a_compressed_body_gets_the_plain_bodys_answer(gateway, coding):
    import gzip
    import json
    import zlib

    client, _ = gateway
    for route, payload in (("/predict", {**QUESTION, "top_k": 3}), ("/predict/batch", {"questions": [QUESTION] * 2})):
        raw = json.dumps(payload).encode()
        if coding == "raw-deflate":
            squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            body, header = squeezer.compress(raw) + squeezer.flush(), "deflate"
        elif coding == "deflate":
            body, header = zlib.compress(raw), coding
        else:
            body, header = gzip.compress(raw), coding
        sent = client.post(
            route, content=body, headers={"content-type": "application/json", "content-encoding": header}
        )
        plain = client.post(route, json=payload)
        assert sent.status_code == 200 == plain.status_code, sent.text
        assert without_ids(sent.json()) == without_ids(plain.json())


def test_an_unsupported_coding_is_415_a_corrupt_one_400_a_bomb_413(gateway):
    import gzip

    client, _ = gateway
    headers = {"content-type": "application/json"}
    refused = client.post("/predict", content=b"\x1b\x00", headers={**headers, "content-encoding": "br"})
    assert refused.status_code == 415 and refused.headers["accept-encoding"] == "gzip, deflate"
    assert "br" in refused.json()["error"] and refused.json()["details"][0]["field"] == "Content-Encoding"
    corrupt = client.post("/predict", content=b"not gzip at all", headers={**headers, "content-encoding": "gzip"})
    assert corrupt.status_code == 400 and "gzip" in corrupt.json()["error"]
    truncated = gzip.compress(b'{"title": "pandas merge"}')[:-6]
    cut = client.post("/predict", content=truncated, headers={**headers, "content-encoding": "gzip"})
    assert cut.status_code == 400, cut.text
    bomb = gzip.compress(b'{"title": "' + b"a" * (17 * 1024 * 1024) + b'"}')  # 17 MiB of text in ~17 KB
    assert len(bomb) < 100_000
    exploded = client.post("/predict", content=bomb, headers={**headers, "content-encoding": "gzip"})
    assert exploded.status_code == 413 and "decodes to more than" in exploded.json()["error"]
    assert client.get("/health").status_code == 200
