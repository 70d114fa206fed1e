"""MLflow's scoring server (the app `mlflow models serve` runs), with two faults of its own closed.

Every bad input is a 400 with one error_code, BAD_REQUEST (the code MLflow's scoring server gives the input it
cannot read, `MlflowInvalidInputException`, and the code of a 400 in `mlflow.exceptions`), and a message naming
the field and the problem (`params.threshold: ...`, `bdy: is not a known column; ...`), never the request's data:
upstream answers some bad input BAD_REQUEST ("Invalid input. ...") and the rest INVALID_PARAMETER_VALUE (the
model's refusals, MLflow's schema enforcement). `answer_without_echo` makes every 400 so.

`mlflow models serve` answers a JSON body nested deeper than Python's recursion limit (a few kilobytes of
`[[[[...`) with a bare 500: the RecursionError escapes its JSON decoding. Here the same decoding turns it
into a 400 naming the problem, as it does a body that is not JSON (upstream echoes the body in its message).

MLflow drops a param the model's signature does not declare (`params: {"treshold": 0.9}`) with only a log
warning (`mlflow.models.utils._enforce_params_schema`), and answers 200 with the default threshold; the model's
`predict` never sees the name, so the check cannot live there. Here the params are checked as the body is split
into data and params, before MLflow's enforcement: an unknown name is a 400 naming it and the known ones, and each
value is checked by `tagger.params` (the gateway's rules: 3.0 is the integer 3, which MLflow's enforcement of a
`long` param would refuse). Likewise MLflow drops a column the signature does not declare (`bdy` for `body`: the
question answered without its body): the columns are checked against the signature before the model runs. A refusal
by the model's `predict` (a threshold outside its range, a null title) is answered with its message alone: MLflow
prefixes it with the request's data. A `Content-Type` MLflow does not take
is a 415 in MLflow's JSON error shape naming the type sent and those accepted (MLflow answers it in plain text, a
missing one with a 500), its error_code UNSUPPORTED_MEDIA_TYPE (ERROR_CODES). Everything else is MLflow's app as is:
same routes (/invocations, /ping, /health, /version), same protocol. `sotag serve` runs this module under
uvicorn (`--factory sotag.serving.scoring_app:create_app`) exactly as `mlflow models serve --env-manager local` runs
MLflow's (tests/serving/test_bad_input.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST
from mlflow.pyfunc import scoring_server
from mlflow.types import Schema

from sotag.serving.content_coding import ContentDecoding
from sotag.settings import load_settings
from sotag.tagger.errors import InputError, SotagError
from sotag.tagger.params import PARAMS, checked_params

log = logging.getLogger("sotag.serve")

# MLflow's decoder and split, kept before the patches below replace them (tests/serving checks upstream still
# needs them).
UPSTREAM_DECODE = scoring_server._decode_json_input
UPSTREAM_SPLIT = scoring_server._split_data_and_params


def bad_request(message: str) -> MlflowException:
    """A bad input's answer: a 400 with the one error_code /invocations gives bad input, and `message`."""
    return MlflowException(message, error_code=BAD_REQUEST)


def _decode_bounded(json_input):
    try:
        return UPSTREAM_DECODE(json_input)
    except RecursionError:
        raise scoring_server.MlflowInvalidInputException(
            "input: the JSON is nested too deeply to parse; send a flat table (dataframe_split, dataframe_records, "
            "inputs or instances)"
        ) from None
    except scoring_server.MlflowInvalidInputException as exc:
        cause = exc.__cause__
        if isinstance(cause, json.JSONDecodeError):  # upstream's message ends with the whole body
            raise bad_request(
                f"body: is not valid JSON ({cause.msg} at line {cause.lineno} column {cause.colno})"
            ) from None
        if isinstance(cause, UnicodeDecodeError):
            raise bad_request(f"body: is not valid UTF-8 ({cause.reason} at byte {cause.start})") from None
        raise


def bound_json_nesting() -> None:
    """Patch MLflow's scoring server (3.17, `mlflow.pyfunc.scoring_server._decode_json_input`) so a JSON body nested
    deeper than Python's recursion limit is MLflow's own 400 instead of a bare 500.

    Upstream behaviour worked around: `_decode_json_input` lets the RecursionError of `json.loads` escape, and the
    app answers 500. The app's handlers look the decoder up in the module at call time, so replacing it there is
    enough. Applied by `create_app`, the entry point `sotag serve` runs; idempotent.
    """
    scoring_server._decode_json_input = _decode_bounded


