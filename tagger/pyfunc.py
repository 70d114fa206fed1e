"""The MLflow pyfunc: what `mlflow models serve`, the gateway and monitoring all load.

Input: a DataFrame with `title` (string) and optionally `body` (string, HTML or empty).
Params: `top_k` (1-50) and `threshold` (0-1), checked by `tagger.params` (the gateway's rules too).
Output: one record per question, `{"tags": [...], "scores": [...]}`, best first: JSON as it is, so the scoring server
serialises it without a DataFrame round trip (a third of its per-request time).
Bad input raises MlflowException(INVALID_PARAMETER_VALUE); sotag's scoring server (serving/scoring_app.py) answers
it, like every other bad input to /invocations, with HTTP 400 BAD_REQUEST and a message naming the field, never a 500.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import Array

from sotag.tagger.errors import InputError
from sotag.tagger.model import Tagger
from sotag.tagger.params import json_type, request_params
from sotag.tagger.text import normalize_newlines

MODEL_DIR_KEY = "model_dir"
MAX_FIELD_CHARS = 100_000


def signature(top_k: int, threshold: float) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec(DataType.string, "title"), ColSpec(DataType.string, "body", required=False)]),
        outputs=Schema([ColSpec(Array(DataType.string), "tags"), ColSpec(Array(DataType.double), "scores")]),
        params=ParamSchema(
            [ParamSpec("top_k", DataType.long, int(top_k)), ParamSpec("threshold", DataType.double, float(threshold))]
        ),
    )


def _check_text(values: pd.Series, field: str, required: bool) -> list[str]:
    out = []
    for i, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and value != value):
            if required:
                raise InputError(f"{field}[{i}]", "is null; a non-empty string is required")
            value = ""
        if not isinstance(value, str):
            raise InputError(f"{field}[{i}]", f"must be a string, got {json_type(value)}")
        if required and not value.strip():
            raise InputError(f"{field}[{i}]", "is empty; a non-empty string is required")
        if len(value) > MAX_FIELD_CHARS:
            raise InputError(f"{field}[{i}]", f"has {len(value)} characters; the limit is {MAX_FIELD_CHARS}")
        out.append(normalize_newlines(value))
    return out


def validate_request(
    frame: Any, params: dict[str, Any] | None, defaults: tuple[int, float], score_kind: str = "probability"
) -> tuple[list[str], list[str], int, float]:
    """Check a request and return (titles, bodies, top_k, threshold), line endings normalised; raise InputError
    naming the field."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError("input", f"expected a table with columns title, body; got {type(frame).__name__}")
    if frame.empty:
        raise InputError("input", "is empty; send at least one question")
    if "title" not in frame.columns:
        raise InputError("title", f"column is missing (got columns: {', '.join(map(str, frame.columns)) or 'none'})")
    titles = _check_text(frame["title"], "title", required=True)
    bodies = _check_text(frame["body"], "body", required=False) if "body" in frame.columns else [""] * len(titles)
    top_k, threshold = request_params(params, defaults, score_kind)
    return titles, bodies, top_k, threshold


class TaggerPyfunc(mlflow.pyfunc.PythonModel):
    """Wraps `Tagger`; loading verifies the sha256 of every artifact."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.tagger = Tagger.from_directory(context.artifacts[MODEL_DIR_KEY])

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> list[dict[str, list]]:
        config = self.tagger.config
        try:
            titles, bodies, top_k, threshold = validate_request(
                model_input, params, (config.top_k, config.threshold), config.score_kind
            )
        except InputError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        suggestions = self.tagger.suggest(titles, bodies, top_k, threshold)
        return [{"tags": s.tags, "scores": s.scores} for s in suggestions]
