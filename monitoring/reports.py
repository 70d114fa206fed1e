"""The drift job's reports folder, written from the job's result: each month's Evidently report(s), the plots.

The summary (`summary.json`, infra/drift_summary.py) is written last, once the MLflow run (if any) is known.
Nothing here is read back by the job.
"""

from __future__ import annotations

from pathlib import Path

from sotag.monitoring.job import DriftResult


def write_reports(folder: Path, result: DriftResult, figures: dict[str, bytes]) -> None:
    """`folder/<month>.html`, `<month>-predictions.html` where there is one, and each figure (name -> PNG).

    OSError when the folder cannot be written (full disk, a file in its place).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for month in result.months:
        (folder / month.report).write_text(month.html)
        if month.predictions_html is not None:
            (folder / month.predictions_report).write_text(month.predictions_html)
    for name, png in figures.items():
        (folder / name).write_bytes(png)
