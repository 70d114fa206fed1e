"""The gateway's OpenAPI document, made to say exactly what the server enforces.

FastAPI documents a 422 the gateway never sends and none of the statuses it does send; the bounds that
depend on the served model (`threshold`: [0, 1] for probabilities, +-1e9 for margins) or on the
configuration (batch size) are not in the pydantic models. `apply` rewrites the generated document:
each route lists every status it can answer, with the error body, and the bounds are the live ones.
The document is rebuilt after a reload, since the model's score kind may change.
"""

from __future__ import annotations

from typing import Any

from sotag.serving.original_api import THRESHOLD_STRING_PATTERNS, TOPK_STRING_PATTERN
from sotag.tagger.params import MAX_ABS_THRESHOLD

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
RELOAD_REF = {"$ref": "#/components/schemas/ReloadResponse"}

DESCRIPTIONS = {
    400: "Invalid request: the body is not JSON, a field is missing, of the wrong type or out of bounds (named)",
    401: "No valid bearer token (Authorization: Bearer <token>)",
    403: "Admin routes are disabled: the gateway has no SOTAG_ADMIN_TOKEN",
    404: "Not found: no such job, or no prediction with this prediction_id in the log",
    409: "Refused: a retrain already runs, the registry or the new model could not be used, or feedback for this "
    "prediction was already recorded with other tags",
    413: "The request body is over the configured limit",
    429: "Too many failed admin attempts from this client; retry after the Retry-After seconds",
    500: "Unexpected error; the gateway log has the details",
    503: "Unavailable: the gateway was built without the retrain job (an app not started by `sotag gateway`), or "
    "the prediction log database cannot be asked",
    504: "The batch took longer than the configured time limit",
}

_BODY = (400, 413, 500)
_ADMIN = (401, 403, 429, 500)
# Every status each route answers besides its success status.
STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("/predict", "post"): _BODY,
    ("/explain", "post"): _BODY,
    ("/predict/batch", "post"): (*_BODY, 504),
    ("/health", "get"): (500,),
    ("/model_info", "get"): (500,),
    ("/metrics", "get"): (500,),
    ("/reload", "post"): (*_ADMIN, 409, 413),
    ("/admin/rollback", "post"): (*_ADMIN, 409, 413),
    ("/admin/retrain", "post"): (*_ADMIN, 409, 413, 503),
    ("/admin/jobs/{job_id}", "get"): (*_ADMIN, 404),
    ("/feedback", "post"): (*_BODY, 404, 409, 503),
}


def threshold_bounds(score_kind: str) -> tuple[float, float]:
    return (-MAX_ABS_THRESHOLD, MAX_ABS_THRESHOLD) if score_kind == "margin" else (0.0, 1.0)


def _drop_null_defaults(node: Any) -> None:
    """Optional fields default to None in Python, but null is not a value the API accepts."""
    if isinstance(node, dict):
        if node.get("default", 0) is None:
            del node["default"]
        for value in node.values():
            _drop_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _drop_null_defaults(value)


def _original_lax_fields(schema: dict[str, Any], score_kind: str) -> None:
    """In the original vocabulary (`text`), `topk` and `threshold` may also be null or a numeric string within
    the same bounds, and other fields are ignored (serving.original_api.lax_options); with `title`, `threshold` is a
    number only and no other field is taken."""
    properties = schema["properties"]
    number = properties["threshold"]
    kind = "margin" if score_kind == "margin" else "probability"
    properties["threshold"] = {
        "anyOf": [
            {key: number[key] for key in ("type", "minimum", "maximum")},
            {"type": "string", "pattern": THRESHOLD_STRING_PATTERNS[kind]},
            {"type": "null"},
        ],
        "description": f"{number['description']}; with text (the original Tagger API's vocabulary) also a "
        "numeric string or null (the model's default); with title a number only",
    }
    integer = properties["topk"]
    properties["topk"] = {
        "anyOf": [
            {key: integer[key] for key in ("type", "minimum", "maximum")},
            {"type": "string", "pattern": TOPK_STRING_PATTERN},
            {"type": "null"},
        ],
        "description": f"{integer['description']}: an integer, a numeric string or null (the model's default)",
    }
    # Unknown fields: refused with `title` (sotag's vocabulary), ignored with `text` (as the original API did), so
    # the "no other property" rule moves from the object to the `title` branch, which lists what it allows.
    schema.pop("additionalProperties", None)
    ours = {"title": {}, "body": {}, "top_k": {}, "threshold": {"type": "number"}}
    schema["oneOf"] = [  # new dicts: the branches may be the pydantic model's own json_schema_extra
        {**branch, "properties": ours, "additionalProperties": False} if "title" in branch["required"] else branch
        for branch in schema["oneOf"]
    ]


def apply(document: dict[str, Any], score_kind: str, max_batch: int) -> dict[str, Any]:
    """The document with the live bounds and every status of every route (modified in place, returned)."""
    schemas = document["components"]["schemas"]
    _drop_null_defaults(schemas)
    low, high = threshold_bounds(score_kind)
    for name in ("PredictRequest", "BatchRequest"):
        threshold = schemas[name]["properties"]["threshold"]
        threshold.update(minimum=low, maximum=high)
        kind = "probability" if score_kind != "margin" else "margin"
        threshold["description"] = f"minimum score of a tag, in [{low:g}, {high:g}] (the served model scores {kind})"
    _original_lax_fields(schemas["PredictRequest"], score_kind)
    schemas["BatchRequest"]["properties"]["questions"]["maxItems"] = max_batch
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for (path, method), statuses in STATUSES.items():
        operation = document["paths"][path][method]
        responses = operation["responses"]
        responses.pop("422", None)
        for status in statuses:
            ref = ERROR_REF
            if status == 409 and path == "/reload":
                ref = RELOAD_REF
            elif status == 409 and path == "/admin/rollback":  # refused by the registry, or the reload failed
                ref = {"anyOf": [RELOAD_REF, ERROR_REF]}
            responses[str(status)] = {
                "description": DESCRIPTIONS[status],
                "content": {"application/json": {"schema": ref}},
            }
            if status == 429:
                responses["429"]["headers"] = {
                    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}
                }
        if path in ("/reload", "/admin/rollback"):
            responses["200"]["content"] = {"application/json": {"schema": RELOAD_REF}}
    return document
