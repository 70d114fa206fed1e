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
    from mlflow.models.utils import _enforce_params_schema
    from mlflow.pyfunc.scoring_server import MlflowInvalidInputException

    from sotag.serving.scoring_app import UPSTREAM_SPLIT, _split_checking_params
    from sotag.tagger.pyfunc import signature

    schema = signature(5, 0.2).params
    assert _enforce_params_schema({"top_k": 3, "treshold": 0.9}, schema) == {"top_k": 3, "threshold": 0.2}
    with pytest.raises(Exception, match="top_k"):
        _enforce_params_schema({"top_k": 3.0}, schema)
    body = json.dumps({"dataframe_records": [{"title": "a"}], "params": {"top_k": 5, "treshold": 0.9}})
    assert UPSTREAM_SPLIT(body)[1] == {"top_k": 5, "treshold": 0.9}
    with pytest.raises(MlflowInvalidInputException, match=r"treshold.*known params are top_k, threshold"):
        _split_checking_params(body)
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
    assert ours.value.message == "threshold: must be between 0 and 1, got 1.5"
    assert ours.value.error_code == "INVALID_PARAMETER_VALUE"
