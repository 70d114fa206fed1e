"""The gateway's request and response bodies (pydantic validates; limits match the pyfunc's)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from tagger.pyfunc import MAX_FIELD_CHARS, MAX_TOP_K


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: StrictStr = Field(min_length=1, max_length=MAX_FIELD_CHARS, description="question title, plain text")
    body: StrictStr = Field("", max_length=MAX_FIELD_CHARS, description="question body, HTML or plain text")


class Options(BaseModel):
    top_k: StrictInt | None = Field(None, ge=1, le=MAX_TOP_K, description="how many tags at most")
    threshold: StrictFloat | StrictInt | None = Field(None, ge=0, le=1, description="minimum score of a tag")


class PredictRequest(Question, Options):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "How to merge two pandas dataframes on a column?",
                    "body": "<p>I have two DataFrames and want to join them on <code>id</code>.</p>",
                    "top_k": 5,
                }
            ]
        },
    )


class BatchRequest(Options):
    model_config = ConfigDict(extra="forbid")

    questions: list[Question] = Field(min_length=1, description="the questions, at most the configured batch size")


class TagScore(BaseModel):
    tag: str
    score: float


class ModelRef(BaseModel):
    name: str
    version: str | None
    alias: str | None


class PredictResponse(BaseModel):
    tags: list[TagScore]
    model: ModelRef


class BatchResponse(BaseModel):
    results: list[list[TagScore]]
    model: ModelRef


class ErrorItem(BaseModel):
    field: str
    problem: str


class ErrorResponse(BaseModel):
    error: str
    details: list[ErrorItem] = []
