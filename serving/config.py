"""Gateway configuration: the gateway's typed view of the settings (`from_settings`), built once at start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sotag.infra.tracking import TrackingSettings
from sotag.settings import DEFAULT_MODEL_URI, Settings

CHAMPION_URI = DEFAULT_MODEL_URI


@dataclass(frozen=True)
class GatewayConfig:
    tracking: TrackingSettings  # the store the registry URIs, /reload and /admin/rollback use
    model_uri: str = CHAMPION_URI  # a registry URI, a run URI or a local model directory (MODEL_DIR)
    admin_token: str | None = None  # bearer token for /reload and /admin/*; admin routes refuse all without it
    prediction_log_url: str = "sqlite:///predictions.db"
    log_text: bool = False  # store title/body in the prediction log (off: digests only)
    admin_max_failures: int = 5  # failed admin attempts per client and window before 429
    admin_window_s: float = 60.0
    max_batch: int = 1000
    max_body_bytes: int = 16 * 1024 * 1024
    timeout_s: float = 10.0
    log_flush_s: float = 0.5
    log_max_pending: int = 100_000  # rows buffered while the log database is away; beyond: dropped, counted
    spool_dir: Path = Path("spool")  # rows the database could not take at shutdown; replayed at start
    shutdown_timeout_s: float = 20.0  # SIGTERM: in-flight requests get this long, then the log drains
    # A PaaS start (as the original Tagger API did on Heroku): fetch this archive (https, s3:// or a path),
    # verify it against model_sha256 (or its .sha256 manifest) into model_dir, and serve that.
    model_url: str | None = None
    model_sha256: str | None = None
    model_dir: Path = Path("models") / "current"
    # Follow the served alias (models:/name@alias): look every reload_poll_s seconds, swap when it moved; 0: off.
    reload_poll_s: float = 30.0
    # HMAC secret of the MLflow webhook that POSTs alias moves to /webhooks/mlflow; the route refuses all without it.
    webhook_secret: str | None = None
    # Several workers (sotag gateway --workers N): their shared folder (serving.workers) and whether /metrics
    # merges every worker's files (prometheus_client's multiprocess mode, which `sotag gateway` turns on for them).
    workers: int = 1
    run_dir: Path | None = None
    multiprocess_metrics: bool = False
    # @challenger of the served model beside it (serving.traffic, serving.shadow): shadow on/off, canary share.
    shadow: bool = False
    canary_percent: float = 0.0
    shadow_queue: int = 2000
    shadow_batch: int = 16
    shadow_max_share: float = 0.15
    # Where `sotag drift` writes its results: /metrics exports the newest (serving.metrics.DriftCollector); None: not.
    drift_reports_dir: Path | None = None

    @property
    def uses_challenger(self) -> bool:
        return self.shadow or self.canary_percent > 0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> GatewayConfig:
        """The `gateway` section, with its state paths under the settings' home; `overrides` (not None) win."""
        g = settings.gateway
        served = str(g.model_dir_served) if g.model_dir_served else settings.served_model_uri
        values: dict[str, object] = {
            "tracking": TrackingSettings.from_settings(settings),
            "model_uri": served,
            "admin_token": g.admin_token or None,
            "prediction_log_url": settings.prediction_log_url,
            "log_text": g.log_text,
            "max_batch": g.max_batch,
            "admin_max_failures": g.admin_max_failures,
            "admin_window_s": g.admin_window_s,
            "max_body_bytes": g.max_body_bytes,
            "timeout_s": g.request_timeout_s,
            "log_flush_s": g.log_flush_s,
            "log_max_pending": g.log_max_pending,
            "spool_dir": settings.spool_dir,
            "shutdown_timeout_s": g.shutdown_timeout_s,
            "model_url": g.model_url or None,
            "model_sha256": g.model_sha256 or None,
            "model_dir": settings.fetched_model_dir,
            "reload_poll_s": g.reload_poll_s,
            "webhook_secret": g.webhook_secret or None,
            "workers": g.workers or 1,
            "run_dir": settings.gateway_run_dir,
            "shadow": g.shadow == "challenger",
            "canary_percent": g.canary_percent,
            "shadow_queue": g.shadow_queue,
            "shadow_batch": g.shadow_batch,
            "shadow_max_share": g.shadow_max_share,
            "drift_reports_dir": settings.reports_dir,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
