"""Prometheus metrics of the gateway (one registry per app, so tests can build several).

With several workers (`sotag gateway --workers N`) each worker writes its values to files in a folder shared by
all of them (prometheus_client's multiprocess mode, chosen by `PROMETHEUS_MULTIPROC_DIR`, which `sotag gateway`
sets for its workers); `/metrics` answers the sum over workers (`exposition`). Counters and histograms of a
worker that died still count (its files stay); the gauges that describe a live worker ("live" modes) are dropped
for dead workers (gunicorn's `child_exit` hook, serving/supervisor.py). Gauges never `clear()` here: in
multiprocess mode a cleared label would keep its last value in the files, so a label that stops being true is set
to 0 instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sotag.infra.drift_summary import SUMMARY_FILE, DriftSummary, SummaryError, latest_summary

log = logging.getLogger("sotag.gateway")

# Sub-millisecond buckets: a single prediction takes well under a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JACCARD_BUCKETS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.99, 1.0)
# The drift job's levels (monitoring/severity.py LEVELS) as gauge values: 0 ok, 1 warn, 2 alert; a month no family
# was judged in ("unjudged") has no series.
DRIFT_LEVELS = {"ok": 0.0, "warn": 1.0, "alert": 2.0}


@dataclass
class GatewayMetrics:
    registry: CollectorRegistry
    latency: Histogram
    requests: Counter
    errors: Counter
    predicted_tags: Counter
    no_tag_answers: Counter
    model_version: Gauge
    reloads: Counter
    admin_failures: Counter
    alias_checks: Counter
    alias_last_check: Gauge
    alias_last_check_time: Gauge
    alias_last_success_time: Gauge
    alias_poll: Gauge
    log_rows: dict[str, Gauge]
    answers: Counter
    shadow_compared: Counter
    shadow_top1_agree: Counter
    shadow_jaccard: Histogram
    shadow_latency: Histogram
    shadow_dropped: Counter
    shadow_queue: Gauge
    challenger_version: Gauge
    live_precision_at_1: Summary
    live_recall_at_5: Summary
    _served: dict[str, tuple[str, str]] = field(default_factory=dict)

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
            no_tag_answers=Counter(
                "sotag_no_tag_answers",
                "Questions answered with no tag (none above the threshold), by the version that answered",
                ["version"],
                registry=registry,
            ),
            model_version=Gauge(
                "sotag_model_version",
                "Version of the model being served (the number of workers serving it: 1 with one worker)",
                ["name", "version"],
                registry=registry,
                multiprocess_mode="livesum",
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
                multiprocess_mode="livemax",
            ),
            alias_last_check_time=Gauge(
                "sotag_alias_last_check_timestamp_seconds",
                "When the served alias was last looked at (unix time)",
                registry=registry,
                multiprocess_mode="max",
            ),
            alias_last_success_time=Gauge(
                "sotag_alias_last_success_timestamp_seconds",
                "When the registry last answered a look at the served alias (any outcome but error; the start's "
                "load counts), unix time",
                registry=registry,
                multiprocess_mode="max",
            ),
            alias_poll=Gauge(
                "sotag_alias_poll_seconds",
                "How often the gateway looks at the served alias (0: it does not follow one)",
                registry=registry,
                multiprocess_mode="livemax",
            ),
            log_rows={
                name: Gauge(name, doc, registry=registry, multiprocess_mode=mode)
                for name, doc, mode in (
                    ("sotag_prediction_log_written", "Rows written to the prediction log", "sum"),
                    ("sotag_prediction_log_pending", "Rows waiting for the log database", "livesum"),
                    ("sotag_prediction_log_dropped", "Rows dropped: the buffer bound was hit", "sum"),
                    ("sotag_prediction_log_spooled", "Rows spooled to disk at shutdown (replayed at start)", "sum"),
                )
            },
            answers=Counter(
                "sotag_answers",
                "Questions answered, by the version that answered and its arm (champion, canary, pinned)",
                ["version", "arm"],
                registry=registry,
            ),
            shadow_compared=Counter(
                "sotag_shadow_compared",
                "Questions the shadow scored and compared with the served answer, by shadow version",
                ["version"],
                registry=registry,
            ),
            shadow_top1_agree=Counter(
                "sotag_shadow_top1_agree",
                "Compared questions whose first tag was the same in both answers, by shadow version",
                ["version"],
                registry=registry,
            ),
            shadow_jaccard=Histogram(
                "sotag_shadow_jaccard",
                "Jaccard similarity of the served and the shadow top-k tag sets",
                ["version"],
                buckets=JACCARD_BUCKETS,
                registry=registry,
            ),
            shadow_latency=Histogram(
                "sotag_shadow_seconds",
                "Shadow scoring time per question (a batch's time shared among its questions)",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            shadow_dropped=Counter(
                "sotag_shadow_dropped", "Questions the shadow did not score: its queue was full", registry=registry
            ),
            shadow_queue=Gauge(
                "sotag_shadow_queue", "Questions waiting for the shadow", registry=registry, multiprocess_mode="livesum"
            ),
            challenger_version=Gauge(
                "sotag_challenger_version",
                "The @challenger version loaded for shadow or canary (workers holding it; 0 when none)",
                ["name", "version"],
                registry=registry,
                multiprocess_mode="livesum",
            ),
            live_precision_at_1=Summary(
                "sotag_live_precision_at_1",
                "Precision@1 of answers against the tags the asker kept (POST /feedback), by version that answered",
                ["version"],
                registry=registry,
            ),
            live_recall_at_5=Summary(
                "sotag_live_recall_at_5",
                "Recall@5 of answers against the tags the asker kept (POST /feedback), by version that answered",
                ["version"],
                registry=registry,
            ),
        )

    def log_counts(self, plog) -> None:
        """The prediction log's counts (its observer hook: called by the log as they change)."""
        self.log_rows["sotag_prediction_log_written"].set(plog.written)
        self.log_rows["sotag_prediction_log_pending"].set(plog.pending)
        self.log_rows["sotag_prediction_log_dropped"].set(plog.dropped)
        self.log_rows["sotag_prediction_log_spooled"].set(plog.spooled)

    def _switch(self, gauge: Gauge, key: str, labels: tuple[str, ...] | None) -> None:
        """Set `labels` to 1 and the labels set before to 0 (see the module docstring: no clear())."""
        previous = self._served.get(key)
        if previous is not None and previous != labels:
            gauge.labels(*previous).set(0)
        if labels is not None:
            gauge.labels(*labels).set(1)
            self._served[key] = labels
        else:
            self._served.pop(key, None)

    def set_model(self, name: str, version: str | None) -> None:
        self._switch(self.model_version, "champion", (name, version or "local"))
        self.no_tag_answers.labels(version or "local")  # the series exists (0) before the first answer with no tag

    def set_challenger(self, name: str, version: str | None) -> None:
        self._switch(self.challenger_version, "challenger", (name, version) if version else None)

    def alias_checked(self, outcome: str, registry_version: str | None) -> None:
        self.alias_checks.labels(outcome).inc()
        self._switch(self.alias_last_check, "alias_check", (outcome, registry_version or "unknown"))
        self.alias_last_check_time.set_to_current_time()
        if outcome != "error":
            self.alias_last_success_time.set_to_current_time()

    def following(self, poll_s: float) -> None:
        """The gateway follows its alias every `poll_s` seconds; the alias was read at start (a successful look)."""
        self.alias_poll.set(poll_s)
        self.alias_last_success_time.set_to_current_time()


