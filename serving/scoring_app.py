"""MLflow's scoring server (the app `mlflow models serve` runs), with one fault of its own closed.

`mlflow models serve` answers a JSON body nested deeper than Python's recursion limit (a few kilobytes of
`[[[[...`) with a bare 500: the RecursionError escapes its JSON decoding. Here the same decoding turns it
into MLflow's own 400 (INVALID_PARAMETER_VALUE) naming the problem. Everything else is MLflow's app as is:
same routes (/invocations, /ping, /health, /version), same protocol. `sotag serve` runs this module under
uvicorn exactly as `mlflow models serve --env-manager local` runs MLflow's (tests/serving/test_bad_input.py).
"""

from __future__ import annotations

import os

from mlflow.pyfunc import scoring_server

_decode_json_input = scoring_server._decode_json_input


def _decode_bounded(json_input):
    try:
        return _decode_json_input(json_input)
    except RecursionError:
        raise scoring_server.MlflowInvalidInputException(
            "input: the JSON is nested too deeply to parse; send a flat table (dataframe_split, dataframe_records, "
            "inputs or instances)"
        ) from None


# The app's request handlers look the decoder up in the module at call time.
scoring_server._decode_json_input = _decode_bounded

app = scoring_server.init(scoring_server.load_model_with_mlflow_config(os.environ[scoring_server._SERVER_MODEL_PATH]))
