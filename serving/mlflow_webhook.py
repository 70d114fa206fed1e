"""MLflow 3 registry webhooks, as the gateway receives them (`POST /webhooks/mlflow`).

MLflow's tracking server (not the embedded store: it delivers from its REST handlers) POSTs
`{"entity": "model_version_alias", "action": "created", "timestamp": ..., "data": {"name", "alias", "version"}}`
with the headers `X-MLflow-Delivery-Id`, `X-MLflow-Timestamp` (unix seconds) and
`X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "<delivery id>.<timestamp>.<body>" with the webhook's secret>`.
A delivery is accepted only with a valid signature and a timestamp within `tolerance_s` of now (no replay).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
ALIAS_CREATED = ("model_version_alias", "created")


class WebhookRefused(Exception):
    """The delivery is not signed with the gateway's secret, or too old; the message says which."""


@dataclass(frozen=True)
class AliasEvent:
    name: str
    alias: str
    version: str


def signature(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """MLflow's `v1,<base64>` signature of a delivery."""
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str, headers: dict[str, str], body: bytes, tolerance_s: float = 300.0, now: float | None = None
) -> dict[str, Any]:
    """The delivery's JSON payload once its signature and timestamp check out; raises WebhookRefused.

    `headers`: the request's headers, names lower-cased (as Starlette gives them)."""
    delivery_id = headers.get(DELIVERY_ID_HEADER.lower())
    timestamp = headers.get(TIMESTAMP_HEADER.lower())
    given = headers.get(SIGNATURE_HEADER.lower())
    if not (delivery_id and timestamp and given):
        raise WebhookRefused(f"{SIGNATURE_HEADER}, {TIMESTAMP_HEADER} and {DELIVERY_ID_HEADER} are required")
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        raise WebhookRefused(f"{TIMESTAMP_HEADER}: not unix seconds") from None
    if age > tolerance_s:
        raise WebhookRefused(f"{TIMESTAMP_HEADER}: {age:.0f} s from now, more than {tolerance_s:g} s (replay?)")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise WebhookRefused("body: not UTF-8") from None
    expected = signature(secret, delivery_id, timestamp, text)
    # Several space-separated signatures may be sent (secret rotation): one match is enough.
    if not any(hmac.compare_digest(expected.encode(), s.encode()) for s in given.split()):
        raise WebhookRefused(f"{SIGNATURE_HEADER}: does not match the gateway's webhook secret")
    try:
        payload = json.loads(text)
    except ValueError:
        raise WebhookRefused("body: not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRefused("body: not a JSON object")
    return payload


def alias_event(payload: dict[str, Any]) -> AliasEvent | None:
    """The alias move a verified payload announces; None for any other event (or a malformed one)."""
    if (payload.get("entity"), payload.get("action")) != ALIAS_CREATED:
        return None
    data = payload.get("data")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str | int) for k in ("name", "alias", "version")):
        return None
    return AliasEvent(str(data["name"]), str(data["alias"]), str(data["version"]))
