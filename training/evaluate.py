"""`sotag evaluate`: any model (registry URI or model folder) on any questions file or window, as an MLflow run.

What it computes (tagger.metrics, one metrics module): the in-vocabulary figures (the model's own tags, questions
carrying one), the all-tags figures (every tagged question of the window, the model's 5 best suggestions against
every tag its asker chose), vocabulary coverage (share of the askers' tag occurrences the model can suggest), a
per-tag table and the tags the askers used most that the model cannot suggest.

Where it logs: the `evaluation` experiment (not the training one, so `sotag compare` and the training-runs view
hold training runs only), one run per evaluation, tagged with the model's name, version and URI; for a registered
version the metrics are also recorded against its MLflow 3 LoggedModel and the evaluation dataset
(`mlflow.log_metrics(..., model_id=..., dataset=...)`), so the model's page lists every evaluation of it.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import mlflow.data
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.preprocessing import MultiLabelBinarizer

from sotag.data import describe_data, filter_sources, load_questions
from sotag.data.paths import as_data_paths
from sotag.infra.tracking import FluentRuns, TrackingSettings
from sotag.registry.gate import model_scores
from sotag.registry.resolve import ResolvedModel, resolve
from sotag.settings import DEFAULT_MODEL_URI
from sotag.tagger.errors import DataError
from sotag.tagger.metrics import all_tags_from_scores, evaluate, expected_calibration_error, served_no_tag_share
from sotag.tagger.vocabulary import restrict_tags
from sotag.training.mlflow_log import data_name, dataset_source, light_frame

EVALUATION_EXPERIMENT = "evaluation"


@dataclass(frozen=True)
class EvaluateConfig:
    """One evaluation: which model, which questions (files or folders, optionally a [start, end) window of them)."""

    data: tuple[Path, ...]
    model_uri: str = DEFAULT_MODEL_URI
    start: str | None = None  # questions created on or after this date (YYYY-MM-DD)
    end: str | None = None  # and before this one
    exclude_sources: tuple[str, ...] = ()
    experiment: str = EVALUATION_EXPERIMENT
    top_missing: int = 20
    batch_size: int = 2048

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", as_data_paths(self.data))


@dataclass(frozen=True)
class EvaluationReport:
    """The figures of one model on one set of questions.

    `metrics`: in-vocabulary (`precision_at_1`, …, `n_evaluated`), all-tags (`precision_at_1_all`, …, `n_all`) and
    `vocabulary_coverage`; `per_tag`: tag, support, predicted, precision, recall, f1 (the model's tags);
    `missing`: tag, count: the askers' most used tags outside the vocabulary, most used first.
    """

    metrics: dict[str, float]
    per_tag: pd.DataFrame
    missing: pd.DataFrame
    n_questions: int


@dataclass(frozen=True)
class EvaluateOutcome:
    report: EvaluationReport
    model: ResolvedModel = field(repr=False)
    run_id: str
    model_id: str | None


def window(frame: pd.DataFrame, config: EvaluateConfig) -> pd.DataFrame:
    """The questions of `frame` in the configured window that carry at least one tag; DataError when none does."""
    frame = filter_sources(frame, config.exclude_sources)
    keep = pd.Series(True, index=frame.index)
    if config.start:
        keep &= frame["creation_date"] >= pd.Timestamp(config.start)
    if config.end:
        keep &= frame["creation_date"] < pd.Timestamp(config.end)
    selected = frame[keep]
    span = f"{config.start or 'start of data'} .. {config.end or 'end of data'}"
    if selected.empty:
        first, last = frame["creation_date"].min(), frame["creation_date"].max()
        raise DataError(f"--start/--end: no questions in {span} (the data spans {first} to {last})")
    tagged = selected[selected["tags"].map(len) > 0].reset_index(drop=True)
    if tagged.empty:
        raise DataError(f"--data: none of the {len(selected)} questions in {span} carries a tag; nothing to score")
    return tagged


def missing_tags(vocabulary: list[str], tags: pd.Series, top: int) -> pd.DataFrame:
    """The `top` tags the askers used most that are not in `vocabulary`, with their counts (ties by name)."""
    known = set(vocabulary)
    counts = Counter(t for row in tags for t in row if t not in known)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return pd.DataFrame(ranked, columns=["tag", "count"])


def score(model: ResolvedModel, questions: pd.DataFrame, top_missing: int = 20, batch: int = 2048) -> EvaluationReport:
    """Every figure of `model` on `questions` (each carrying at least one tag). DataError when none carries one of
    the model's tags (the in-vocabulary figures are then undefined)."""
    tagger = model.tagger
    vocabulary = list(tagger.vocabulary)
    scores = model_scores(tagger, questions, batch, model.name)
    y_true = MultiLabelBinarizer(classes=vocabulary).fit_transform(restrict_tags(questions["tags"], vocabulary))
    config = tagger.config
    evaluation = evaluate(scores, y_true, vocabulary, config.top_k, config.threshold, config.min_tags)
    metrics = dict(evaluation.metrics)
    metrics.update(all_tags_from_scores(scores, vocabulary, questions["tags"].tolist()))
    # What a user sees: questions given no tag at the served threshold, and how far scores are from probabilities.
    metrics["no_tag_share"] = served_no_tag_share(scores, config.threshold, config.min_tags)
    metrics["ece"] = expected_calibration_error(scores, vocabulary, questions["tags"].tolist())
    missing = missing_tags(vocabulary, questions["tags"], top_missing)
    return EvaluationReport(metrics, evaluation.per_tag, missing, len(questions))


def seen_in_training(questions: pd.DataFrame, split_date: str | None) -> int:
    """How many of `questions` were asked before `split_date` (the model's card: it was trained on questions
    before that date), so possibly in its training window; 0 when the date is unknown (a model folder)."""
    if not split_date:
        return 0
    return int((questions["creation_date"] < pd.Timestamp(split_date)).sum())


def overlap_note(n_seen: int, n_questions: int, split_date: str | None) -> str | None:
    """What `sotag evaluate` says when some questions fall inside the model's training window, else None."""
    if n_seen == 0:
        return None
    return (
        f"note: {n_seen} of these {n_questions} questions were asked before {split_date}, inside the model's "
        f"training window (it was trained on questions before that date): its figures on them are optimistic; "
        f"--start {split_date} scores only later questions"
    )


def evaluate_line(metrics: dict[str, float]) -> str:
    """The last line `sotag evaluate` prints (an interface: names and format are kept)."""
    m = metrics
    return (
        f"evaluate: P@1={m['precision_at_1']:.4f} R@5={m['recall_at_5']:.4f} P@1_all={m['precision_at_1_all']:.4f} "
        f"R@5_all={m['recall_at_5_all']:.4f} coverage={m['vocabulary_coverage']:.4f} n={int(m['n_all'])} "
        f"no_tag_share={m['no_tag_share']:.4f} ece={m['ece']:.4f}"
    )


def _model_id(client: MlflowClient, model: ResolvedModel) -> str | None:
    """The MLflow 3 LoggedModel of a registered version: its `model_id`, else its source `models:/m-…` (what
    `mlflow.register_model(info.model_uri)` records); None for a model folder or a version logged before MLflow 3."""
    if model.version is None:
        return None
    mv = client.get_model_version(model.name, model.version)
    if getattr(mv, "model_id", None):
        return mv.model_id
    source = mv.source or ""
    return source.removeprefix("models:/") if re.fullmatch(r"models:/m-[0-9a-f]+", source) else None


def evaluate_model(config: EvaluateConfig, runs: FluentRuns) -> EvaluateOutcome:
    """Load the model and the questions, score, and log one fluent run in `runs`' experiment (the entry point's
    `use_fluent` with `config.experiment`); the model is resolved through a client of `runs`' store.

    Raises DataError / InputError (unknown file, empty window, unknown model: exit 2 at the CLI); MLflow and
    OS errors propagate (a component fault: exit 1).
    """
    frame, _ = load_questions(config.data)
    questions = window(frame, config)
    model = resolve(config.model_uri, runs.settings)
    report = score(model, questions, config.top_missing, config.batch_size)
    report.metrics["n_before_split_date"] = float(seen_in_training(questions, model.card.split_date))
    model_id = _model_id(runs.settings.client(), model)
    version = f"v{model.version}" if model.version else "folder"
    with mlflow.start_run(run_name=f"evaluate-{model.name}-{version}", experiment_id=runs.experiment_id) as run:
        mlflow.set_tags(
            {
                "sotag.stage": "evaluate",
                "model_name": model.name,
                "model_version": model.version or "",
                "model_uri": config.model_uri,
                "model_alias": model.alias or "",
                "data_source": describe_data([p.resolve() for p in config.data]),
                "model_split_date": model.card.split_date or "",
            }
        )
        # Under `mlflow run -e evaluate` the launcher already logged its entry-point parameters on this run.
        already = mlflow.get_run(run.info.run_id).data.params
        params = {
            "start": config.start or "",
            "end": config.end or "",
            "exclude_sources": ",".join(config.exclude_sources),
            "n_questions": report.n_questions,
            "n_tags": len(model.tagger.vocabulary),
            "vectorizer": model.tagger.config.vectorizer,
        }
        mlflow.log_params({k: v for k, v in params.items() if k not in already})
        dataset = mlflow.data.from_pandas(
            light_frame(questions), source=dataset_source(config.data), name=f"{data_name(config.data)}:evaluate"
        )
        mlflow.log_input(dataset, context="evaluation")
        mlflow.log_metrics(report.metrics, model_id=model_id, dataset=dataset)
        with tempfile.TemporaryDirectory() as tmp:
            for name, table in (("per_tag_metrics.csv", report.per_tag), ("missing_tags.csv", report.missing)):
                path = Path(tmp) / name
                table.to_csv(path, index=False)
                mlflow.log_artifact(str(path), "evaluation")
    return EvaluateOutcome(report, model, run.info.run_id, model_id)


def report_lines(outcome: EvaluateOutcome, config: EvaluateConfig, settings: TrackingSettings) -> list[str]:
    """What `sotag evaluate` prints; the last line is `evaluate_line`."""
    r, model = outcome.report, outcome.model
    m = r.metrics
    named = f"models:/{model.name}/{model.version}" if model.version else config.model_uri
    span = f"{config.start or 'start of data'} .. {config.end or 'end of data'}"
    # Printed: the tags these questions carry or were served (on a few questions most of the vocabulary is neither:
    # rows of zeros). The run's CSV keeps every tag.
    seen = r.per_tag[(r.per_tag["support"] > 0) | (r.per_tag["predicted"] > 0)]
    per_tag = (
        seen.head(15).to_string(index=False, float_format=lambda v: f"{v:.3f}")
        if len(seen)
        else "(none of the model's tags was asked or served)"
    )
    missing = ", ".join(f"{t} ({c})" for t, c in r.missing.itertuples(index=False)) or "(none)"
    return [
        f"evaluate: {named} ({len(model.tagger.vocabulary)} tags) on {describe_data(config.data)} {span}: "
        f"{r.n_questions} questions with tags, {int(m['n_evaluated'])} carry one of the model's tags",
        f"in-vocabulary: P@1={m['precision_at_1']:.4f} R@3={m['recall_at_3']:.4f} R@5={m['recall_at_5']:.4f} "
        f"F1@3={m['f1_at_3']:.4f}",
        f"all tags:      P@1={m['precision_at_1_all']:.4f} R@3={m['recall_at_3_all']:.4f} "
        f"R@5={m['recall_at_5_all']:.4f} F1@3={m['f1_at_3_all']:.4f} "
        f"vocabulary coverage={m['vocabulary_coverage']:.4f}",
        f"per tag (the {min(15, len(seen))} most asked of the {len(seen)} asked or served; every tag in the run's "
        "evaluation/per_tag_metrics.csv):",
        per_tag,
        f"most used tags the model cannot suggest (top {config.top_missing}): {missing}",
        *filter(None, [overlap_note(int(m.get("n_before_split_date", 0)), r.n_questions, model.card.split_date)]),
        f"run:   {outcome.run_id}  (experiment '{config.experiment}', tracking: {settings.tracking_uri})"
        + (f"; metrics linked to logged model {outcome.model_id}" if outcome.model_id else ""),
        evaluate_line(m),
    ]