class DriftCollector(Collector):
    """The drift job's latest result as gauges, read at scrape time from the newest `summary.json` under
    `reports_dir` (where `sotag drift` writes it; infra/drift_summary.py `latest_summary`: a small file, read at each
    scrape):

    * `sotag_drift_severity{family, window}`: each window's level per family judged (0 ok, 1 warn, 2 alert), and
      its overall level as family="all";
    * `sotag_drift_latest_severity{family, window}`: the same for the summary's newest window only (the alert reads it);
    * `sotag_drift_statistic{family, statistic, window}`: each statistic a rule reads, per window;
    * `sotag_drift_summary_timestamp_seconds`: when the summary was written.

    A window is a month (YYYY-MM) or a rolling window's label. Nothing (no drift series) before the first job or
    while the newest summary cannot be read (logged)."""

    def __init__(self, reports_dir: Path):
        self.reports_dir = Path(reports_dir)
        self._logged: str | None = None  # the last problem logged (each new one is logged once)

    def latest(self) -> tuple[DriftSummary, float] | None:
        """The newest finished job's summary and when it was written (None: no job yet, or unreadable)."""
        try:
            found = latest_summary(self.reports_dir)
            if found is None:
                return None
            folder, summary = found
            return summary, (folder / SUMMARY_FILE).stat().st_mtime
        except (SummaryError, OSError) as exc:  # a damaged summary, a folder gone between listing and reading
            if str(exc) != self._logged:
                log.warning("drift metrics: %s", exc)
                self._logged = str(exc)
            return None

    def collect(self) -> Iterator[Metric]:
        found = self.latest()
        if found is None:
            return
        summary, mtime = found
        severity = GaugeMetricFamily(
            "sotag_drift_severity",
            "Drift level per family and window (0 ok, 1 warn, 2 alert)",
            labels=["family", "window"],
        )
        latest = GaugeMetricFamily(
            "sotag_drift_latest_severity",
            "Drift level per family in the drift job's newest window (0 ok, 1 warn, 2 alert)",
            labels=["family", "window"],
        )
        statistic = GaugeMetricFamily(
            "sotag_drift_statistic",
            "A drift statistic a severity rule reads, per family and window",
            labels=["family", "statistic", "window"],
        )
        for i, month in enumerate(summary.months):
            levels = {**month.family_severity, "all": month.severity}
            for family, level in levels.items():
                if level in DRIFT_LEVELS:
                    severity.add_metric([family, month.month], DRIFT_LEVELS[level])
                    if i == len(summary.months) - 1:
                        latest.add_metric([family, month.month], DRIFT_LEVELS[level])
            for name, family in summary.rule_families.items():
                value = month.values.get(name)
                if isinstance(value, int | float) and math.isfinite(value):
                    statistic.add_metric([family, name, month.month], float(value))
        stamp = GaugeMetricFamily("sotag_drift_summary_timestamp_seconds", "When the drift summary was written")
        stamp.add_metric([], mtime)
        yield from (severity, latest, statistic, stamp)


def exposition(
    registry: CollectorRegistry, multiprocess_dir: Path | None, collectors: Iterable[Collector] = ()
) -> bytes:
    """The text `/metrics` answers: this app's registry, or the sum over every worker writing to `multiprocess_dir`;
    then `collectors` (read at scrape time, the same for every worker: the drift summary)."""
    if multiprocess_dir is None:
        merged = registry
    else:
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=str(multiprocess_dir))
    text = generate_latest(merged)
    for collector in collectors:
        extra = CollectorRegistry()
        extra.register(collector)
        text += generate_latest(extra)
    return text
