"""What the drift job does when a month is `alert`: run `retrain`, post to a webhook."""

from __future__ import annotations

import json
import logging
import sys

import requests

from sotag.infra.retrain_job import OUTCOMES, run_retrain
from sotag.settings import Settings

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


def retrain_line(settings: Settings | None, extra_args: list[str] | None = None) -> str:
    """`sotag retrain` in a child process (sotag.infra.retrain_job, as the gateway's /admin/retrain starts it) with
    the drift job's settings, told in one line: `drift: retrain promoted|kept (exit N)`, or
    `drift: retrain FAILED (exit N): <its own one-line reason>` (a tracking server down, a broken champion...).

    Its output goes through as it runs, except its error output, which this line carries instead. The drift
    job's result and exit code stand whatever retrain did; retrain itself leaves the registry as it was."""
    result = run_retrain(settings, extra_args or (), echo=True)
    if result.exit_code in OUTCOMES:
        sys.stderr.write(result.output)
        outcome = "promoted" if result.exit_code == 0 else "kept the champion"
        own = result.last_line if result.last_line.startswith("sotag retrain:") else ""
        return f"drift: retrain {outcome} (exit {result.exit_code})" + (f": {own}" if own else "")
    return f"drift: retrain FAILED (exit {result.exit_code}): {result.last_line or 'no message'}"
