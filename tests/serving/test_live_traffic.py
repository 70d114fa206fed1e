"""Live traffic in one worker (FastAPI TestClient): canary split, shadow, prediction ids and feedback."""

from __future__ import annotations

import json
import threading
import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sotag.infra.prediction_log import FEEDBACK, read_predictions
from sotag.serving.app import create_app
from sotag.serving.traffic import canary_point
from tests.support.prometheus import metric_value
from tests.support.settings import gateway_config

QUESTIONS = [
    {"title": f"question {i}: how do I {verb} a {thing} in {lang}?", "body": f"<p>tried {i} things</p>"}
    for i, (verb, thing, lang) in enumerate(
        (v, t, lang)
        for v in ("merge", "sort", "parse", "reverse", "serialize")
        for t in ("list", "dataframe", "string", "dict", "array", "file", "date", "json")
        for lang in ("python", "javascript", "java", "c#", "php", "sql", "bash", "r", "go", "ruby")
    )
]  # 400 distinct questions


@pytest.fixture(scope="module")
def versions(store) -> tuple[str, str]:
    """v1 @champion (the module store's) and a new @challenger."""
    champion = "1"
    challenger = store.train(C=2.0, top_n_tags=6)
    return champion, challenger


def _client(tmp_path, **overrides):
    config = gateway_config(
        prediction_log_url=f"sqlite:///{tmp_path / 'predictions.db'}", log_text=True, reload_poll_s=0, **overrides
    )
    return TestClient(create_app(config)), config


def test_the_canary_share_holds_within_3_points_over_2000_distinct_questions_and_per_question():
    for percent in (5.0, 20.0, 50.0):
        points = [canary_point(f"question number {i}", f"body {i % 7}") for i in range(2000)]
        share = 100 * sum(p < percent for p in points) / len(points)
        assert abs(share - percent) <= 3.0, (percent, share)
    assert canary_point("a", "b") == canary_point("a", "b") != canary_point("a", "c")


def test_canary_answers_say_which_version_and_the_same_question_gets_the_same_model(versions, tmp_path):
    champion, challenger = versions
    client, _ = _client(tmp_path, canary_percent=30.0)
    with client:
        info = client.get("/model_info").json()
        assert info["version"] == champion
        assert info["traffic"]["challenger"]["version"] == challenger
        assert info["traffic"]["canary_percent"] == 30.0 and info["traffic"]["shadow"] is False
        answered: dict[str, str] = {}
        for q in QUESTIONS:
            response = client.post("/predict", json=q)
            body = response.json()
            assert response.headers["X-Sotag-Model-Version"] == body["model"]["version"]
            expected = challenger if canary_point(q["title"], q["body"]) < 30.0 else champion
            assert body["model"]["version"] == expected
            assert body["model"]["arm"] == ("canary" if expected == challenger else "champion")
            answered[q["title"]] = body["model"]["version"]
        share = sum(v == challenger for v in answered.values()) / len(answered)
        assert 0.2 < share < 0.4, share
        again = client.post("/predict/batch", json={"questions": QUESTIONS[:50]}).json()
        assert [r["model"]["version"] for r in again["results"]] == [answered[q["title"]] for q in QUESTIONS[:50]]
        metrics = client.get("/metrics").text
    assert metric_value(metrics, "sotag_answers_total", version=challenger, arm="canary") == sum(
        v == challenger for v in answered.values()
    ) + sum(answered[q["title"]] == challenger for q in QUESTIONS[:50])
    logged = read_predictions(f"sqlite:///{tmp_path / 'predictions.db'}")
    assert len(logged) == len(QUESTIONS) + 50
    assert set(logged.loc[logged["arm"] == "canary", "model_version"]) == {challenger}


def test_the_shadow_logs_both_answers_and_counts_agreement(versions, tmp_path):
    champion, challenger = versions
    client, _ = _client(tmp_path, shadow=True)
    with client:
        answers = [client.post("/predict", json=q).json() for q in QUESTIONS[:120]]
        assert {a["model"]["version"] for a in answers} == {champion}
        deadline = time.monotonic() + 60
        while client.get("/health").json()["shadow"]["scored"] < 120 and time.monotonic() < deadline:
            time.sleep(0.05)  # the shadow works off the request path: wait for it, not a fixed time
        metrics = client.get("/metrics").text
    # leaving the client shut the app down: the log drained
    logged = read_predictions(f"sqlite:///{tmp_path / 'predictions.db'}")
    assert len(logged) == 120 and logged["prediction_id"].is_unique
    assert set(logged["prediction_id"]) == {a["prediction_id"] for a in answers}
    assert set(logged["shadow_version"]) == {challenger}
    assert logged["shadow_tags"].notna().all() and (logged["shadow_latency_ms"] > 0).all()
    shadow_tags = logged["shadow_tags"].map(json.loads)
    agree = sum(bool(a) and bool(b) and a[0] == b[0] for a, b in zip(logged["tags"], shadow_tags, strict=True))
    agree += sum(not a and not b for a, b in zip(logged["tags"], shadow_tags, strict=True))
    assert metric_value(metrics, "sotag_shadow_compared_total", version=challenger) == 120
    assert metric_value(metrics, "sotag_shadow_top1_agree_total", version=challenger) == agree
    assert metric_value(metrics, "sotag_shadow_jaccard_count", version=challenger) == 120
    assert metric_value(metrics, "sotag_shadow_dropped_total") == 0


