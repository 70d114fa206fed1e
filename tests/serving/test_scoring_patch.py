"""serving/scoring_app.bound_json_nesting still works around MLflow: this fails once upstream changed, and then the
patch goes."""

from __future__ import annotations

import json

import pytest


def test_mlflow_scoring_server_still_lets_deep_json_raise_recursion_error():
    from serving.scoring_app import UPSTREAM_DECODE, _decode_bounded

    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        UPSTREAM_DECODE(deep)  # upstream: escapes, and MLflow's app answers a bare 500
    from mlflow.pyfunc.scoring_server import MlflowInvalidInputException

    with pytest.raises(MlflowInvalidInputException, match="nested too deeply"):
        _decode_bounded(deep)
    assert _decode_bounded(json.dumps({"inputs": [1]})) == {"inputs": [1]}
