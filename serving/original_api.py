"""The original Tagger API's request vocabulary, adapted at the gateway's edge (serving.schemas).

It sent one `text` ("<title>\\n\\n<body>") and `topk`; sotag's core takes (title, body) and `top_k`.
The model-side rules of a converted original model (raw text, top-k-or-threshold) are its kind's:
`tagger.kinds.legacy`, whose `raw_text` this inverts.
"""

from __future__ import annotations

from tagger.text import normalize_newlines

ORIGINAL_FIELDS = ("text", "topk")


def split_text(text: str) -> tuple[str, str]:
    """`text` as (title, body): before and after its first blank line, else all title.

    Line endings are normalised first (tagger.text.normalize_newlines): a CRLF blank line splits the same."""
    text = normalize_newlines(text)
    title, blank, body = text.partition("\n\n")
    return (title, body) if blank and title.strip() else (text, "")
