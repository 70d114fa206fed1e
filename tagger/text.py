"""Question text cleaning: one function shared by training, serving and monitoring.

Bump PREPROCESSING_VERSION whenever the output of `clean_question` changes for any input:
it is written into every model's config.json, so a model is always served with the
preprocessing it was trained with. Every version this code can still apply is in
PREPROCESSING_VERSIONS, and `clean_question(..., version=...)` applies the rules of the one asked for,
so a model trained under an older version answers exactly as it did.

Versions:
  "1"  HTML stripped, code blocks reduced to identifiers, whitespace squashed, lower case.
  "2"  as "1", and text in scripts written without spaces (Han, Hiragana, Katakana, Hangul, Thai, Lao,
       Khmer, Myanmar) is set apart from Latin runs by spaces, fullwidth ASCII read as ASCII: the title
       `PythonでJSONファイルを読み込む方法` gives the tokens `python`, `json` as it does with spaces.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

PREPROCESSING_VERSION = "2"
# Every version `clean_question` can still apply, oldest first (models record theirs in config.json).
PREPROCESSING_VERSIONS = ("1", "2")

_PRE_BLOCK = re.compile(r"<pre[^>]*>(.*?)</pre>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_CODE_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_.#+-]*")


# Line breaks other than "\n": CRLF, CR, NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR (also VT, FF).
_LINE_BREAK = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")


def normalize_newlines(text: str) -> str:
    r"""`text` with every line break as "\n": CRLF, CR, VT, FF, U+0085, U+2028 and U+2029 each become one "\n".

    Applied once, where text comes in (request fields, file fields), so a blank line is "\n\n" everywhere.
    """
    return _LINE_BREAK.sub("\n", text) if text else text


# Scripts written without spaces between words. Latin words inside them (product names, APIs) are
# only tokens when set apart: version "2" puts a space around every run of these characters.
_NO_SPACE_SCRIPTS = (
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u1000-\u109f"  # Myanmar
    "\u1100-\u11ff"  # Hangul Jamo
    "\u1780-\u17ff"  # Khmer
    "\u19e0-\u19ff"  # Khmer symbols
    "\u2e80-\u2fdf"  # CJK and Kangxi radicals
    "\u3001-\u303f"  # CJK symbols and punctuation (not the ideographic space)
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\ua960-\ua97f"  # Hangul Jamo extended A
    "\uac00-\ud7ff"  # Hangul syllables, Jamo extended B
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff61-\uffdc"  # halfwidth Katakana and Hangul
    "\U00020000-\U0003134f"  # CJK extensions B-G
)
_NO_SPACE_RUN = re.compile(f"[{_NO_SPACE_SCRIPTS}]+")
# Fullwidth ASCII (U+FF01-FF5E), common in CJK text (`ＰｙｔｈｏｎでＪＳＯＮ`), read as ASCII.
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}


def separate_scripts(text: str) -> str:
    """Runs of scripts written without spaces set apart by spaces; fullwidth ASCII as ASCII (version "2").

    An ASCII text (`str.isascii` reads a flag: no scan) has neither, and is returned as it is."""
    if text.isascii():
        return text
    return _NO_SPACE_RUN.sub(lambda m: f" {m.group(0)} ", text.translate(_FULLWIDTH))


def squash_whitespace(text: str) -> str:
    r"""Runs of whitespace as one space, trimmed: `re.sub(r"\s+", " ", text).strip()`, five times faster.

    `str.split()` and the regex's `\s` test the same Unicode whitespace (`Py_UNICODE_ISSPACE`), so the
    output is identical and PREPROCESSING_VERSION stands (a test holds the two equal).
    """
    return " ".join(text.split())


def _code_tokens(block: str) -> str:
    """Keep identifiers from a code block; they carry language and library names."""
    return " ".join(_CODE_TOKEN.findall(html.unescape(_TAG.sub(" ", block))))


def clean_html(body: str, keep_code: bool = True) -> str:
    """Turn question HTML into plain text.

    Code blocks (`<pre>`) are reduced to their identifiers when `keep_code` is true, or
    dropped. Inline tags are removed and entities unescaped.
    """
    if not body:
        return ""

    def replace(block: str) -> str:
        return " " + _code_tokens(block) + " " if keep_code else " "

    # An ASCII body (most): the regex's blocks found by str.find (_replace_pre_blocks).
    body = _replace_pre_blocks(body, replace) if body.isascii() else _PRE_BLOCK.sub(lambda m: replace(m.group(1)), body)
    return squash_whitespace(html.unescape(_TAG.sub(" ", body)))


def _replace_pre_blocks(body: str, replace: Callable[[str], str]) -> str:
    """`_PRE_BLOCK.sub(lambda m: replace(m.group(1)), body)` for an ASCII `body`, with `str.find` on its lower-cased
    copy (same positions: ASCII lower-casing keeps the length) instead of the case-insensitive regex; three times
    faster on a typical question, and the same output (a test holds the two equal).

    The regex's match at a `<pre` (any case): `[^>]*` up to the first `>` after it, then the shortest run up to the
    first `</pre>`; where either is missing no later `<pre` can match (it needs both after it too)."""
    lower = body.lower()
    parts: list[str] = []
    done = 0
    start = lower.find("<pre")
    while start >= 0:
        opened = lower.find(">", start + 4)
        if opened < 0:
            break
        end = lower.find("</pre>", opened + 1)
        if end < 0:
            break
        parts.append(body[done:start])
        parts.append(replace(body[opened + 1 : end]))
        done = end + 6
        start = lower.find("<pre", done)
    if not parts:
        return body
    parts.append(body[done:])
    return "".join(parts)


def clean_question(
    title: str, body: str, keep_code: bool = True, title_repeat: int = 1, version: str = PREPROCESSING_VERSION
) -> str:
    """Cleaned, lower-cased `title + body`: the unit every vectorizer consumes, under the rules of `version`
    (one of PREPROCESSING_VERSIONS; ValueError otherwise).

    The title is the densest signal in a question; repeating it (`title_repeat`) weights
    its terms up for bag-of-words models without a second vectorizer.
    """
    return question_and_title(title, body, keep_code, title_repeat, version)[0]


def question_and_title(
    title: str, body: str, keep_code: bool = True, title_repeat: int = 1, version: str = PREPROCESSING_VERSION
) -> tuple[str, str]:
    """(`clean_question(title, body, keep_code, title_repeat, version)`, `clean_question(title, "", version=version)`)
    from one cleaning of the title: the question's text and its title's prefix (tagger.questions.titles_and_bodies
    splits the text with it)."""
    if version not in PREPROCESSING_VERSIONS:
        raise ValueError(f"preprocessing version {version!r} is not one of {', '.join(PREPROCESSING_VERSIONS)}")
    title_text = html.unescape(title or "")
    body_text = clean_html(body or "", keep_code)
    if version != "1":
        title_text = separate_scripts(title_text)
        separated = separate_scripts(body_text)
        if separated is not body_text:  # else unchanged (ASCII): clean_html squashed it already
            body_text = squash_whitespace(separated)
    title_text = squash_whitespace(title_text) + " . "
    return (title_text * max(title_repeat, 1) + body_text).lower(), title_text.lower()


def code_share(body: str) -> float:
    """Share of the body's characters that sit inside `<pre>` blocks (a drift descriptor)."""
    if not body:
        return 0.0
    code = sum(len(m.group(1)) for m in _PRE_BLOCK.finditer(body))
    return code / len(body)
