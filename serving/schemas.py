"""The gateway's request and response bodies (pydantic validates types and bounds; limits match the pyfunc's).

A question comes in either vocabulary: sotag's (`title`, `body`, `top_k`) or the original Tagger API's
(`text` = "<title>\\n\\n<body>", `topk`); `threshold` is shared. Which combinations are allowed is
stated in the schema (`oneOf`) and checked by `QuestionFields.question()`, which names the field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

from serving.original_api import ORIGINAL_FIELDS, split_text
from tagger.errors import InputError
from tagger.pyfunc import MAX_ABS_THRESHOLD, MAX_FIELD_CHARS, MAX_TOP_K
from tagger.text import normalize_newlines

OURS, ORIGINAL = ("title", "body", "top_k"), ORIGINAL_FIELDS


def _integral(value: object) -> object:
    """JSON Schema's integer includes 1.0; strings and booleans stay refused (StrictInt)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer as JSON Schema defines it: 3 and 3.0, not 3.5, "3" or true.
Integer = Annotated[StrictInt, BeforeValidator(_integral)]
ONE_OF_TITLE_OR_TEXT = {
    "oneOf": [
        {"required": ["title"], "not": {"anyOf": [{"required": ["text"]}, {"required": ["topk"]}]}},
        {"required": ["text"], "not": {"anyOf": [{"required": [f]} for f in OURS]}},
    ]
}


class QuestionFields(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_OF_TITLE_OR_TEXT)

    # Optional, never null: the default is None, but an explicit null is a 400 (the schema says string).
    title: StrictStr = Field(None, min_length=1, max_length=MAX_FIELD_CHARS, description="the title")
    body: StrictStr = Field(None, max_length=MAX_FIELD_CHARS, description="the body, HTML or plain text")
    text: StrictStr = Field(
        None,
        min_length=1,
        max_length=2 * MAX_FIELD_CHARS + 2,
        description='the original Tagger API\'s input: "<title>\\n\\n<body>" (before the first blank line: the '
        "title; without one, all of it is the title); instead of title and body",
    )

    def question(self, prefix: str = "") -> tuple[str, str]:
        """(title, body) with line endings normalised (tagger.text.normalize_newlines), or InputError naming the
        field when the two vocabularies are mixed or both absent."""
        sent = self.model_fields_set
        for name in ("title", "body", "text"):
            if name in sent and getattr(self, name) is None:
                raise InputError(f"{prefix}{name}", "must be a string, not null")
        if self.text is not None:
            mixed = [f for f in OURS if f in sent and getattr(self, f, None) is not None]
            if mixed:
                raise InputError(
                    f"{prefix}{mixed[0]}", "cannot be combined with text: send {title, body, top_k} or {text, topk}"
                )
            return split_text(self.text)
        if self.title is None:
            raise InputError(f"{prefix}title", "is required (or text, as the original Tagger API sent it)")
        return normalize_newlines(self.title), normalize_newlines(self.body or "")


class Options(BaseModel):
    top_k: Integer = Field(None, ge=1, le=MAX_TOP_K, description="how many tags at most")
    # A strict float: ints are numbers, booleans and strings are not; the bounds show in the schema.
    threshold: float = Field(
        None,
        strict=True,
        ge=-MAX_ABS_THRESHOLD,
        le=MAX_ABS_THRESHOLD,
        description="minimum score of a tag: in [0, 1] for a probability model (/model_info says score_kind), "
        "any number within +-1e9 for a margin model",
    )


class PredictRequest(QuestionFields, Options):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            **ONE_OF_TITLE_OR_TEXT,
            "examples": [
                {
                    "title": "How to merge two pandas dataframes on a column?",
                    "body": "<p>I have two DataFrames and want to join them on <code>id</code>.</p>",
                    "top_k": 5,
                },
                {"text": "How to merge two pandas dataframes on a column?\n\nI want to join them on id.", "topk": 5},
            ],
        },
    )

    topk: Integer = Field(None, ge=1, le=MAX_TOP_K, description="the original Tagger API's top_k")

    def options(self) -> tuple[int | None, float | None]:
        if self.topk is not None and self.title is not None:
            raise InputError("topk", "cannot be combined with title: use top_k, or send text")
        return (self.topk if self.topk is not None else self.top_k), self.threshold


class BatchRequest(Options):
    model_config = ConfigDict(extra="forbid")

    questions: list[QuestionFields] = Field(
        min_length=1, description="the questions ({title, body?} or {text}), at most the configured batch size"
    )


class ModelRef(BaseModel):
    name: str
    version: str | None
    alias: str | None


class Tags(BaseModel):
    tags: list[str] = Field(description="best first")
    scores: list[float] = Field(description="the score of each tag, in the same order")


class PredictResponse(Tags):
    model: ModelRef


class BatchResponse(BaseModel):
    results: list[Tags]
    model: ModelRef


class Term(BaseModel):
    term: str
    value: float = Field(description="the term's feature value in this question (count or tf-idf)")
    weight: float = Field(description="the tag's weight for the term")
    contribution: float = Field(description="value x weight, in logit units")


class TagExplanation(BaseModel):
    tag: str
    score: float
    logit: float
    intercept: float
    terms: list[Term] = Field(description="the largest contributions by magnitude")
    other_terms: float = Field(description="the contributions not listed: intercept + terms + other_terms = logit")
    note: str | None = Field(None, description="why a head's share is not broken down into terms (embeddings)")


class ExplainResponse(PredictResponse):
    explanations: list[TagExplanation]


class ErrorItem(BaseModel):
    field: str
    problem: str


class ErrorResponse(BaseModel):
    error: str
    details: list[ErrorItem] = []


class ReloadResponse(BaseModel):
    ok: bool = Field(description="true: the new version serves now; false: the previous one still does")
    message: str
    previous_version: str | None
    version: str | None
    seconds: float
    rolled_back_to: str | None = Field(None, description="/admin/rollback: the version @champion moved back to")
