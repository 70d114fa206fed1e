"""The Grafana dashboard, generated: `python -m sotag.monitoring.observe.dashboard` writes
dashboard.json beside it (committed; a test keeps it equal to `dashboard()`).

One screen: traffic and errors, latency, the served version and how the gateway follows its alias, the canary and
shadow split and agreement, what it predicts (top tags, no tag), the drift job's latest result per family, live
precision@1 / recall@5 from feedback, the prediction log, and the alerts firing. Every panel reads the provisioned
Prometheus datasource (uid `sotag-prometheus`, grafana-datasource.yml). Queries use Grafana's
`$__rate_interval` and fixed `[1h]` windows only (the live-quality and tag-share panels: feedback is sparse).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sotag.monitoring.observe import DASHBOARD, DATASOURCE_UID

SCHEMA_VERSION = 39  # Grafana 10.4 / 11's dashboard schema
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
SERVED = 'route!="/metrics"'  # every answer but Prometheus' own scrapes
LATENCY_ROUTES = 'route=~"/predict|/predict/batch|/explain"'
SEVERITY_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "ok", "color": "green", "index": 0},
            "1": {"text": "warn", "color": "orange", "index": 1},
            "2": {"text": "alert", "color": "red", "index": 2},
        },
    }
]


def target(ref: str, expr: str, legend: str = "", table: bool = False) -> dict[str, Any]:
    """One PromQL query of a panel: a range query, or an instant one shown as a table."""
    return {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "format": "table" if table else "time_series",
        "instant": table,
        "legendFormat": legend or "__auto",
        "range": not table,
        "refId": ref,
    }


def panel(
    kind: str,
    title: str,
    description: str,
    grid: tuple[int, int, int, int],
    targets: list[dict[str, Any]],
    unit: str = "short",
    options: dict[str, Any] | None = None,
    **defaults: Any,
) -> dict[str, Any]:
    x, y, w, h = grid
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit, **defaults}, "overrides": []},
        "options": options or {},
        "targets": targets,
    }


def timeseries(title: str, description: str, grid, targets, unit: str = "short", **defaults: Any) -> dict[str, Any]:
    options = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi"},
    }
    return panel("timeseries", title, description, grid, targets, unit, options, **defaults)


def stat(title: str, description: str, grid, targets, unit: str = "short", text: str = "auto", **defaults) -> dict:
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "textMode": text,
        "colorMode": "value",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
    }
    return panel("stat", title, description, grid, targets, unit, options, **defaults)


def table(title: str, description: str, grid, targets) -> dict[str, Any]:
    return panel("table", title, description, grid, targets, options={"showHeader": True})


def rate(metric: str, selector: str = "", window: str = "$__rate_interval") -> str:
    return f"rate({metric}{{{selector}}}[{window}])" if selector else f"rate({metric}[{window}])"


def ratio_per_version(summary: str) -> str:
    """A feedback Summary's mean per version over the last hour (sum / count)."""
    return f"sum by (version) (increase({summary}_sum[1h])) / sum by (version) (increase({summary}_count[1h]))"


