"""The gateway's request and response bodies (pydantic validates types and bounds; limits match the pyfunc's).

A question comes in either vocabulary: sotag's (`title`, `body`, `top_k`) or the original Tagger API's
(`text` = "<title>\\n\\n<body>", `topk`); `threshold` is shared. Which combinations are allowed is
stated in the schema (`oneOf`) and checked by `QuestionFields.question()`, which names the field.
`top_k`, `topk` and `threshold` are checked by `tagger.params`, the rules `/invocations` applies too; in the
original vocabulary (`text`), `topk` and `threshold` may also be null or numeric strings, and fields the original
did not know are ignored, as the original API took them (`serving.original_api.lax_options`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sotag.serving.original_api import ORIGINAL_FIELDS, lax_options, split_text
from sotag.tagger.errors import InputError
from sotag.tagger.params import MAX_ABS_THRESHOLD, MAX_TOP_K, threshold_value, top_k_value
from sotag.tagger.pyfunc import MAX_FIELD_CHARS
from sotag.tagger.text import normalize_newlines

OURS, ORIGINAL = ("title", "body", "top_k"), ORIGINAL_FIELDS


def _shared(check: Callable[[Any], Any]) -> BeforeValidator:
    """`check` (a `tagger.params` rule) as a pydantic validator: its InputError's problem is the field's error."""

    def run(value: Any) -> Any:
        try:
            return check(value)
        except InputError as exc:
            raise PydanticCustomError("invalid_param", "{problem}", {"problem": exc.problem}) from None

    return BeforeValidator(run)


# An integer as JSON Schema defines it (3 and 3.0, not 3.5, "3", true or null) and a finite number (not true,
# "0.2" or null): the rules /invocations applies (tagger.params).
TopK = Annotated[StrictInt, _shared(top_k_value)]
Threshold = Annotated[StrictFloat, _shared(threshold_value)]
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
    top_k: TopK = Field(None, ge=1, le=MAX_TOP_K, description="how many tags at most")
    # The bounds show in the schema; the served model's own range is checked by the route.
    threshold: Threshold = Field(
        None,
        ge=-MAX_ABS_THRESHOLD,
        le=MAX_ABS_THRESHOLD,
        description="minimum score of a tag: in [0, 1] for a probability model (/model_info says score_kind; "
        "calibrated: the probability that the asker would choose the tag), any number within +-1e9 for a margin "
        "model; the version's min_tags best tags are served whatever their score",
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

    topk: TopK = Field(None, ge=1, le=MAX_TOP_K, description="the original Tagger API's top_k")

    @model_validator(mode="before")
    @classmethod
    def _original_lax_fields(cls, data: Any) -> Any:
        """In the original vocabulary, `topk` and `threshold` as the original API took them (null, numeric
        strings) and fields it did not know ignored; sotag's own vocabulary stays strict."""
        return lax_options(data, frozenset(cls.model_fields)) if isinstance(data, dict) and "text" in data else data

    def options(self) -> tuple[int | None, float | None]:
        if self.topk is not None and self.title is not None:
            raise InputError("topk", "cannot be combined with title: use top_k, or send text")
        return (self.topk if self.topk is not None else self.top_k), self.threshold


class BatchRequest(Options):
    model_config = ConfigDict(extra="forbid")

    questions: list[QuestionFields] = Field(
        min_length=1, description="the questions ({title, body?} or {text}), at most the configured batch size"
    )


@dataclass(frozen=True)
class Shape:
    """One shape a request object may take: what it is called in messages, and its fields."""

    name: str
    fields: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name} {{{', '.join(self.fields)}}}"


@dataclass(frozen=True)
class Shapes:
    """The shapes a request object may take at one place (a route's body, an item of a batch), and the shapes of
    another route's body with that route (a batch sent to /predict, a question to /predict/batch).

    An unknown field is named with the fields of the shape the object was recognised as: the one shape owning a
    field the object has that no other shape here has (`text`: the original vocabulary, `questions`: a batch).
    When none or several are recognised, every shape is listed, each with its own fields: a list mixing the fields
    of two shapes would invite a request that neither takes."""

    where: str
    taken: tuple[Shape, ...]
    elsewhere: tuple[tuple[Shape, str], ...] = ()

    def unknown_field(self, sent: Collection[str]) -> str:
        """The problem of an unknown field in an object with fields `sent` (the unknown one included)."""
        every = [*self.taken, *(shape for shape, _ in self.elsewhere)]
        recognised = [shape for shape in every if set(sent) & _own_fields(shape, every)]
        if len(recognised) == 1:
            shape = recognised[0]
            if shape in self.taken:
                return f"is not a known field of {shape.name}; its fields are {', '.join(shape.fields)}"
            route = dict(self.elsewhere)[shape]
            return f"is not a known field of {self.where}; {shape} goes to POST {route}"
        if len(self.taken) == 1:
            return f"is not a known field; {self.where} is {self.taken[0]}"
        return f"is not a known field; {self.where} is either {' or '.join(map(str, self.taken))}"


