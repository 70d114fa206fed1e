"""Request bodies in a content coding (`Content-Encoding: gzip`), decoded before the app sees them.

Clients that compress what they send (the Stack Exchange API's own clients, Java's HttpClient with a GZIP filter,
`requests` behind a proxy that compresses uploads) get the same answer as for the plain body, at the gateway and at
`/invocations` alike. Neither Starlette nor MLflow's scoring server decodes request bodies, so this small ASGI layer
does, written by hand because no maintained ASGI middleware decodes *request* bodies (Starlette's GZipMiddleware
compresses responses):

* `gzip` (and its alias `x-gzip`) and `deflate` (zlib, or raw deflate as some clients send it) are decoded, several
  codings in the order the header lists them undone last to first; `identity` is nothing.
* The decoded size is bounded: a body that expands past `max_decoded_bytes` (a zip bomb) is a 413, found while
  decoding, never after the whole expansion is in memory.
* A body that does not decode is a 400 naming the coding; any other coding (`br`, `zstd`, `compress`) is a 415
  naming it, with `Accept-Encoding: gzip, deflate` saying what is accepted (RFC 7694).
* A JSON body (`application/json`, `*/*+json`), decoded or sent plain, must be UTF-8 (RFC 8259 section 8.1): one
  that is not is a 400 saying so and naming the first bad byte's offset (`not_utf8`), never the bytes. Without this
  check FastAPI answers a bare 400 "There was an error parsing the body" with no detail, or, for bytes that
  Python's json module guesses to be UTF-16 or UTF-32 (`\xff\xfe`), a JSON syntax error about text nobody sent.

The error body has the shape of the app it fronts (`error_body`), so a client reads one error format per server.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

ACCEPTED = ("gzip", "x-gzip", "deflate", "identity")
CHUNK = 64 * 1024

ErrorBody = Callable[[int, str, str], dict[str, Any]]


class DecodingError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def not_utf8(body: bytes) -> str | None:
    """What is wrong with a JSON body that is not UTF-8 (None when it is): the problem and the first bad byte's
    offset, never the bytes. A UTF-8 byte order mark is UTF-8 (json.loads reads it)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"is not valid UTF-8 ({exc.reason} at byte {exc.start}); send JSON encoded as UTF-8"
    return None


def is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request's `Content-Type` is JSON: `application/json` or a `+json` type, parameters aside."""
    value = dict(headers).get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    return value == b"application/json" or (value.startswith(b"application/") and value.endswith(b"+json"))


def gateway_body_error(error: dict[str, Any], problem: str) -> dict[str, Any]:
    """A refusal of the body itself in the shape of the app's error (`error`, what its `error_body` gave): the
    gateway's (`details` naming fields) as its validation handler words a body that is not JSON, field `body`;
    any other shape (MLflow's `error_code` and `message`) as it is."""
    if isinstance(error.get("details"), list):
        return {"error": f"invalid request: body: {problem}", "details": [{"field": "body", "problem": problem}]}
    return error


def codings(header: bytes | None) -> list[str]:
    """`Content-Encoding`'s codings, in the order they were applied (lower case, `identity` dropped)."""
    if not header:
        return []
    listed = [c.strip().lower() for c in header.decode("latin-1").split(",")]
    return [c for c in listed if c and c != "identity"]


def decode(body: bytes, applied: list[str], max_decoded_bytes: int) -> bytes:
    """Undo `applied` codings (last applied first); DecodingError 413 past `max_decoded_bytes`, 400 if corrupt,
    415 for a coding not accepted."""
    unknown = [c for c in applied if c not in ACCEPTED]
    if unknown:
        raise DecodingError(
            415, f"Content-Encoding {', '.join(unknown)} is not supported; send gzip, deflate or an identity body"
        )
    for coding in reversed(applied):
        body = _inflate(body, coding, max_decoded_bytes)
    return body


def _inflate(body: bytes, coding: str, limit: int) -> bytes:
    # deflate: RFC 9110 says zlib-wrapped; some clients send raw deflate, tried second.
    attempts = [zlib.MAX_WBITS | 16] if coding in ("gzip", "x-gzip") else [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    for i, wbits in enumerate(attempts):
        try:
            return _bounded(zlib.decompressobj(wbits), body, limit)
        except zlib.error as exc:
            if i == len(attempts) - 1:
                raise DecodingError(400, f"the body is not valid {coding} data ({exc})") from None
    raise AssertionError("unreachable")


def _bounded(inflater: Any, body: bytes, limit: int) -> bytes:
    out = bytearray()
    data = body
    while data:
        out += inflater.decompress(data, CHUNK)
        if len(out) > limit:
            raise DecodingError(413, f"the body decodes to more than {limit} bytes")
        data = inflater.unconsumed_tail
    out += inflater.flush()
    if len(out) > limit:
        raise DecodingError(413, f"the body decodes to more than {limit} bytes")
    if not inflater.eof:
        raise zlib.error("the compressed data is truncated")
    return bytes(out)


class ContentDecoding:
    """ASGI middleware: requests with a `Content-Encoding` are read whole (up to `max_body_bytes` as sent), decoded
    (up to `max_decoded_bytes`), and handed on as a plain body with its decoded `Content-Length`."""

    def __init__(self, app, max_body_bytes: int, max_decoded_bytes: int, error_body: ErrorBody) -> None:
        self.app = app
        self.max_body, self.max_decoded = max_body_bytes, max_decoded_bytes
        self.error_body = error_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = list(scope.get("headers") or ())
        applied = codings(dict(headers).get(b"content-encoding"))
        json_body = is_json(headers)
        if not applied and not json_body:
            await self.app(scope, receive, send)
            return
        try:
            # A plain body is read as the app would read it (whole, its size limits the app's own).
            body = await self._read(receive, self.max_body if applied else None)
            body = decode(body, applied, self.max_decoded)
        except DecodingError as exc:
            await self._refuse(send, exc, applied)
            return
        problem = not_utf8(body) if json_body else None
        if problem is not None:
            await self._answer(send, 400, gateway_body_error(self.error_body(400, f"body {problem}", ""), problem))
            return
        kept = [(k, v) for k, v in headers if not applied or k not in (b"content-encoding", b"content-length")]
        if applied:
            kept.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def receive_decoded() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": kept}, receive_decoded, send)

    async def _read(self, receive: Callable[[], Awaitable[dict[str, Any]]], limit: int | None) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if limit is not None and size > limit:
                raise DecodingError(413, f"the body as sent is over the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _refuse(self, send, exc: DecodingError, applied: list[str]) -> None:
        extra = [(b"accept-encoding", b"gzip, deflate")] if exc.status == 415 else []
        await self._answer(send, exc.status, self.error_body(exc.status, str(exc), ", ".join(applied)), extra)

    async def _answer(self, send, status: int, error: dict[str, Any], extra: list | None = None) -> None:
        body = json.dumps(error).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
        await send({"type": "http.response.body", "body": body})
