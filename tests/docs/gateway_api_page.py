"""docs/gateway-api.md, rendered from the gateway's own OpenAPI document (`create_app(...).openapi()`).

Regenerate after changing a route or a schema: `.venv/bin/python -m tests.docs.gateway_api_page`;
tests/docs/test_docs.py checks the committed page equals what this renders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.support.settings import REPO

PAGE = REPO / "docs" / "gateway-api.md"
METHODS = ("get", "post", "put", "patch", "delete")


def openapi_document() -> dict[str, Any]:
    """The document a gateway serving a probability model answers at /openapi.json, with the default settings.

    The model is a stand-in: the document depends only on the served model's score kind and the settings."""
    from sotag.serving.app import create_app
    from tests.support.settings import gateway_config

    here = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)  # no sotag.toml of the caller's; the prediction log's file lands here
        try:
            config = gateway_config(
                environ={}, prediction_log_url=f"sqlite:///{Path(folder) / 'predictions.db'}", reload_poll_s=0
            )
            model = SimpleNamespace(
                name="stackoverflow-tagger",
                version="1",
                tagger=SimpleNamespace(config=SimpleNamespace(score_kind="probability")),
            )
            holder = SimpleNamespace(current=model, uri=config.model_uri, last_reload=None)
            return create_app(config, holder=holder).openapi()
        finally:
            os.chdir(here)


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _anchor(name: str) -> str:
    return name.lower()


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type(part) for part in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return f"object of {_type(schema['additionalProperties'])}"
    return str(kind)


def _constraints(schema: dict[str, Any]) -> str:
    words = []
    for key, label in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("pattern", "pattern"),
    ):
        if key in schema:
            value = f"`{schema[key]}`" if key == "pattern" else schema[key]
            words.append(f"{label} {value}")
    if "enum" in schema:
        words.append("one of " + ", ".join(f"`{value}`" for value in schema["enum"]))
    if "default" in schema:
        words.append(f"default `{schema['default']}`")
    for key in ("anyOf", "oneOf"):
        for part in schema.get(key, []):
            inner = _constraints(part)
            if inner:
                words.append(inner)
    return "; ".join(words)


def _schema_table(schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    if not properties:
        return [f"Type: {_type(schema)}.", ""]
    required = set(schema.get("required", []))
    lines = ["| field | type | required | constraints | description |", "|---|---|---|---|---|"]
    for name, field in properties.items():
        lines.append(
            f"| `{name}` | {_cell(_type(field))} | {'yes' if name in required else 'no'} | "
            f"{_cell(_constraints(field))} | {_cell(field.get('description', ''))} |"
        )
    if schema.get("additionalProperties") is False:
        lines += ["", "Other fields are refused (400)."]
    return [*lines, ""]


def _body_type(content: dict[str, Any]) -> str:
    parts = []
    for media, value in content.items():
        parts.append(f"`{media}`: {_type(value.get('schema', {}))}" if value.get("schema") else f"`{media}`")
    return ", ".join(parts)


def render(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    lines = [
        "# Gateway HTTP API",
        "",
        "<!-- Generated from the gateway's OpenAPI document: python -m tests.docs.gateway_api_page -->",
        "",
        f"{info.get('title', '')}, API version {info.get('version', '')}: {info.get('description', '')}",
        "",
        "This page is the gateway's `/openapi.json` (also served as Swagger UI at `/docs` and ReDoc at `/redoc`),",
        "rendered for a gateway serving a model whose scores are probabilities, with the default settings. What each",
        "route does, and the workers, shadow, canary and feedback behind it: [Serving](serving.md).",
        "",
        "## Routes",
        "",
        "| method | path | summary |",
        "|---|---|---|",
    ]
    operations = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                operations.append((path, method, item[method]))
                summary = item[method].get("summary", "")
                lines.append(f"| `{method.upper()}` | [`{path}`](#{_op_anchor(method, path)}) | {_cell(summary)} |")
    lines.append("")
    for path, method, operation in operations:
        lines += [f"### {method.upper()} {path}", ""]
        if operation.get("description"):
            lines += [operation["description"].strip(), ""]
        parameters = operation.get("parameters", [])
        if parameters:
            lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
            for parameter in parameters:
                lines.append(
                    f"| `{parameter['name']}` | {parameter.get('in', '')} | {_cell(_type(parameter.get('schema', {})))}"
                    f" | {'yes' if parameter.get('required') else 'no'} | {_cell(parameter.get('description', ''))} |"
                )
            lines.append("")
        body = operation.get("requestBody")
        if body:
            lines += [f"Request body: {_body_type(body.get('content', {}))}.", ""]
        lines += ["| status | description | body |", "|---|---|---|"]
        for status, response in operation.get("responses", {}).items():
            lines.append(
                f"| {status} | {_cell(response.get('description', ''))} | "
                f"{_cell(_body_type(response.get('content', {})))} |"
            )
        lines.append("")
    schemas = document.get("components", {}).get("schemas", {})
    if schemas:
        lines += ["## Schemas", ""]
        for name, schema in schemas.items():
            lines += [f"### {name}", ""]
            if schema.get("description"):
                lines += [" ".join(schema["description"].split()), ""]
            lines += _schema_table(schema)
    return "\n".join(lines).rstrip() + "\n"


def _op_anchor(method: str, path: str) -> str:
    """The anchor MkDocs gives the heading `METHOD path` (lower case, punctuation dropped, spaces as dashes)."""
    text = f"{method} {path}".lower()
    kept = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return "-".join(kept.split())


def main() -> None:
    PAGE.write_text(render(openapi_document()), encoding="utf-8")
    print(f"wrote {PAGE.relative_to(REPO)}")


if __name__ == "__main__":
    main()
