"""Gateway configuration: one typed object built from the environment (and CLI flags)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.tracking import MODEL_NAME, PROJECT_ROOT, TrackingSettings
from tagger.errors import InputError

CHAMPION_URI = f"models:/{MODEL_NAME}@champion"


@dataclass(frozen=True)
class GatewayConfig:
    tracking: TrackingSettings  # the store the registry URIs, /reload and /admin/rollback use
    model_uri: str = CHAMPION_URI  # a registry URI, a run URI or a local model directory (MODEL_DIR)
    admin_token: str | None = None  # bearer token for /reload and /admin/*; admin routes refuse all without it
    prediction_log_url: str = f"sqlite:///{PROJECT_ROOT / 'predictions.db'}"
    log_text: bool = False  # store title/body in the prediction log (off: digests only)
    admin_max_failures: int = 5  # failed admin attempts per client and window before 429
    admin_window_s: float = 60.0
    max_batch: int = 1000
    max_body_bytes: int = 16 * 1024 * 1024
    timeout_s: float = 10.0
    log_flush_s: float = 0.5
    log_max_pending: int = 100_000  # rows buffered while the log database is away; beyond: dropped, counted
    spool_dir: Path = PROJECT_ROOT / "spool"  # rows the database could not take at shutdown; replayed at start
    shutdown_timeout_s: float = 20.0  # SIGTERM: in-flight requests get this long, then the log drains
    # A PaaS start (as the original Tagger API did on Heroku): fetch this archive (https, s3:// or a path),
    # verify it against model_sha256 (or its .sha256 manifest) into model_dir, and serve that.
    model_url: str | None = None
    model_sha256: str | None = None
    model_dir: Path = PROJECT_ROOT / "models" / "current"
    # Follow the served alias (models:/name@alias): look every reload_poll_s seconds, swap when it moved; 0: off.
    reload_poll_s: float = 30.0
    # HMAC secret of the MLflow webhook that POSTs alias moves to /webhooks/mlflow; the route refuses all without it.
    webhook_secret: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> GatewayConfig:
        env = os.environ if environ is None else environ
        home = Path(env.get("SOTAG_HOME", PROJECT_ROOT))
        values: dict[str, object] = {
            "tracking": TrackingSettings.from_env(env),
            "model_uri": env.get("MODEL_DIR") or env.get("SOTAG_MODEL_URI") or CHAMPION_URI,
            "admin_token": env.get("SOTAG_ADMIN_TOKEN") or None,
            "prediction_log_url": env.get("SOTAG_PREDICTION_LOG", f"sqlite:///{home / 'predictions.db'}"),
            "log_text": env.get("SOTAG_LOG_TEXT", "0").lower() in {"1", "true", "yes"},
            "max_batch": int(env.get("SOTAG_MAX_BATCH", cls.max_batch)),
            "admin_max_failures": int(env.get("SOTAG_ADMIN_MAX_FAILURES", cls.admin_max_failures)),
            "admin_window_s": float(env.get("SOTAG_ADMIN_WINDOW_S", cls.admin_window_s)),
            "max_body_bytes": int(env.get("SOTAG_MAX_BODY_BYTES", cls.max_body_bytes)),
            "timeout_s": float(env.get("SOTAG_REQUEST_TIMEOUT_S", cls.timeout_s)),
            "log_max_pending": int(env.get("SOTAG_LOG_MAX_PENDING", cls.log_max_pending)),
            "spool_dir": Path(env.get("SOTAG_SPOOL_DIR") or home / "spool"),
            "shutdown_timeout_s": float(env.get("SOTAG_SHUTDOWN_TIMEOUT_S", cls.shutdown_timeout_s)),
            "model_url": env.get("SOTAG_MODEL_URL") or None,
            "model_sha256": env.get("SOTAG_MODEL_SHA256") or None,
            "model_dir": Path(env.get("SOTAG_MODEL_DIR") or home / "models" / "current"),
            "reload_poll_s": _seconds(env, "SOTAG_RELOAD_POLL_S", cls.reload_poll_s),
            "webhook_secret": env.get("SOTAG_WEBHOOK_SECRET") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A duration in seconds from the environment, 0 or more; InputError naming the variable otherwise."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(name, f"{raw!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(name, f"{raw!r}: give 0 (off) or a positive number of seconds")
    return value
