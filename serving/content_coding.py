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
        if not applied:
            await self.app(scope, receive, send)
            return
        try:
            body = decode(await self._read(receive), applied, self.max_decoded)
        except DecodingError as exc:
            await self._refuse(send, exc, applied)
            return
        kept = [(k, v) for k, v in headers if k not in (b"content-encoding", b"content-length")]
        kept.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def receive_decoded() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": kept}, receive_decoded, send)

    async def _read(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise DecodingError(413, f"the body as sent is over the limit of {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _refuse(self, send, exc: DecodingError, applied: list[str]) -> None:
        body = json.dumps(self.error_body(exc.status, str(exc), ", ".join(applied))).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if exc.status == 415:
            headers.append((b"accept-encoding", b"gzip, deflate"))
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
