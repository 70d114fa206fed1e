"""Request validation of the pyfunc: every bad input names its field."""

import pandas as pd
import pytest

from sotag.tagger.errors import InputError
from sotag.tagger.pyfunc import MAX_FIELD_CHARS, validate_request

DEFAULTS = (5, 0.3)
OK = pd.DataFrame({"title": ["How to merge dataframes?"], "body": ["<p>x</p>"]})


def test_valid_request_and_defaults():
    titles, bodies, top_k, threshold = validate_request(OK, None, DEFAULTS)
    assert (titles, bodies, top_k, threshold) == (["How to merge dataframes?"], ["<p>x</p>"], 5, 0.3)
    _, bodies, top_k, threshold = validate_request(OK[["title"]], {"top_k": 3.0, "threshold": 0}, DEFAULTS)
    assert bodies == [""] and top_k == 3 and threshold == 0.0


@pytest.mark.parametrize(
    ("frame", "params", "field"),
    [
        ([1, 2], None, "input"),
        (pd.DataFrame(), None, "input"),
        (pd.DataFrame({"body": ["x"]}), None, "title"),
        (pd.DataFrame({"title": [None]}), None, r"title\[0\]"),
        (pd.DataFrame({"title": ["   "]}), None, r"title\[0\]"),
        (pd.DataFrame({"title": ["ok", 5]}), None, r"title\[1\]"),
        (pd.DataFrame({"title": ["ok"], "body": [3.5]}), None, r"body\[0\]"),
        (pd.DataFrame({"title": ["ok"], "body": ["x" * (MAX_FIELD_CHARS + 1)]}), None, r"body\[0\]"),
        (OK, {"top_k": 0}, "top_k"),
        (OK, {"top_k": 51}, "top_k"),
        (OK, {"top_k": "3"}, "top_k"),
        (OK, {"top_k": 2.5}, "top_k"),
        (OK, {"top_k": True}, "top_k"),
        (OK, {"threshold": 1.5}, "threshold"),
        (OK, {"threshold": -0.1}, "threshold"),
        (OK, {"threshold": "high"}, "threshold"),
    ],
)
def test_bad_requests_name_the_field(frame, params, field):
    with pytest.raises(InputError, match=rf"^{field}"):
        validate_request(frame, params, DEFAULTS)


def test_null_body_is_treated_as_empty():
    _, bodies, _, _ = validate_request(pd.DataFrame({"title": ["t"], "body": [None]}), None, DEFAULTS)
    assert bodies == [""]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"top_k": 5, "treshold": 0.9},
            r"^params\.treshold: 'treshold' is not a known param; the known params are top_k, threshold",
        ),
        ({"topk": 5}, r"^params\.topk: .*top_k, threshold"),
        ([("top_k", 5)], r"^params: must be an object"),
        ({"top_k": None}, r"^top_k: must be an integer, not null"),
        ({"threshold": None}, r"^threshold: must be a number, not null"),
        ({"threshold": float("nan")}, r"^threshold: must be a number"),
        ({"threshold": False}, r"^threshold: must be a number"),
    ],
)
def test_unknown_params_and_nulls_are_refused_naming_them(params, message):
    """MLflow drops an undeclared param before `predict`; whoever calls the rules with the params sent (the scoring
    app, in-process callers) gets the refusal (tagger.params, the gateway's rules too)."""
    with pytest.raises(InputError, match=message):
        validate_request(OK, params, DEFAULTS)


@pytest.mark.parametrize(
    ("frame", "params", "message"),
    [
        (OK, {"threshold": True}, "threshold: must be a number, got true"),
        (OK, {"top_k": "3"}, 'top_k: must be an integer, got "3"'),
        (OK, {"top_k": [3]}, "top_k: must be an integer, got [3]"),
        (OK, [("top_k", 5)], "params: must be an object with top_k and/or threshold, got an array"),
        (pd.DataFrame({"title": [5]}), None, "title[0]: must be a string, got a number"),
        (pd.DataFrame({"title": ["t"], "body": [True]}), None, "body[0]: must be a string, got a boolean"),
    ],
)
def test_a_refused_value_is_shown_as_the_client_wrote_it_in_json(frame, params, message):
    """Requests are JSON: `true`, not Python's `True`; a type by its JSON name, not `list` or `int`."""
    with pytest.raises(InputError) as refused:
        validate_request(frame, params, DEFAULTS)
    assert str(refused.value) == message
