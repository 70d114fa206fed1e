"""Read a value out of a Prometheus exposition (`/metrics`), with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def metric_value(text: str, sample: str, **labels: str) -> float:
    """The value of the sample named `sample` with exactly these labels; 0.0 when absent (a counter not yet
    incremented is not exposed)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and s.labels == labels:
                return float(s.value)
    return 0.0
