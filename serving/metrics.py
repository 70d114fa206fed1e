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
    alias_checks: Counter
    alias_last_check: Gauge
    alias_last_check_time: Gauge

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
            alias_checks=Counter(
                "sotag_alias_checks",
                "Looks at the served alias (poll or webhook) by outcome: unchanged, swapped, refused, skipped, error",
                ["outcome"],
                registry=registry,
            ),
            alias_last_check=Gauge(
                "sotag_alias_last_check",
                "The last look at the served alias (1 on its outcome and the version the alias named)",
                ["outcome", "registry_version"],
                registry=registry,
            ),
            alias_last_check_time=Gauge(
                "sotag_alias_last_check_timestamp_seconds",
                "When the served alias was last looked at (unix time)",
                registry=registry,
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

    def alias_checked(self, outcome: str, registry_version: str | None) -> None:
        self.alias_checks.labels(outcome).inc()
        self.alias_last_check.clear()
        self.alias_last_check.labels(outcome=outcome, registry_version=registry_version or "unknown").set(1)
        self.alias_last_check_time.set_to_current_time()
