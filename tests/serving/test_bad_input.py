"""Malformed requests against both real servers: `mlflow models serve` and the gateway.

Each must answer 4xx (never 5xx, never a traceback) with a message naming the field, and the
server must still be healthy afterwards.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
import requests

from sotag.mlruns_config.servers import free_port
from tests.processes import REQUEST_TIMEOUT_S, start_server, stop_server, venv_env
from tests.support.answers import without_ids

pytestmark = pytest.mark.integration
LONG = "x" * 100_001
OK = {"title": "pandas dataframe merge", "body": "<p>pip</p>"}


@pytest.fixture(scope="module")
def servers(store) -> Iterator[dict[str, str]]:
    env = venv_env({**os.environ, **store.env}, SOTAG_PREDICTION_LOG=f"sqlite:///{store.root / 'predictions.db'}")
    serve_port, gateway_port = free_port(), free_port()
    cli = [sys.executable, "-m", "sotag"]
    serve = start_server([*cli, "serve", "--port", str(serve_port)], env, f"http://127.0.0.1:{serve_port}/ping")
    gateway = start_server(
        [*cli, "gateway", "--port", str(gateway_port)], env, f"http://127.0.0.1:{gateway_port}/health"
    )
    try:
        yield {"invocations": f"http://127.0.0.1:{serve_port}", "gateway": f"http://127.0.0.1:{gateway_port}"}
    finally:
        stop_server(gateway)
        stop_server(serve)


def records(*rows: dict, **params: object) -> dict:
    payload: dict = {"dataframe_records": list(rows)}
    if params:
        payload["params"] = params
    return payload


# (name, JSON payload or raw bytes, expected status, a word the message must contain)
INVOCATIONS_CASES = [
    ("missing title column", records({"body": "x"}), 400, "title"),
    ("unknown column", records({"title": "a", "bdy": "x"}), 400, "bdy"),
    ("null title", records({"title": None, "body": "x"}), 400, "title"),
    ("empty title", records({"title": "", "body": "x"}), 400, "title"),
    ("blank title", records({"title": "   ", "body": "x"}), 400, "title"),
    ("integer title", records({"title": 5, "body": "x"}), 400, "title"),
    ("list title", records({"title": ["a"], "body": "x"}), 400, "title"),
    ("object title", records({"title": {"a": 1}, "body": "x"}), 400, "title"),
    ("integer body", records({"title": "a", "body": 7}), 400, "body"),
    ("list body", records({"title": "a", "body": ["x"]}), 400, "body"),
    ("body over the limit", records({"title": "a", "body": LONG}), 400, "body"),
    ("title over the limit", records({"title": LONG}), 400, "title"),
    ("second row null title", records(OK, {"title": None}), 400, "title[1]"),
    ("empty records", {"dataframe_records": []}, 400, "title"),
    ("empty object", {}, 400, "dataframe_records"),
    ("two input fields", {"dataframe_records": [OK], "inputs": {"title": ["a"]}}, 400, "dataframe_records"),
    ("split data not a list", {"dataframe_split": {"columns": ["title"], "data": "nope"}}, 400, "dataframe_split"),
    ("split missing title", {"dataframe_split": {"columns": ["body"], "data": [["x"]]}}, 400, "title"),
    ("inputs missing title", {"inputs": {"body": ["x"]}}, 400, "title"),
    # (`instances` with a null title is not here: MLflow's TF-serving parser turns None into the string "None".)
    ("instances missing title", {"instances": [{"body": "x"}]}, 400, "title"),
    ("top_k string", records(OK, top_k="five"), 400, "top_k"),
    ("top_k zero", records(OK, top_k=0), 400, "top_k"),
    ("top_k negative", records(OK, top_k=-3), 400, "top_k"),
    ("top_k over 50", records(OK, top_k=51), 400, "top_k"),
    ("top_k fractional", records(OK, top_k=2.5), 400, "top_k"),
    ("top_k list", records(OK, top_k=[1]), 400, "top_k"),
    ("threshold string", records(OK, threshold="high"), 400, "threshold"),
    ("threshold over 1", records(OK, threshold=1.5), 400, "threshold"),
    ("threshold negative", records(OK, threshold=-0.1), 400, "threshold"),
    ("invalid JSON", b"{not json", 400, "JSON"),
    ("JSON array", [1, 2], 400, "input"),
    ("JSON string", "title", 400, "input"),
]

GATEWAY_CASES = [
    ("missing title", {"body": "x"}, 400, "title"),
    ("null title", {"title": None}, 400, "title"),
    ("empty title", {"title": ""}, 400, "title"),
    ("integer title", {"title": 5}, 400, "title"),
    ("list title", {"title": ["a"]}, 400, "title"),
    ("object title", {"title": {"a": 1}}, 400, "title"),
    ("integer body", {"title": "a", "body": 7}, 400, "body"),
    ("null body", {"title": "a", "body": None}, 400, "body"),
    ("body over the limit", {"title": "a", "body": LONG}, 400, "body"),
    ("title over the limit", {"title": LONG}, 400, "title"),
    ("unknown field", {"title": "a", "tittle": "b"}, 400, "tittle"),
    ("top_k string", {**OK, "top_k": "five"}, 400, "top_k"),
    ("top_k zero", {**OK, "top_k": 0}, 400, "top_k"),
    ("top_k over 50", {**OK, "top_k": 51}, 400, "top_k"),
    ("top_k fractional", {**OK, "top_k": 2.5}, 400, "top_k"),
    ("top_k boolean", {**OK, "top_k": True}, 400, "top_k"),
    ("threshold string", {**OK, "threshold": "high"}, 400, "threshold"),
    ("threshold over 1", {**OK, "threshold": 1.5}, 400, "threshold"),
    ("threshold negative", {**OK, "threshold": -0.1}, 400, "threshold"),
    ("empty object", {}, 400, "title"),
    ("JSON array", [OK], 400, "body"),
    ("invalid JSON", b"{not json", 400, "JSON"),
    ("empty body", b"", 400, "body"),
    ("body not UTF-8", b"\xff\xfe", 400, "not valid UTF-8"),
    ("latin-1 in a value", b'{"title": "caf\xe9"}', 400, "not valid UTF-8"),
]

GATEWAY_BATCH_CASES = [
    ("no questions field", {}, 400, "questions"),
    ("empty questions", {"questions": []}, 400, "questions"),
    ("questions not a list", {"questions": "a"}, 400, "questions"),
    ("second question null title", {"questions": [OK, {"title": None}]}, 400, "questions.1.title"),
    ("batch top_k over 50", {"questions": [OK], "top_k": 99}, 400, "top_k"),
    ("over the batch limit", {"questions": [OK] * 1001}, 400, "questions"),
]


def _post(url: str, payload: object) -> requests.Response:
    if isinstance(payload, bytes):
        return requests.post(url, data=payload, headers={"content-type": "application/json"}, timeout=REQUEST_TIMEOUT_S)
    return requests.post(url, json=payload, timeout=REQUEST_TIMEOUT_S)


def _check(response: requests.Response, status: int, word: str) -> None:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    message = body.get("message") or body.get("error") or ""
    text = message + " " + " ".join(d.get("field", "") for d in body.get("details", []))
    assert word.lower() in text.lower(), f"{word!r} not named in {message[:300]!r}"
    assert "Traceback" not in response.text
    # The error names the problem; it does not send the request's data back (MLflow's "Failed to predict data").
    assert "Failed to predict data" not in message and OK["title"] not in message, message[:300]


@pytest.mark.parametrize(
    ("name", "payload", "status", "word"), INVOCATIONS_CASES, ids=[c[0] for c in INVOCATIONS_CASES]
)
def test_invocations_rejects(servers, name, payload, status, word):
    response = _post(f"{servers['invocations']}/invocations", payload)
    _check(response, status, word)
    # One error_code for every bad input (MLflow's for the input it cannot read), never the vague "Invalid input."
    assert response.json()["error_code"] == "BAD_REQUEST", response.text[:300]
    assert not response.json()["message"].startswith("Invalid input"), response.text[:300]


# Field case: threshold 1.5 answered INVALID_PARAMETER_VALUE, threshold "high" BAD_REQUEST "Invalid input. threshold:
# ...", a misspelled column 200 (MLflow dropped it), a missing one its schema error with the request's data.
INVOCATIONS_MESSAGES = [
    (
        "threshold out of range",
        records(OK, threshold=1.5),
        "params.threshold: must be between 0 and 1 (this model scores probabilities), got 1.5",
    ),
    ("threshold not a number", records(OK, threshold="high"), 'params.threshold: must be a number, got "high"'),
    ("top_k 0", records(OK, top_k=0), "params.top_k: must be between 1 and 50, got 0"),
    (
        "unknown param",
        records(OK, treshold=0.9),
        "params.treshold: 'treshold' is not a known param; the known params are top_k, threshold",
    ),
    ("missing title column", records({"body": "x"}), "title: column is missing (got columns: body)"),
    (
        "unknown column",
        records({**OK, "bdy": "x"}),
        "bdy: is not a known column; the columns are title, body (optional)",
    ),
    (
        "unknown column, inputs",
        {"inputs": {"title": ["a"], "tags": [["x"]]}},
        "tags: is not a known column; the columns are title, body (optional)",
    ),
    ("null title", records({"title": None}), "title[0]: is null; a non-empty string is required"),
    (
        "not JSON",
        b'{"dataframe_records": [{"title": "a secret"',
        "body: is not valid JSON (Expecting ',' delimiter at line 1 column 44)",
    ),
]


@pytest.mark.parametrize(("name", "payload", "message"), INVOCATIONS_MESSAGES, ids=[c[0] for c in INVOCATIONS_MESSAGES])
def test_every_bad_input_to_invocations_is_bad_request_naming_the_field(servers, name, payload, message):
    response = _post(f"{servers['invocations']}/invocations", payload)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error_code"] == "BAD_REQUEST", response.text[:300]
    assert response.json()["message"] == message


@pytest.mark.parametrize(("name", "payload", "status", "word"), GATEWAY_CASES, ids=[c[0] for c in GATEWAY_CASES])
def test_gateway_predict_rejects(servers, name, payload, status, word):
    _check(_post(f"{servers['gateway']}/predict", payload), status, word)


@pytest.mark.parametrize(
    ("name", "payload", "status", "word"), GATEWAY_BATCH_CASES, ids=[c[0] for c in GATEWAY_BATCH_CASES]
)
def test_gateway_batch_rejects(servers, name, payload, status, word):
    _check(_post(f"{servers['gateway']}/predict/batch", payload), status, word)


def test_gateway_body_over_the_request_limit_is_413(servers):
    response = requests.post(
        f"{servers['gateway']}/predict/batch",
        data=b"{" + b" " * (16 * 1024 * 1024 + 10) + b"}",
        headers={"content-type": "application/json"},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 413 and "limit" in response.json()["error"]


def test_all_formats_work_and_servers_are_still_healthy(servers):
    base = servers["invocations"]
    formats = [
        {"dataframe_split": {"columns": ["title", "body"], "data": [[OK["title"], OK["body"]]]}},
        {"dataframe_records": [OK], "params": {"top_k": 2, "threshold": 0.0}},
        {"inputs": {"title": [OK["title"]], "body": [OK["body"]]}},
        {"instances": [OK]},
    ]
    for payload in formats:
        response = requests.post(f"{base}/invocations", json=payload, timeout=REQUEST_TIMEOUT_S)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"][0]["tags"][0] == "python"
    top2 = requests.post(f"{base}/invocations", json=formats[1], timeout=REQUEST_TIMEOUT_S).json()["predictions"][0]
    assert len(top2["tags"]) == 2
    for path in ("/ping", "/health", "/version"):
        assert requests.get(f"{base}{path}", timeout=REQUEST_TIMEOUT_S).status_code == 200
    assert requests.get(f"{servers['gateway']}/health", timeout=REQUEST_TIMEOUT_S).json()["status"] == "ok"
    assert requests.post(f"{servers['gateway']}/predict", json=OK, timeout=REQUEST_TIMEOUT_S).status_code == 200


DEEP = b"[" * 100_000 + b"]" * 100_000
# Beyond the cases above: wrong nesting, duplicate columns, huge params, invalid UTF-8, deep JSON, odd encodings.
MORE_INVOCATIONS_CASES = [
    ("records of lists", {"dataframe_records": [["a", "b"]]}),
    ("records of nulls", {"dataframe_records": [None]}),
    ("records of empty objects", {"dataframe_records": [{}]}),
    ("records nested twice", {"dataframe_records": [[{"title": "a"}]]}),
    ("title a list of objects", records({"title": [{"x": 1}], "body": "b"})),
    ("split duplicate columns", {"dataframe_split": {"columns": ["title", "title"], "data": [["a", "b"]]}}),
    ("split short rows", {"dataframe_split": {"columns": ["title", "body"], "data": [["a"]]}}),
    ("split data an object", {"dataframe_split": {"columns": ["title"], "data": {"title": "a"}}}),
    ("split without columns", {"dataframe_split": {"data": [["a"]]}}),
    ("raw control characters in a string", b'{"dataframe_records": [{"title": "a\x00b\x01"}]}'),
    ("inputs nested lists", {"inputs": {"title": [["a"]]}}),
    ("inputs uneven columns", {"inputs": {"title": ["a", "b"], "body": ["x"]}}),
    ("inputs a bare string", {"inputs": "title"}),
    ("duplicate key, last not a string", b'{"dataframe_records": [{"title": "a", "title": 5}]}'),
    ("two formats at once", {"dataframe_split": {"columns": ["title"], "data": [["a"]]}, "instances": [OK]}),
    ("top_k 10^30", records(OK, top_k=10**30)),
    ("top_k a 100k-digit string", records(OK, top_k="9" * 100_000)),
    ("top_k an object", records(OK, top_k={"value": 3})),
    ("threshold 1e308", records(OK, threshold=1e308)),
    ("threshold Infinity", b'{"dataframe_records": [{"title": "a"}], "params": {"threshold": Infinity}}'),
    ("threshold NaN", b'{"dataframe_records": [{"title": "a"}], "params": {"threshold": NaN}}'),
    ("params a list", {"dataframe_records": [OK], "params": [1, 2]}),
    ("title NaN", b'{"dataframe_records": [{"title": NaN}]}'),
    ("invalid UTF-8 in a value", b'{"dataframe_records": [{"title": "\xff\xfe\xfd"}]}'),
    ("invalid UTF-8 in a key", b'{"dataframe_records": [{"\xc3\x28": "a"}]}'),
    ("latin-1 charset", (b'{"dataframe_records": [{"title": "caf\xe9"}]}', "application/json; charset=latin-1")),
    ("unknown content-type parameter", (b'{"dataframe_records": [{"title": "a"}]}', "application/json; format=x")),
    ("deep JSON", DEEP),
    ("deep JSON inside a value", b'{"dataframe_records": [{"title": ' + DEEP + b"}]}"),
    ("JSON null", b"null"),
    ("JSON number", b"42"),
    ("truncated JSON", b'{"dataframe_records": [{"title": "a"'),
    ("CSV that is not CSV", (b"\x00\x01,\x02\n\xff", "text/csv")),
]
SERVER_PATHS = ("/work/", "site-packages", ".venv", "/usr/lib", 'File "', "Traceback")


@pytest.mark.parametrize(("name", "payload"), MORE_INVOCATIONS_CASES, ids=[c[0] for c in MORE_INVOCATIONS_CASES])
def test_invocations_rejects_malformed_bodies_without_leaking_the_server(servers, name, payload):
    url = f"{servers['invocations']}/invocations"
    if isinstance(payload, tuple):
        data, content_type = payload
        response = requests.post(url, data=data, headers={"content-type": content_type}, timeout=REQUEST_TIMEOUT_S)
    else:
        response = _post(url, payload)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code == 400:
        assert response.json()["error_code"] == "BAD_REQUEST", response.text[:300]
    for leak in (*SERVER_PATHS, os.path.dirname(sys.executable)):
        assert leak not in response.text, f"{leak!r} in {response.text[:400]!r}"
    # MLflow answers a content-type it does not take (415) in plain text; sotag serve in its JSON error shape.
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    assert response.json().get("message"), response.text[:300]
    if response.status_code == 415:
        assert response.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE", response.text[:300]
        assert "content-type" in response.json()["message"] and "application/json" in response.json()["message"]
    assert requests.get(f"{servers['invocations']}/ping", timeout=REQUEST_TIMEOUT_S).status_code == 200


# One table of param values for both endpoints: `/invocations` takes them under `params`, the gateway beside the
# question. (value sent, status both must answer, the word their message must contain). Integral floats are integers
# at both (JSON has one number type; JSON Schema's integer includes 3.0); null is refused in sotag's own vocabulary.
PARAM_VALUES = [
    ("top_k 3", {"top_k": 3}, 200, ""),
    ("top_k 3.0 (field case invocations-unknown-params/top_k-float.json)", {"top_k": 3.0}, 200, ""),
    ("top_k 50.0", {"top_k": 50.0}, 200, ""),
    ("top_k 2.5", {"top_k": 2.5}, 400, "top_k"),
    ("top_k 0.0", {"top_k": 0.0}, 400, "top_k"),
    ("top_k 51.0", {"top_k": 51.0}, 400, "top_k"),
    ("top_k 1e300", {"top_k": 1e300}, 400, "top_k"),
    ("top_k true", {"top_k": True}, 400, "top_k"),
    ("top_k null", {"top_k": None}, 400, "top_k"),
    ("top_k '3'", {"top_k": "3"}, 400, "top_k"),
    ("top_k [3]", {"top_k": [3]}, 400, "top_k"),
    ("threshold 0", {"threshold": 0}, 200, ""),
    ("threshold 1", {"threshold": 1}, 200, ""),
    ("threshold 0.5", {"threshold": 0.5}, 200, ""),
    ("threshold false", {"threshold": False}, 400, "threshold"),
    ("threshold null", {"threshold": None}, 400, "threshold"),
    ("threshold '0.2'", {"threshold": "0.2"}, 400, "threshold"),
    ("threshold 1.0000001", {"threshold": 1.0000001}, 400, "threshold"),
    ("threshold {}", {"threshold": {}}, 400, "threshold"),
]


@pytest.mark.parametrize(("name", "params", "status", "word"), PARAM_VALUES, ids=[c[0] for c in PARAM_VALUES])
def test_invocations_and_the_gateway_accept_and_refuse_the_same_param_values(servers, name, params, status, word):
    invocations = _post(f"{servers['invocations']}/invocations", records(OK, **params))
    gateway = _post(f"{servers['gateway']}/predict", {**OK, **params})
    assert (invocations.status_code, gateway.status_code) == (status, status), (invocations.text, gateway.text)
    if status == 200:
        top_k = int(params.get("top_k", 50))
        assert len(invocations.json()["predictions"][0]["tags"]) <= top_k
        assert invocations.json()["predictions"][0]["tags"] == gateway.json()["tags"]
    else:
        _check(invocations, status, word)
        _check(gateway, status, word)


UNKNOWN_PARAMS = [
    # field case invocations-unknown-params/misspelled-threshold.json: a typo answered 200 with the default threshold
    ("misspelled threshold", {"top_k": 5, "treshold": 0.9}, "treshold"),
    ("original API's topk", {"topk": 5}, "topk"),
    ("camel case", {"topK": 5}, "topK"),
    ("a param of another model", {"temperature": 0.2}, "temperature"),
    ("the right name in another case", {"Threshold": 0.9}, "Threshold"),
    ("an empty name", {"": 1}, "''"),
]


@pytest.mark.parametrize(("name", "params", "unknown"), UNKNOWN_PARAMS, ids=[c[0] for c in UNKNOWN_PARAMS])
def test_an_unknown_param_is_a_400_naming_it_and_the_known_ones(servers, name, params, unknown):
    response = _post(f"{servers['invocations']}/invocations", records(OK, **params))
    assert response.status_code == 400, response.text[:300]
    message = response.json()["message"]
    assert unknown in message and "top_k" in message and "threshold" in message, message
    # The gateway refuses it too, naming it and the fields of a question (`topk` it knows, in the original
    # vocabulary, which a question with a title cannot use).
    gateway = _post(f"{servers['gateway']}/predict", {**OK, **params})
    assert gateway.status_code == 400, gateway.text[:300]
    error = gateway.json()["error"]
    fields = "is not a known field of a question; its fields are title, body, top_k, threshold"
    assert unknown.strip("'") in error and ("topk" in params or fields in error), error


def test_the_correctly_spelled_threshold_still_applies(servers):
    """The field case's control (correct-threshold.json): threshold 0.9 cuts the tags the default 0.2 keeps."""
    url = f"{servers['invocations']}/invocations"
    loose = _post(url, records(OK, top_k=5, threshold=0.0)).json()["predictions"][0]
    strict = _post(url, records(OK, top_k=5, threshold=0.9)).json()["predictions"][0]
    assert len(loose["tags"]) == 5 and len(strict["tags"]) < 5
    assert all(score >= 0.9 for score in strict["scores"])


