"""MLflow's scoring server (the app `mlflow models serve` runs), with one fault of its own closed.

`mlflow models serve` answers a JSON body nested deeper than Python's recursion limit (a few kilobytes of
`[[[[...`) with a bare 500: the RecursionError escapes its JSON decoding. Here the same decoding turns it
into MLflow's own 400 (INVALID_PARAMETER_VALUE) naming the problem. Everything else is MLflow's app as is:
same routes (/invocations, /ping, /health, /version), same protocol. `sotag serve` runs this module under
uvicorn (`--factory serving.scoring_app:create_app`) exactly as `mlflow models serve --env-manager local` runs
MLflow's (tests/serving/test_bad_input.py).
"""

from __future__ import annotations

import os

from mlflow.pyfunc import scoring_server

# MLflow's decoder, kept before `bound_json_nesting` replaces it (tests/serving checks upstream still needs it).
UPSTREAM_DECODE = scoring_server._decode_json_input


def _decode_bounded(json_input):
    try:
        return UPSTREAM_DECODE(json_input)
    except RecursionError:
        raise scoring_server.MlflowInvalidInputException(
            "input: the JSON is nested too deeply to parse; send a flat table (dataframe_split, dataframe_records, "
            "inputs or instances)"
        ) from None


def bound_json_nesting() -> None:
    """Patch MLflow's scoring server (3.17, `mlflow.pyfunc.scoring_server._decode_json_input`) so a JSON body nested
    deeper than Python's recursion limit is MLflow's own 400 instead of a bare 500.

    Upstream behaviour worked around: `_decode_json_input` lets the RecursionError of `json.loads` escape, and the
    app answers 500. The app's handlers look the decoder up in the module at call time, so replacing it there is
    enough. Applied by `create_app`, the entry point `sotag serve` runs; idempotent.
    """
    scoring_server._decode_json_input = _decode_bounded


def create_app():
    """The app `sotag serve` runs under uvicorn: MLflow's scoring server on the model folder MLflow's own variable
    names (as `mlflow models serve` sets it), with JSON nesting bounded."""
    bound_json_nesting()
    return scoring_server.init(
        scoring_server.load_model_with_mlflow_config(os.environ[scoring_server._SERVER_MODEL_PATH])
    )
