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


def retrain_line(extra_args: list[str] | None = None) -> str:
    """`sotag retrain` in a subprocess, told in one line: `drift: retrain promoted|kept (exit N)`, or
    `drift: retrain FAILED (exit N): <its own one-line reason>` (a tracking server down, a broken champion...).

    Its output goes through as it runs, except its error line, which this line carries instead. The drift
    job's result and exit code stand whatever retrain did; retrain itself leaves the registry as it was."""
    result = subprocess.run(
        [sys.executable, "-m", "sotag", "retrain", *(extra_args or [])], stderr=subprocess.PIPE, text=True, check=False
    )
    said = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    own = [line for line in said if line.startswith("sotag retrain:")]
    if result.returncode in (0, 3):
        sys.stderr.write(result.stderr)
        outcome = "promoted" if result.returncode == 0 else "kept the champion"
        return f"drift: retrain {outcome} (exit {result.returncode})" + (f": {own[-1]}" if own else "")
    reason = (own or said or ["no message"])[-1]
    return f"drift: retrain FAILED (exit {result.returncode}): {reason}"
