"""Prometheus metrics of the gateway (one registry per app, so tests can build several)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Sub-millisecond buckets: a single prediction takes well under a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class GatewayMetrics:
    registry: CollectorRegistry
    latency: Histogram
    requests: Counter
    errors: Counter
    predicted_tags: Counter
    model_version: Gauge
    reloads: Counter
    admin_failures: Counter

    @classmethod
    def create(cls) -> GatewayMetrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            latency=Histogram(
                "sotag_request_seconds", "Request latency", ["route"], buckets=LATENCY_BUCKETS, registry=registry
            ),
            requests=Counter(
                "sotag_requests", "Requests by route and status code", ["route", "code"], registry=registry
            ),
            errors=Counter(
                "sotag_errors", "Non-2xx answers by route and status code", ["route", "code"], registry=registry
            ),
            predicted_tags=Counter("sotag_predicted_tags", "Tags returned, by tag", ["tag"], registry=registry),
            model_version=Gauge(
                "sotag_model_version",
                "Version of the model being served (1 on the served version)",
                ["name", "version"],
                registry=registry,
            ),
            reloads=Counter("sotag_reloads", "Model reloads by outcome", ["outcome"], registry=registry),
            admin_failures=Counter(
                "sotag_admin_auth_failures", "Admin requests refused for a missing or wrong token", registry=registry
            ),
        )

    def watch_prediction_log(self, plog) -> None:
        """The prediction log's counters, read at scrape time."""
        for name, doc, read in (
            ("sotag_prediction_log_written", "Rows written to the prediction log", lambda: plog.written),
            ("sotag_prediction_log_pending", "Rows waiting for the log database", lambda: plog.pending),
            ("sotag_prediction_log_dropped", "Rows dropped: the buffer bound was hit", lambda: plog.dropped),
            (
                "sotag_prediction_log_spooled",
                "Rows spooled to disk at shutdown (replayed at start)",
                lambda: plog.spooled,
            ),
        ):
            Gauge(name, doc, registry=self.registry).set_function(read)

    def set_model(self, name: str, version: str | None) -> None:
        self.model_version.clear()
        self.model_version.labels(name=name, version=version or "local").set(1)
