"""The prediction params, `top_k` and `threshold`: one set of rules for every endpoint that takes them.

`/invocations` (MLflow's scoring server, `params: {...}`) and the gateway (`top_k`/`threshold` beside the
question) both check values here, so the two accept and refuse the same values:

- `top_k`: an integer in [1, MAX_TOP_K]; an integral float (3.0) is that integer, since JSON has one number type
  and JSON Schema's `integer` includes 3.0. Fractions, booleans, strings and null are refused.
- `threshold`: a finite number (booleans, strings and null refused) in the served model's range
  (`check_threshold`: [0, 1] for probabilities, +-1e9 for margins).
- any other name is refused, naming it and the known ones (MLflow itself drops an unknown param with a log line).

Every refusal is an `InputError` naming the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from sotag.tagger.errors import InputError

PARAMS = ("top_k", "threshold")
MAX_TOP_K = 50
# A margin model's threshold is any real number; the original Tagger API bounded it at +-1e9.
MAX_ABS_THRESHOLD = 1e9


def top_k_value(value: Any, field: str = "top_k") -> int:
    """`value` as top_k (an int in [1, MAX_TOP_K]; 3.0 is 3), or InputError naming `field`."""
    if value is None:
        raise InputError(field, "must be an integer, not null")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(field, f"must be an integer, got {_shown(value)}")
    if isinstance(value, float) and not value.is_integer():
        raise InputError(field, f"must be an integer, got {value!r}")
    if not 1 <= value <= MAX_TOP_K:
        raise InputError(field, f"must be between 1 and {MAX_TOP_K}, got {_shown(value)}")
    return int(value)


def threshold_value(value: Any, field: str = "threshold") -> float:
    """`value` as a threshold (a finite number within +-MAX_ABS_THRESHOLD), or InputError naming `field`; the
    served model's own range is `check_threshold`'s."""
    if value is None:
        raise InputError(field, "must be a number, not null")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(field, f"must be a number, got {_shown(value)}")
    if not -MAX_ABS_THRESHOLD <= value <= MAX_ABS_THRESHOLD:
        raise InputError(field, f"must be between -1e9 and 1e9, got {value}")
    return float(value)


def check_threshold(threshold: float, score_kind: str, field: str = "threshold") -> None:
    """Probabilities take a threshold in [0, 1]; margins any finite number within +-1e9."""
    if score_kind == "margin":
        if not -MAX_ABS_THRESHOLD <= float(threshold) <= MAX_ABS_THRESHOLD:
            raise InputError(field, f"must be between -1e9 and 1e9 for this margin model, got {threshold}")
    elif not 0.0 <= float(threshold) <= 1.0:
        raise InputError(field, f"must be between 0 and 1 (this model scores probabilities), got {threshold}")


def checked_params(params: Any) -> dict[str, int | float]:
    """The params sent (a JSON object, or None for none) with each value checked and canonical (3.0 -> 3);
    InputError for a params that is not an object, an unknown name or a bad value."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InputError("params", f"must be an object with {' and/or '.join(PARAMS)}, got {json_type(params)}")
    unknown = [name for name in params if name not in PARAMS]
    if unknown:
        raise InputError(
            f"params.{unknown[0]}" if unknown[0] else "params",
            f"{unknown[0]!r} is not a known param; the known params are {', '.join(PARAMS)}",
        )
    out: dict[str, int | float] = {}
    if "top_k" in params:
        out["top_k"] = top_k_value(params["top_k"])
    if "threshold" in params:
        out["threshold"] = threshold_value(params["threshold"])
    return out


def request_params(params: Any, defaults: tuple[int, float], score_kind: str) -> tuple[int, float]:
    """(top_k, threshold) of a request: the params sent, checked (`checked_params`, then the model's threshold
    range), the model's defaults for those not sent."""
    checked = checked_params(params)
    top_k = int(checked.get("top_k", defaults[0]))
    threshold = float(checked.get("threshold", defaults[1]))
    check_threshold(threshold, score_kind)
    return top_k, threshold


def _shown(value: Any) -> str:
    """`value` as the client wrote it in JSON (`true`, `null`, `"high"`: the requests are JSON, not Python), cut
    to 40 characters; repr for what JSON cannot spell."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def json_type(value: Any) -> str:
    """The JSON type of `value` in words (`a number`, `an array`), for refusals of a request's value."""
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "a boolean"
    if isinstance(value, int | float | np.number):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple | np.ndarray):
        return "an array"
    return type(value).__name__
