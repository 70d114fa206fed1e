"""MLflow's scoring server (the app `mlflow models serve` runs), with two faults of its own closed.

`mlflow models serve` answers a JSON body nested deeper than Python's recursion limit (a few kilobytes of
`[[[[...`) with a bare 500: the RecursionError escapes its JSON decoding. Here the same decoding turns it
into MLflow's own 400 (INVALID_PARAMETER_VALUE) naming the problem.

MLflow drops a param the model's signature does not declare (`params: {"treshold": 0.9}`) with only a log
warning (`mlflow.models.utils._enforce_params_schema`), and answers 200 with the default threshold; the model's
`predict` never sees the name, so the check cannot live there. Here the params are checked as the body is split
into data and params, before MLflow's enforcement: an unknown name is a 400 naming it and the known ones, and each
value is checked by `tagger.params` (the gateway's rules: 3.0 is the integer 3, which MLflow's enforcement of a
`long` param would refuse). Everything else is MLflow's app as is:
same routes (/invocations, /ping, /health, /version), same protocol. `sotag serve` runs this module under
uvicorn exactly as `mlflow models serve --env-manager local` runs MLflow's (tests/serving/test_bad_input.py).
"""

from __future__ import annotations

import os

from mlflow.pyfunc import scoring_server

from tagger.errors import InputError
from tagger.params import checked_params

_decode_json_input = scoring_server._decode_json_input


def _decode_bounded(json_input):
    try:
        return _decode_json_input(json_input)
    except RecursionError:
        raise scoring_server.MlflowInvalidInputException(
            "input: the JSON is nested too deeply to parse; send a flat table (dataframe_split, dataframe_records, "
            "inputs or instances)"
        ) from None


_split_data_and_params = scoring_server._split_data_and_params


def _split_checking_params(json_input):
    """MLflow's split of a JSON body into (data, params), with the params checked and made canonical."""
    data, params = _split_data_and_params(json_input)
    try:
        return data, checked_params(params) if params is not None else None
    except InputError as exc:
        raise scoring_server.MlflowInvalidInputException(str(exc)) from None


# The app's request handlers look the decoder and the split up in the module at call time.
scoring_server._decode_json_input = _decode_bounded
scoring_server._split_data_and_params = _split_checking_params

app = scoring_server.init(scoring_server.load_model_with_mlflow_config(os.environ[scoring_server._SERVER_MODEL_PATH]))