def test_a_full_shadow_queue_drops_shadow_work_never_an_answer_or_a_row(versions, tmp_path):
    _, challenger = versions
    client, _ = _client(tmp_path, shadow=True, shadow_queue=1, shadow_batch=1)
    answered, failures = [], []
    with client:

        def send(chunk):
            for q in chunk:
                response = client.post("/predict", json=q)
                (answered if response.status_code == 200 else failures).append(response.status_code)

        threads = [threading.Thread(target=send, args=(QUESTIONS[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        metrics = client.get("/metrics").text
        status = client.get("/health").json()["shadow"]
    dropped = metric_value(metrics, "sotag_shadow_dropped_total")
    assert failures == [] and len(answered) == len(QUESTIONS)
    assert dropped > 0 and dropped == status["dropped"]
    logged = read_predictions(f"sqlite:///{tmp_path / 'predictions.db'}")
    assert len(logged) == len(QUESTIONS)  # every answer logged once, shadowed or not
    assert int(logged["shadow_version"].isna().sum()) == dropped
    compared = metric_value(metrics, "sotag_shadow_compared_total", version=challenger)
    assert compared + dropped <= len(QUESTIONS)


def test_feedback_scores_the_answer_once_per_prediction(versions, tmp_path):
    champion, challenger = versions
    client, config = _client(tmp_path, shadow=True)
    with client:
        answer = client.post("/predict", json=QUESTIONS[0]).json()
        pid, served = answer["prediction_id"], answer["tags"]
        kept = [served[0], "not-suggested"]
        first = client.post("/feedback", json={"prediction_id": pid, "tags": kept})
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["recorded"] and body["model_version"] == champion
        assert body["precision_at_1"] == 1.0
        assert body["recall_at_5"] == pytest.approx(len(set(served[:5]) & set(kept)) / 2)
        repeated = client.post("/feedback", json={"prediction_id": pid, "tags": list(reversed(kept))})
        assert repeated.status_code == 200 and repeated.json()["recorded"] is False
        other = client.post("/feedback", json={"prediction_id": pid, "tags": ["something-else"]})
        assert other.status_code == 409 and other.json()["details"][0]["field"] == "tags"
        unknown = client.post("/feedback", json={"prediction_id": "0" * 32, "tags": ["python"]})
        assert unknown.status_code == 404 and unknown.json()["details"][0]["field"] == "prediction_id"
        bad = client.post("/feedback", json={"prediction_id": "nope", "tags": []})
        assert bad.status_code == 400
        assert {d["field"] for d in bad.json()["details"]} == {"prediction_id", "tags"}
        metrics = client.get("/metrics").text
    assert metric_value(metrics, "sotag_live_precision_at_1_count", version=champion) == 1
    assert metric_value(metrics, "sotag_live_precision_at_1_sum", version=champion) == 1.0
    engine = sa.create_engine(config.prediction_log_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(FEEDBACK)).mappings().all()
    assert len(rows) == 1 and rows[0]["shadow_version"] == challenger
    assert rows[0]["shadow_precision_at_1"] in (0.0, 1.0)


def test_feedback_becomes_labelled_questions_in_the_store_for_the_next_retrain(versions, tmp_path, monkeypatch):
    from sotag.cli import main
    from sotag.data import load_questions
    from sotag.data.store import live_question_id

    client, config = _client(tmp_path)
    kept = {0: ["pandas", "python"], 1: ["javascript"], 2: ["python"]}
    with client:
        ids = [client.post("/predict", json=q).json()["prediction_id"] for q in QUESTIONS[:4]]
        for i, tags in kept.items():
            assert client.post("/feedback", json={"prediction_id": ids[i], "tags": tags}).status_code == 200
    store = f"sqlite:///{tmp_path / 'questions.db'}"
    monkeypatch.setenv("SOTAG_PREDICTION_LOG", config.prediction_log_url)
    assert main(["ingest", "--feedback", "--store", store]) == 0
    frame, _ = load_questions((store,))
    assert len(frame) == 3 and set(frame["source"]) == {"feedback"}
    expected = {live_question_id(QUESTIONS[i]["title"], QUESTIONS[i]["body"]): tags for i, tags in kept.items()}
    assert {int(i): list(t) for i, t in zip(frame["id"], frame["tags"], strict=True)} == expected
    assert (frame["id"] < 0).all()
    assert main(["ingest", "--feedback", "--store", store]) == 0  # again: nothing new, nothing doubled
    assert len(load_questions((store,))[0]) == 3
