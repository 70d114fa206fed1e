"""The drift job's summary (`summary.json` in each reports folder): one typed schema, one writer, one reader.

Monitoring writes it once per job (`write_summary`); the demo app reads it (`read_summary`,
`latest_summary`). On disk, each month is one JSON object holding its fixed fields (month, n, severity,
reasons, report) and its statistics side by side, as the files before the schema version had them:

    {"schema_version": 2, "reference": {stat: value}, "baselines": {family: words}, "notes": [...],
     "months": [{"month": "2018-06", "n": 400, "severity": "alert", "reasons": [...],
                 "report": "2018-06.html", "new_tags": [["polars", 12], ...],
                 "embedding_drift_auc": 0.91, "oov_share": 0.61, ...}],
     "worst": "alert", "seconds": 12.3, "timings": {"embed_s": 4.2, ...},
     "mlflow_run_id": "…", "mlflow_experiment_id": "…",      # the run ids only when the job logged to MLflow
     "windows": {"current": "2026-11-30..2026-12-06", "reference": "2026-10-31..2026-11-29", ...}}  # rolling only

A file without `schema_version` is read as version 1 (its layout is the same). Version 2 adds each month's
`new_tags` (its most used tags the champion cannot suggest, [tag, count] pairs, the vocabulary family); a
version 1 file reads with none. Version 3 adds each month's `family_severity` ({family: level} for each family
judged that month) and the summary's `rule_families` ({statistic: family} for each statistic a rule reads), which
the gateway exports to Prometheus (serving/metrics.py); earlier files read with neither.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 3
SUMMARY_FILE = "summary.json"
_MONTH_FIELDS = ("month", "n", "severity", "reasons", "report", "new_tags", "family_severity")


class SummaryError(ValueError):
    """A summary file that cannot be read as this schema; the message names the file and the problem."""


@dataclass(frozen=True)
class MonthSummary:
    month: str  # YYYY-MM
    n: int  # questions checked
    severity: str  # "ok", "warn" or "alert"; "unjudged" when no family had enough questions
    reasons: tuple[str, ...]  # one line per rule at warn or alert
    report: str  # the month's Evidently report, a file name in the reports folder
    values: dict[str, float] = field(default_factory=dict)  # statistic -> value (NaN where undefined)
    new_tags: tuple[tuple[str, int], ...] = ()  # most used tags the champion cannot suggest, with their counts
    family_severity: dict[str, str] = field(default_factory=dict)  # family -> "ok", "warn" or "alert" (judged ones)

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "n": self.n,
            "severity": self.severity,
            "reasons": list(self.reasons),
            "report": self.report,
            "new_tags": [[tag, count] for tag, count in self.new_tags],
            "family_severity": dict(self.family_severity),
            **self.values,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MonthSummary:
        values = {k: v for k, v in raw.items() if k not in _MONTH_FIELDS}
        return cls(
            month=str(raw["month"]),
            n=int(raw["n"]),
            severity=str(raw["severity"]),
            reasons=tuple(str(r) for r in raw["reasons"]),
            report=str(raw["report"]),
            values=values,
            new_tags=tuple((str(tag), int(count)) for tag, count in raw.get("new_tags", ())),
            family_severity={str(k): str(v) for k, v in raw.get("family_severity", {}).items()},
        )


@dataclass(frozen=True)
class DriftSummary:
    reference: dict[str, float]  # the baseline value of each statistic a "drop" rule reads
    baselines: dict[str, str]  # family -> what it was compared with, in words
    notes: tuple[str, ...]
    months: tuple[MonthSummary, ...]
    worst: str
    seconds: float
    timings: dict[str, float]
    min_questions: dict[str, int] = field(default_factory=dict)  # family -> its minimum month sample
    mlflow_run_id: str | None = None
    mlflow_experiment_id: str | None = None
    schema_version: int = SCHEMA_VERSION
    # Rolling windows (`sotag drift --current-days`): {"current": "2026-11-30..2026-12-06", "reference": ...,
    # "current_span"/"reference_span": "<start>..<end> UTC" (end excluded)}; empty for calendar months.
    windows: dict[str, str] = field(default_factory=dict)
    rule_families: dict[str, str] = field(default_factory=dict)  # statistic -> the family of the rule reading it

    def with_run(self, run_id: str, experiment_id: str) -> DriftSummary:
        """The same summary naming the MLflow run that logged it (the demo app links to it)."""
        return replace(self, mlflow_run_id=run_id, mlflow_experiment_id=experiment_id)

    def month_rows(self) -> list[dict[str, Any]]:
        """One flat dict per month: its fields and its statistics."""
        return [m.to_dict() for m in self.months]

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schema_version": self.schema_version,
            "reference": self.reference,
            "baselines": self.baselines,
            "notes": list(self.notes),
            "months": self.month_rows(),
            "worst": self.worst,
            "seconds": self.seconds,
            "timings": self.timings,
            "min_questions": self.min_questions,
            "rule_families": self.rule_families,
        }
        if self.windows:
            body["windows"] = self.windows
        if self.mlflow_run_id is not None:
            body |= {"mlflow_run_id": self.mlflow_run_id, "mlflow_experiment_id": self.mlflow_experiment_id}
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DriftSummary:
        """Raises SummaryError (a newer schema), KeyError / TypeError / ValueError (a missing or odd field)."""
        version = int(raw.get("schema_version", 1))
        if version > SCHEMA_VERSION:
            raise SummaryError(f"schema version {version} is newer than this sotag reads ({SCHEMA_VERSION})")
        return cls(
            reference=dict(raw["reference"]),
            baselines=dict(raw.get("baselines", {})),
            notes=tuple(raw.get("notes", ())),
            months=tuple(MonthSummary.from_dict(m) for m in raw["months"]),
            worst=str(raw["worst"]),
            seconds=float(raw["seconds"]),
            timings=dict(raw.get("timings", {})),
            min_questions={k: int(v) for k, v in raw.get("min_questions", {}).items()},
            mlflow_run_id=raw.get("mlflow_run_id"),
            mlflow_experiment_id=raw.get("mlflow_experiment_id"),
            schema_version=version,
            windows={str(k): str(v) for k, v in raw.get("windows", {}).items()},
            rule_families={str(k): str(v) for k, v in raw.get("rule_families", {}).items()},
        )


def write_summary(folder: Path, summary: DriftSummary) -> Path:
    """`folder/summary.json`; OSError when the folder cannot be written."""
    path = folder / SUMMARY_FILE
    path.write_text(summary.to_json())
    return path


def read_summary(path: Path) -> DriftSummary:
    """The summary in `path`; SummaryError naming the file when it is not one."""
    try:
        return DriftSummary.from_dict(json.loads(Path(path).read_text()))
    except SummaryError as exc:
        raise SummaryError(f"{path}: {exc}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SummaryError(f"{path}: not a drift summary ({type(exc).__name__}: {exc})") from None


def latest_summary(reports_dir: Path) -> tuple[Path, DriftSummary] | None:
    """The newest finished job's folder and summary under `reports_dir` (None: no job yet).

    A job in progress writes under a hidden `.partial-…` name, so it is never taken for a finished one.
    """
    runs = sorted(
        (p for p in Path(reports_dir).glob(f"*/{SUMMARY_FILE}") if not p.parent.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
    )
    if not runs:
        return None
    return runs[-1].parent, read_summary(runs[-1])