def _split_checking_params(json_input):
    """MLflow's split of a JSON body into (data, params), with the params checked and made canonical (3.0 -> 3)."""
    data, params = UPSTREAM_SPLIT(json_input)
    try:
        return data, checked_params(params) if params is not None else None
    except InputError as exc:
        field = exc.field if exc.field.startswith("params") else f"params.{exc.field}"
        raise bad_request(f"{field}: {exc.problem}") from None


def check_params() -> None:
    """Patch MLflow's scoring server (3.17, `mlflow.pyfunc.scoring_server._split_data_and_params`) so the params of a
    JSON body are checked by `tagger.params` before MLflow's own enforcement.

    Upstream behaviour worked around: `_enforce_params_schema` drops a param the signature does not declare, with a
    log warning only (the request is answered with the default), and refuses 3.0 for a `long` param, which the
    gateway takes. The app's handlers look the split up in the module at call time. Applied by `create_app`;
    idempotent.
    """
    scoring_server._split_data_and_params = _split_checking_params


UPSTREAM_INVOCATIONS = scoring_server.invocations
_ECHO_END = "'. \nError: "
_VAGUE_PREFIX = "Invalid input. "  # what MlflowInvalidInputException puts before every message
# The model's own refusal of a param names it bare (`threshold: must be between 0 and 1 ...`, tagger.pyfunc).
_MODEL_PARAM_FIELDS = tuple(f"{name}:" for name in PARAMS)


def _invocations_without_echo(data, content_type, model, input_schema):
    try:
        return UPSTREAM_INVOCATIONS(data, content_type, ColumnsChecked(model, input_schema), input_schema)
    except MlflowException as exc:
        if exc.get_http_status_code() != 400:
            raise
        if "stack_trace" in exc.json_kwargs:  # for the log, not the caller
            log.warning("/invocations: %s\n%s", exc.message, exc.json_kwargs["stack_trace"])
        raise bad_request(bad_input_message(exc.message)) from None


def bad_input_message(message: str) -> str:
    """Upstream's message of a 400 as /invocations answers it: without the request's data MLflow puts before a
    refusal by `predict`, without "Invalid input. ", a param the model refused named as sent (`params.threshold`)."""
    if message.startswith("Failed to predict data '") and _ECHO_END in message:
        message = message[message.rfind(_ECHO_END) + len(_ECHO_END) :]
    message = message.removeprefix(_VAGUE_PREFIX)
    return f"params.{message}" if message.startswith(_MODEL_PARAM_FIELDS) else message


class ColumnsChecked:
    """The served model as `invocations` calls it: a table's columns checked against the model's signature first.

    Upstream behaviour worked around (MLflow 3.17, `mlflow.models.utils._enforce_schema`, run by the model's
    `predict`): a column the signature does not declare is dropped (a misspelled `bdy` answers 200, the question
    scored without its body), and a missing column is refused with the request's data in the message."""

    def __init__(self, model, input_schema: Schema | None) -> None:
        self.model, self.metadata, self.input_schema = model, model.metadata, input_schema

    def predict(self, data, params=None):
        problem = column_problem(data, self.input_schema)
        if problem is not None:
            raise bad_request(problem)
        return self.model.predict(data, params=params)


def column_problem(data: Any, input_schema: Schema | None) -> str | None:
    """Why the table `data` does not have the model's input columns, naming the column (None: it has them, or
    `data` is not a table or the model declares no columns, for MLflow to judge)."""
    if input_schema is None or not input_schema.has_input_names():
        return None
    if isinstance(data, pd.DataFrame):
        sent = [str(name) for name in data.columns]
    elif isinstance(data, dict):
        sent = [str(name) for name in data]
    else:
        return None
    known = input_schema.input_names()
    if unknown := [name for name in sent if name not in known]:
        columns = ", ".join(spec.name + ("" if spec.required else " (optional)") for spec in input_schema.inputs)
        return f"{unknown[0]}: is not a known column; the columns are {columns}"
    if missing := [spec.name for spec in input_schema.inputs if spec.required and spec.name not in sent]:
        return f"{missing[0]}: column is missing (got columns: {', '.join(sent) or 'none'})"
    return None


def answer_without_echo() -> None:
    """Patch MLflow's scoring server (3.17, `mlflow.pyfunc.scoring_server.invocations`) so every bad input is a 400
    BAD_REQUEST naming the field (`bad_input_message`), a request the model's `predict` refuses (a threshold outside
    the model's range, a null or empty title) answered with the model's message alone, and the columns checked
    (`ColumnsChecked`).

    Upstream behaviour worked around: `invocations` prefixes the MlflowException of `predict` with
    `Failed to predict data '<the request's DataFrame, as pandas prints it>'`, sending the caller's text back in
    the error; its 400s have two error_codes (INVALID_PARAMETER_VALUE from the model and schema enforcement,
    BAD_REQUEST "Invalid input. ..." from parsing). The app's handler looks `invocations` up in the module at call
    time. Applied by `create_app`; idempotent.
    """
    scoring_server.invocations = _invocations_without_echo


