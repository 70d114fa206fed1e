"""What the drift job does when a month is `alert`: run `retrain`, post to a webhook."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import requests

log = logging.getLogger(__name__)


def post_webhook(url: str, summary: dict, timeout_s: float = 10.0) -> str:
    """POST the summary; a failing webhook is reported, never fatal (the exit code already says alert)."""
    alerts = [m["month"] for m in summary["months"] if m["severity"] == "alert"]
    payload = {"text": f"sotag drift: alert in {', '.join(alerts)}", "summary": summary}
    try:
        response = requests.post(
            url, data=json.dumps(payload), headers={"content-type": "application/json"}, timeout=timeout_s
        )
        return f"webhook {url}: HTTP {response.status_code}"
    except requests.RequestException as exc:
        return f"webhook {url}: failed ({type(exc).__name__})"


def run_retrain(extra_args: list[str] | None = None) -> int:
    """`sotag retrain` in a subprocess (its exit code: 0 promoted, 3 kept)."""
    result = subprocess.run([sys.executable, "-m", "sotag", "retrain", *(extra_args or [])], check=False)
    return result.returncode
