"""serving/scoring_app.bound_json_nesting still works around MLflow: this fails once upstream changed, and then the
patch goes."""

from __future__ import annotations

import json

import pytest


def test_mlflow_scoring_server_still_lets_deep_json_raise_recursion_error():
    from sotag.serving.scoring_app import UPSTREAM_DECODE, _decode_bounded

    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        UPSTREAM_DECODE(deep)  # upstream: escapes, and MLflow's app answers a bare 500
    from mlflow.pyfunc.scoring_server import MlflowInvalidInputException

    with pytest.raises(MlflowInvalidInputException, match="nested too deeply"):
        _decode_bounded(deep)
    assert _decode_bounded(json.dumps({"inputs": [1]})) == {"inputs": [1]}


def test_mlflow_scoring_server_still_drops_unknown_params():
    """Upstream drops a param the signature does not declare (a log line only) and refuses 3.0 for a `long`;
    `check_params` refuses the first naming it and takes the second, as the gateway does."""
    from mlflow.exceptions import MlflowException
    from mlflow.models.utils import _enforce_params_schema

    from sotag.serving.scoring_app import UPSTREAM_SPLIT, _split_checking_params
    from sotag.tagger.pyfunc import signature

    schema = signature(5, 0.2).params
    assert _enforce_params_schema({"top_k": 3, "treshold": 0.9}, schema) == {"top_k": 3, "threshold": 0.2}
    with pytest.raises(Exception, match="top_k"):
        _enforce_params_schema({"top_k": 3.0}, schema)
    body = json.dumps({"dataframe_records": [{"title": "a"}], "params": {"top_k": 5, "treshold": 0.9}})
    assert UPSTREAM_SPLIT(body)[1] == {"top_k": 5, "treshold": 0.9}
    with pytest.raises(MlflowException, match=r"^params.treshold: .*known params are top_k, threshold") as refused:
        _split_checking_params(body)
    assert refused.value.error_code == "BAD_REQUEST"
    body = json.dumps({"dataframe_records": [{"title": "a"}], "params": {"top_k": 3.0}})
    assert _split_checking_params(body)[1] == {"top_k": 3} and isinstance(_split_checking_params(body)[1]["top_k"], int)


def test_mlflow_scoring_server_still_echoes_the_request_in_predict_errors():
    """Upstream prefixes a refusal by `predict` with the request's DataFrame; `answer_without_echo` keeps only the
    model's message."""
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    from sotag.serving.scoring_app import UPSTREAM_INVOCATIONS, _invocations_without_echo

    class Refusing:
        metadata = None

        def predict(self, data: pd.DataFrame, params: dict | None = None) -> list:
            raise MlflowException("threshold: must be between 0 and 1, got 1.5", error_code=INVALID_PARAMETER_VALUE)

    body = json.dumps({"dataframe_records": [{"title": "a secret title"}]})
    with pytest.raises(MlflowException) as upstream:
        UPSTREAM_INVOCATIONS(body, "application/json", Refusing(), None)
    assert "Failed to predict data" in upstream.value.message and "a secret title" in upstream.value.message
    with pytest.raises(MlflowException) as ours:
        _invocations_without_echo(body, "application/json", Refusing(), None)
    # The model names the param bare and with its own error_code: answered as every bad input is.
    assert ours.value.message == "params.threshold: must be between 0 and 1, got 1.5"
    assert ours.value.error_code == "BAD_REQUEST"


