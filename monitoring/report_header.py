"""The header at the top of each Evidently report sotag writes: what it compares and what sotag concluded.

A report opened alone (from the reports folder, the MLflow run, a mail) otherwise shows Evidently's widgets and
its own "drift detected" labels only: not the month, the model, the baseline, nor sotag's verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

# Characters Markdown would read as markup inside a line (the text widget renders Markdown).
_MARKUP = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>#|"})


def _md(text: str) -> str:
    return text.translate(_MARKUP)


@dataclass(frozen=True)
class ModelLine:
    """The served model, as the header names it."""

    name: str
    version: str | None
    alias: str | None
    run_id: str | None

    def __str__(self) -> str:
        version = f" v{self.version}" if self.version else ""
        alias = f" (@{self.alias})" if self.alias else ""
        run = f", MLflow run {self.run_id}" if self.run_id else ""
        return f"{self.name}{version}{alias}{run}"


@dataclass(frozen=True)
class ReportHeader:
    """`what`: the families the report shows (`embeddings and text`); `period`: `month` or `window`; `label` and
    `span`: which one; `questions`: those the report compares (`400 questions`); `baseline`: what they are compared
    with; `verdicts`: each family's verdict in words; `month_verdict`: the month's level over every family."""

    what: str
    period: str
    label: str
    span: str
    questions: str
    model: ModelLine
    baseline: str
    verdicts: dict[str, str]
    month_verdict: str

    def markdown(self) -> str:
        verdicts = "; ".join(f"{family}: {verdict}" for family, verdict in self.verdicts.items())
        lines = [
            f"## sotag drift: {_md(self.what)}, {self.period} {_md(self.label)}",
            "",
            f"- **{self.period.capitalize()}**: {_md(self.label)} ({_md(self.span)}), {_md(self.questions)}",
            f"- **Model**: {_md(str(self.model))}",
            f"- **Baseline**: {_md(self.baseline)}",
            f"- **sotag's verdict**: {_md(verdicts)}; the whole {self.period}: {self.month_verdict}",
            "",
            "Evidently's own labels below (\"drift detected\" and the like) are its default tests, not sotag's "
            "verdict: that comes from the rules of sotag's thresholds file (summary.json holds every reason).",
        ]
        return "\n".join(lines)