class MediaTypeGuard:
    """ASGI middleware: a POST to /invocations whose `Content-Type` MLflow's scoring server does not take is a 415
    in MLflow's JSON error shape, naming the type received and the types accepted.

    Upstream behaviour worked around (MLflow 3.17, `scoring_server.invocations`): such a request is answered 415 in
    plain text (`This predictor only supports the following content types: Types: [...]`), a charset other than
    UTF-8 with a message that does not say which was sent, and a request without a `Content-Type` with a 500 (the
    handler splits `None`). The rules are MLflow's own, checked before it runs: the media type one of
    `scoring_server.CONTENT_TYPES` as spelled there, `charset` (if given) `utf-8`, no other parameter."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/invocations":
            problem = unsupported_media_type(dict(scope.get("headers") or ()).get(b"content-type"))
            if problem is not None:
                body = json.dumps(_mlflow_error(415, problem, "")).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 415, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def unsupported_media_type(header: bytes | None) -> str | None:
    """Why /invocations cannot take a request with this `Content-Type` (None: it can), by MLflow's rules."""
    accepted = f"send {', '.join(scoring_server.CONTENT_TYPES)} (charset utf-8, the default)"
    if not header or not header.strip():
        return f"content-type: missing; {accepted}"
    value = header.decode("latin-1").strip()
    mime, *parameters = (part.strip() for part in value.split(";"))
    named = {key.strip().lower(): v.strip() for key, _, v in (p.partition("=") for p in parameters)}
    if mime not in scoring_server.CONTENT_TYPES:
        return f"content-type: {value!r} is not supported; {accepted}"
    if named.get("charset", "utf-8").lower() != "utf-8":
        return f"content-type: charset {named['charset']!r} is not supported; {accepted}"
    if unknown := sorted(set(named) - {"charset"}):
        return f"content-type: parameter {', '.join(unknown)} of {value!r} is not supported; {accepted}"
    return None


def create_app():
    """The app `sotag serve` runs under uvicorn: MLflow's scoring server on the model folder MLflow's own variable
    names (as `mlflow models serve` sets it), with JSON nesting bounded and the params checked."""
    bound_json_nesting()
    check_params()
    answer_without_echo()
    model_path = load_settings().settings.serve.model_path
    if not model_path:
        raise SotagError(
            f"no model to serve: {scoring_server._SERVER_MODEL_PATH} is not set (start it with sotag serve)"
        )
    app = scoring_server.init(scoring_server.load_model_with_mlflow_config(model_path))
    # MLflow's app reads request bodies as sent: a gzip or deflate body is decoded first (bounded), another coding
    # is a 415 naming it; errors in MLflow's own shape.
    app.add_middleware(
        ContentDecoding, max_body_bytes=MAX_BODY_BYTES, max_decoded_bytes=MAX_BODY_BYTES, error_body=_mlflow_error
    )
    app.add_middleware(MediaTypeGuard)  # outermost: a type MLflow cannot read is refused before any decoding
    return app


# MLflow's scoring server reads any body size; a compressed body is bounded to what the gateway takes plain.
MAX_BODY_BYTES = 16 * 1024 * 1024


# The error_code of each status sotag's layers answer with, in MLflow's error shape. MLflow's codes
# (mlflow.protos.databricks_pb2.ErrorCode) where one means the status: 400 BAD_REQUEST, as every bad input to
# /invocations is answered (`bad_request`);
# 413 MAX_READ_SIZE_EXCEEDED (a body over what is read). databricks_pb2 has no code for 415 (none maps to it in
# mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS): UNSUPPORTED_MEDIA_TYPE, the status's name in RFC 9110, is sotag's.
ERROR_CODES = {400: "BAD_REQUEST", 413: "MAX_READ_SIZE_EXCEEDED", 415: "UNSUPPORTED_MEDIA_TYPE"}


def _mlflow_error(status: int, message: str, coding: str) -> dict[str, str]:
    """MLflow's error shape for a refusal before MLflow's app runs, with the error_code of its status (ERROR_CODES;
    BAD_REQUEST for any other 4xx)."""
    return {"error_code": ERROR_CODES.get(status, "BAD_REQUEST"), "message": message}
