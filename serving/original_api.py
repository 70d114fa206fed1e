"""The original Tagger API's request vocabulary, adapted at the gateway's edge (serving.schemas).

It sent one `text` ("<title>\\n\\n<body>") and `topk`; sotag's core takes (title, body) and `top_k`.
Its request schema declared `topk` and `threshold` optional, coerced numeric strings and ignored fields it did not
know, so its clients send `"threshold": null` (the default), `"threshold": "0.2"`, `"topk": "5"` and fields of their
own: `lax_options` takes them as it did, before the strict rules every endpoint shares (`tagger.params`) check the
values. sotag's own vocabulary (`title`) stays strict: an unknown field there is a 400 naming it.
The model-side rules of a converted original model (raw text, top-k-or-threshold) are its kind's:
`tagger.kinds.legacy`, whose `raw_text` this inverts.
"""

from __future__ import annotations

import re
from typing import Any

from sotag.tagger.text import normalize_newlines

ORIGINAL_FIELDS = ("text", "topk")
LAX_FIELDS = ("topk", "threshold")
# The numeric strings taken: plain decimal digits, no spaces, no exponent (what the OpenAPI document states).
INTEGER_STRING = re.compile(r"[+-]?[0-9]+")
DECIMAL_STRING = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
# The same, bounded as the server bounds them (topk 1..50; threshold by the served model's score kind), as
# ECMA-262 patterns for the OpenAPI document.
TOPK_STRING_PATTERN = r"^\+?0*([1-9]|[1-4][0-9]|50)$"
THRESHOLD_STRING_PATTERNS = {
    "probability": r"^(\+?0*1(\.0+)?|\+?0+(\.[0-9]+)?|-0+(\.0+)?)$",
    "margin": r"^[+-]?0*([0-9]{1,9}(\.[0-9]+)?|1000000000(\.0+)?)$",
}


# A blank line: nothing but whitespace between two line breaks (an HTML form's "  " line is blank to its writer).
BLANK_LINE = re.compile(r"\n[^\S\n]*\n")


def split_text(text: str) -> tuple[str, str]:
    """`text` as (title, body): before and after its first blank line, else all title.

    Line endings are normalised first (tagger.text.normalize_newlines): a CRLF blank line splits the same, and a
    line holding only spaces or tabs is blank too."""
    text = normalize_newlines(text)
    parts = BLANK_LINE.split(text, maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 and parts[0].strip() else (text, "")


def lax_options(request: dict[str, Any], known: frozenset[str] | None = None) -> dict[str, Any]:
    """A request in the original vocabulary as the original API took it: fields it does not know dropped (its
    schema ignored them, pydantic's default, so its clients send extra ones; `known`: the fields there are), a null
    `topk` or `threshold` left out (the model's default), a numeric string its number ("5" -> 5, "0.2" -> 0.2).
    Anything else is left as sent, for the strict rules to refuse naming the field."""
    out = {k: v for k, v in request.items() if known is None or k in known}
    for name in LAX_FIELDS:
        if name not in out:
            continue
        value = out[name]
        if value is None:
            del out[name]
        elif isinstance(value, str):
            if name == "topk" and INTEGER_STRING.fullmatch(value):
                out[name] = int(value)
            elif name == "threshold" and DECIMAL_STRING.fullmatch(value):
                out[name] = float(value)
    return out