def _own_fields(shape: Shape, shapes: Collection[Shape]) -> set[str]:
    """`shape`'s fields that no other of `shapes` has."""
    return set(shape.fields).difference(*(other.fields for other in shapes if other is not shape))


QUESTION = Shape("a question", (*OURS, "threshold"))
ORIGINAL_QUESTION = Shape("a question in the original Tagger API's vocabulary", (*ORIGINAL, "threshold"))
BATCH = Shape("a batch of questions", ("questions", "top_k", "threshold"))
BATCH_ITEM = Shape("a question", ("title", "body"))
ORIGINAL_BATCH_ITEM = Shape("a question in the original Tagger API's vocabulary", ("text",))
# Keyed by route and the path to the object in its body (list indices left out): tests/serving checks that the
# shapes' fields are the pydantic models' own.
SHAPES: dict[tuple[str, tuple[str, ...]], Shapes] = {
    ("/predict", ()): Shapes("the body of /predict", (QUESTION, ORIGINAL_QUESTION), ((BATCH, "/predict/batch"),)),
    ("/explain", ()): Shapes("the body of /explain", (QUESTION, ORIGINAL_QUESTION)),
    ("/predict/batch", ()): Shapes(
        "the body of /predict/batch", (BATCH,), ((QUESTION, "/predict"), (ORIGINAL_QUESTION, "/predict"))
    ),
    ("/predict/batch", ("questions",)): Shapes("an item of questions", (BATCH_ITEM, ORIGINAL_BATCH_ITEM)),
}


class ModelRef(BaseModel):
    name: str
    version: str | None = Field(description="the registry version that answered; null for a run or a folder")
    alias: str | None = Field(description="the registry alias the model was loaded through; null when pinned")
    arm: Literal["champion", "canary", "pinned"] = Field(
        description="champion: the alias the gateway follows answered; canary: @challenger answered (a canary "
        "share); pinned: the gateway serves a model it does not follow through an alias (a version, latest, a "
        "stage, a run or a folder: see uri)"
    )
    uri: str = Field(
        description="the model URI it was loaded from; for an alias, latest or a stage, version is the one it named "
        "when loaded"
    )


class Tags(BaseModel):
    tags: list[str] = Field(description="best first")
    scores: list[float] = Field(description="the score of each tag, in the same order")


PREDICTION_ID = Field(
    description="this answer's id: POST it to /feedback with the tags the asker kept", pattern=r"^[0-9a-f]{32}$"
)


class PredictResponse(Tags):
    model: ModelRef
    prediction_id: str = PREDICTION_ID


class BatchResult(Tags):
    prediction_id: str = PREDICTION_ID
    model: ModelRef = Field(description="the model that answered this question (canary answers differ)")


class BatchResponse(BaseModel):
    results: list[BatchResult]
    model: ModelRef = Field(description="the model the gateway serves (champion, or pinned)")


TAG = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=100)]


class FeedbackRequest(BaseModel):
    """The tags the asker finally kept for an answer (one feedback per prediction_id)."""

    model_config = ConfigDict(extra="forbid")
    prediction_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="the answer's prediction_id")
    tags: list[TAG] = Field(min_length=1, max_length=20, description="the tags the question finally carries")


class FeedbackResponse(BaseModel):
    prediction_id: str
    recorded: bool = Field(description="false: this feedback was already recorded (nothing changed)")
    model_version: str | None = Field(description="the version that answered")
    precision_at_1: float
    recall_at_5: float


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


class ExplainResponse(Tags):
    """Not logged, so no prediction_id: an explanation is not an answer to give feedback on."""

    model: ModelRef
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