def panels() -> list[dict[str, Any]]:
    five_xx = f'{SERVED},code=~"5.."'
    return [
        stat(
            "Served version",
            "The champion each worker serves and the @challenger loaded for shadow or canary (the number: workers).",
            (0, 0, 4, 5),
            [
                target("A", "max by (version) (sotag_model_version > 0)", "champion v{{version}}"),
                target("B", "max by (version) (sotag_challenger_version > 0)", "challenger v{{version}}"),
            ],
            text="name",
        ),
        stat(
            "5xx share",
            "5xx answers as a share of every answer but /metrics (the SotagHighErrorRatio alert: over 5% for 5 min).",
            (4, 0, 4, 5),
            [
                target(
                    "A",
                    f"(sum(rate(sotag_requests_total{{{five_xx}}}[$__rate_interval])) or vector(0))"
                    f" / sum(rate(sotag_requests_total{{{SERVED}}}[$__rate_interval]))",
                    "5xx share",
                )
            ],
            unit="percentunit",
            thresholds={
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}, {"color": "red", "value": 0.05}],
            },
        ),
        stat(
            "Since the last successful alias check",
            "Seconds since the registry last answered a look at the served alias (SotagAliasNotChecked: over three "
            "poll intervals).",
            (8, 0, 4, 5),
            [target("A", "time() - max(sotag_alias_last_success_timestamp_seconds)", "since")],
            unit="s",
        ),
        table(
            "Alias follow: the last check",
            "The outcome of the last look at the served alias and the version it named (SotagServedVersionNotChampion "
            "when that is not the version served).",
            (12, 0, 5, 5),
            [target("A", "max by (outcome, registry_version) (sotag_alias_last_check == 1)", table=True)],
        ),
        stat(
            "Latest drift severity",
            "The drift job's newest window, per family judged and overall (all): ok, warn or alert (SotagDriftAlert).",
            (17, 0, 7, 5),
            [target("A", "max by (family) (sotag_drift_latest_severity)", "{{family}}")],
            text="value_and_name",
            mappings=SEVERITY_MAPPINGS,
        ),
        timeseries(
            "Requests by route and code",
            "Requests per second by route and status code (Prometheus' scrapes of /metrics left out).",
            (0, 5, 12, 8),
            [target("A", f"sum by (route, code) ({rate('sotag_requests_total', SERVED)})", "{{route}} {{code}}")],
            unit="reqps",
        ),
        timeseries(
            "Errors by route and code",
            "Non-2xx answers per second by route and status code: 4xx are the callers', 5xx the gateway's.",
            (12, 5, 12, 8),
            [target("A", f"sum by (route, code) ({rate('sotag_errors_total', SERVED)})", "{{route}} {{code}}")],
            unit="reqps",
        ),
        timeseries(
            "Latency p50 / p95 / p99",
            "Request latency quantiles by route (SotagLatencyOverBudget: p99 of /predict or /explain over 250 ms).",
            (0, 13, 12, 8),
            [
                target(
                    ref,
                    f"histogram_quantile({q}, sum by (route, le) "
                    f"({rate('sotag_request_seconds_bucket', LATENCY_ROUTES)}))",
                    f"p{round(q * 100)} {{{{route}}}}",
                )
                for ref, q in (("A", 0.5), ("B", 0.95), ("C", 0.99))
            ],
            unit="s",
        ),
        timeseries(
            "Answers by version and arm",
            "Questions answered per second by the version that answered and its arm: the canary split "
            "(gateway.canary_percent of the questions go to @challenger).",
            (12, 13, 12, 8),
            [target("A", f"sum by (version, arm) ({rate('sotag_answers_total')})", "v{{version}} {{arm}}")],
            unit="reqps",
        ),
        timeseries(
            "Shadow agreement",
            "With a shadow (gateway.shadow=challenger): the share of compared questions whose first tag is the same in "
            "both answers, the mean Jaccard similarity of the tag sets, and questions the shadow dropped.",
            (0, 21, 12, 8),
            [
                target(
                    "A",
                    f"(sum by (version) ({rate('sotag_shadow_top1_agree_total')})"
                    f" or sum by (version) ({rate('sotag_shadow_compared_total')}) * 0)"
                    f" / sum by (version) ({rate('sotag_shadow_compared_total')})",
                    "top-1 agreement v{{version}}",
                ),
                target(
                    "B",
                    f"sum by (version) ({rate('sotag_shadow_jaccard_sum')})"
                    f" / sum by (version) ({rate('sotag_shadow_jaccard_count')})",
                    "mean Jaccard v{{version}}",
                ),
            ],
            unit="percentunit",
        ),
        panel(
            "bargauge",
            "Predicted tags (top 10, last hour)",
            "The share of answers carrying each tag over the last hour, the ten most predicted.",
            (12, 21, 6, 8),
            [
                target(
                    "A",
                    "topk(10, sum by (tag) (increase(sotag_predicted_tags_total[1h]))"
                    " / scalar(sum(increase(sotag_answers_total[1h]))))",
                    "{{tag}}",
                    table=False,
                )
            ],
            unit="percentunit",
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "orientation": "horizontal",
                "displayMode": "gradient",
                "showUnfilled": True,
            },
            min=0,
            max=1,
        ),
        timeseries(
            "No-tag share",
            "The share of answers with no tag above the threshold, by version (the drift job's no_tag_share, live).",
            (18, 21, 6, 8),
            [
                target(
                    "A",
                    f"sum by (version) ({rate('sotag_no_tag_answers_total')})"
                    f" / sum by (version) ({rate('sotag_answers_total')})",
                    "v{{version}}",
                )
            ],
            unit="percentunit",
        ),
        timeseries(
            "Drift severity by family",
            "The drift job's level per family and window over time (0 ok, 1 warn, 2 alert), from its newest summary.",
            (0, 29, 8, 8),
            [target("A", 'max by (family, window) (sotag_drift_severity{family!="all"})', "{{family}} {{window}}")],
            mappings=SEVERITY_MAPPINGS,
            min=0,
            max=2,
        ),
        timeseries(
            "Drift statistics by family",
            "The statistics the drift rules read (monitoring/thresholds.json), per family and window.",
            (8, 29, 8, 8),
            [
                target(
                    "A",
                    "max by (family, statistic, window) (sotag_drift_statistic)",
                    "{{family}} {{statistic}} {{window}}",
                )
            ],
        ),
        timeseries(
            "Live precision@1 / recall@5",
            "From the tags askers kept (POST /feedback), per version that answered, over the last hour "
            "(SotagLivePrecisionLow: P@1 under 0.5 on at least 50 answers).",
            (16, 29, 8, 8),
            [
                target("A", ratio_per_version("sotag_live_precision_at_1"), "P@1 v{{version}}"),
                target("B", ratio_per_version("sotag_live_recall_at_5"), "R@5 v{{version}}"),
            ],
            unit="percentunit",
            min=0,
            max=1,
        ),
        timeseries(
            "Prediction log",
            "Rows written per second, rows waiting for the database, rows dropped (SotagPredictionLogDropping).",
            (0, 37, 12, 8),
            [
                target("A", f"sum({rate('sotag_prediction_log_written')})", "written/s"),
                target("B", "sum(sotag_prediction_log_pending)", "pending"),
                target("C", "sum(increase(sotag_prediction_log_dropped[$__rate_interval]))", "dropped"),
            ],
        ),
        table(
            "Alerts firing",
            "The alert rules (monitoring/observe/alerts.yml) firing now.",
            (12, 37, 12, 8),
            [target("A", 'ALERTS{alertstate="firing"}', table=True)],
        ),
    ]


def dashboard() -> dict[str, Any]:
    numbered = [{"id": i, **p} for i, p in enumerate(panels(), start=1)]
    return {
        "uid": "sotag-gateway",
        "title": "sotag: gateway, drift and live quality",
        "description": "Generated by sotag.monitoring.observe.dashboard; edit the generator, not this file.",
        "tags": ["sotag"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "utc",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "annotations": {"list": []},
        "templating": {"list": []},
        "links": [],
        "panels": numbered,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(path: Path = DASHBOARD) -> int:
    path.write_text(render())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