def test_mlflow_scoring_server_still_drops_unknown_columns():
    """Upstream's schema enforcement drops a column the signature does not declare (a log line only), so a
    misspelled `bdy` is answered 200 without the body; `ColumnsChecked` refuses it before the model runs."""
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.models.utils import _enforce_schema

    from sotag.serving.scoring_app import ColumnsChecked, column_problem
    from sotag.tagger.pyfunc import signature

    schema = signature(5, 0.2).inputs
    frame = pd.DataFrame({"title": ["a"], "bdy": ["x"]})
    assert list(_enforce_schema(frame, schema).columns) == ["title"]
    assert column_problem(frame, schema) == "bdy: is not a known column; the columns are title, body (optional)"
    assert column_problem({"body": ["x"]}, schema) == "title: column is missing (got columns: body)"
    assert column_problem(pd.DataFrame({"title": ["a"], "body": ["x"]}), schema) is None
    assert column_problem(frame, None) is None and column_problem([["a"]], schema) is None

    class Model:
        metadata = None

        def predict(self, data, params=None):
            return ["scored", params]

    with pytest.raises(MlflowException, match=r"^bdy: is not a known column") as refused:
        ColumnsChecked(Model(), schema).predict(frame)
    assert refused.value.error_code == "BAD_REQUEST"
    assert ColumnsChecked(Model(), schema).predict(frame[["title"]], params={"top_k": 3}) == ["scored", {"top_k": 3}]


def _guarded():
    """/invocations behind sotag's guards, in front of an app that answers 200 to whatever reaches it."""
    from starlette.testclient import TestClient

    from sotag.serving.content_coding import ContentDecoding
    from sotag.serving.scoring_app import MAX_BODY_BYTES, MediaTypeGuard, _mlflow_error

    async def reached(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"reached"})

    app = ContentDecoding(reached, MAX_BODY_BYTES, MAX_BODY_BYTES, error_body=_mlflow_error)
    return TestClient(MediaTypeGuard(app))


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("text/plain", "'text/plain' is not supported"),
        ("application/xml; charset=utf-8", "'application/xml; charset=utf-8' is not supported"),
        ("application/json; charset=latin-1", "charset 'latin-1' is not supported"),
        ("application/json; format=pandas-split", "parameter format of 'application/json; format=pandas-split'"),
        (None, "content-type: missing"),
    ],
)
def test_an_unsupported_content_type_is_a_415_in_mlflows_shape_naming_what_was_sent_and_what_is_taken(
    content_type, named
):
    """MLflow answers these 415 in plain text (a missing type: a 500); a 415 with error_code BAD_REQUEST (a 400's
    code) was sotag's own answer to a content coding it does not take."""
    client = _guarded()
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/invocations", content=b'{"inputs": {"title": ["a"]}}', headers=headers)
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer["error_code"] == "UNSUPPORTED_MEDIA_TYPE", answer
    assert named in answer["message"], answer
    assert "send text/csv, application/json, application/vnd.apache.parquet" in answer["message"], answer
    for accepted in ("application/json", "application/json; charset=utf-8", "text/csv"):
        assert client.post("/invocations", content=b"{}", headers={"content-type": accepted}).text == "reached"
    assert client.get("/ping").text == "reached"


def test_every_refusal_before_mlflow_has_the_error_code_of_its_status():
    from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS
    from mlflow.protos.databricks_pb2 import ErrorCode

    from sotag.serving.scoring_app import ERROR_CODES

    client = _guarded()
    coded = client.post(
        "/invocations", content=b"x", headers={"content-type": "application/json", "content-encoding": "br"}
    )
    assert coded.status_code == 415 and coded.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE", coded.json()
    assert "br" in coded.json()["message"]
    bad = client.post("/invocations", content=b'{"inputs": "\xff"}', headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "BAD_REQUEST", bad.json()
    assert bad.json()["message"].startswith("body is not valid UTF-8 (invalid start byte at byte 12)")
    # MLflow's own codes where it has one for the status; 415 has none in databricks_pb2.
    assert ERROR_CODE_TO_HTTP_STATUS[ERROR_CODES[400]] == 400
    names = list(ErrorCode.keys())
    assert ERROR_CODES[413] in names
    assert ERROR_CODES[415] not in names and 415 not in ERROR_CODE_TO_HTTP_STATUS.values()