def test_compressed_bodies_get_the_plain_answer_at_both_servers_and_are_never_echoed(servers):
    """Field case compressed-requests: `Content-Encoding: gzip` (and deflate) bodies are decoded (bounded) at
    /invocations and at the gateway; another coding is a 415 naming it; nothing compressed is sent back."""
    import gzip
    import json
    import zlib

    cases = [
        (f"{servers['invocations']}/invocations", records(OK, top_k=3)),
        (f"{servers['gateway']}/predict", {**OK, "top_k": 3}),
        (f"{servers['gateway']}/predict/batch", {"questions": [OK, OK]}),
    ]
    for url, payload in cases:
        raw = json.dumps(payload).encode()
        plain = requests.post(url, json=payload, timeout=REQUEST_TIMEOUT_S)
        assert plain.status_code == 200, plain.text
        for coding, body in (("gzip", gzip.compress(raw)), ("deflate", zlib.compress(raw))):
            headers = {"content-type": "application/json", "content-encoding": coding}
            sent = requests.post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT_S)
            assert sent.status_code == 200, (url, coding, sent.text)
            assert without_ids(sent.json()) == without_ids(plain.json())
        headers = {"content-type": "application/json", "content-encoding": "br"}
        refused = requests.post(url, data=b"\x1b\x02\x00", headers=headers, timeout=REQUEST_TIMEOUT_S)
        assert refused.status_code == 415 and "br" in refused.text, (url, refused.text)
        if url.endswith("/invocations"):  # MLflow's shape: the error_code of a 415, not a 400's BAD_REQUEST
            assert refused.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE", refused.text
        assert refused.headers.get("accept-encoding") == "gzip, deflate"
        corrupt = gzip.compress(raw)[:-8] + b"\x00" * 8
        broken = requests.post(
            url, data=corrupt, headers={**headers, "content-encoding": "gzip"}, timeout=REQUEST_TIMEOUT_S
        )
        assert broken.status_code == 400 and "gzip" in broken.text, (url, broken.text)
        assert "\\x1f\\x8b" not in broken.text and "\x1f\x8b" not in broken.text  # no echo of the bytes
