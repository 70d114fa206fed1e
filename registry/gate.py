"""The promotion gate: re-score challenger and champion on one evaluation window, then decide.

Both models are scored now, on the same questions, so a champion evaluated long ago on an
older window is never compared from stale numbers. The primary metric (default: all-tags F1@3)
scores each model's five best suggestions on EVERY question of the window against EVERY tag its
asker chose (tagger.metrics, all-tags section), so models with different vocabularies are
compared on what users get, with no restriction to either vocabulary. The in-vocabulary figures
are kept beside it: when the two vocabularies differ (top-100 vs top-500 tags) those are scored
over their union (a model simply never ranks a tag it does not know; the truth is the same for both).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.preprocessing import MultiLabelBinarizer
from tqdm import tqdm

from sotag.data import filter_sources, load_questions, time_split
from sotag.data.paths import as_data_paths
from sotag.registry.behaviour import DEFAULT_CASES, BehaviourReport
from sotag.registry.card import ModelCard
from sotag.registry.live import LiveGate
from sotag.tagger.errors import DataError
from sotag.tagger.metrics import all_tags_from_scores, evaluate
from sotag.tagger.model import Tagger
from sotag.tagger.vocabulary import restrict_tags

REPORTED = (
    "f1_at_3_all",
    "precision_at_1_all",
    "recall_at_5_all",
    "vocabulary_coverage",
    "precision_at_1",
    "f1_at_3",
    "recall_at_5",
    "tag_coverage",
    "f1_micro",
)
METRIC_LABELS = {
    "f1_at_3_all": "F1@3 all",
    "precision_at_1_all": "P@1 all",
    "recall_at_5_all": "R@5 all",
    "vocabulary_coverage": "vocab cov",
    "precision_at_1": "P@1",
    "f1_at_3": "F1@3",
    "recall_at_5": "R@5",
    "tag_coverage": "coverage",
}
GATE_METRICS = (
    "f1_at_3_all",
    "f1_at_5_all",
    "precision_at_1_all",
    "precision_at_3_all",
    "recall_at_3_all",
    "recall_at_5_all",
    "f1_at_3",
    "f1_at_5",
    "precision_at_1",
    "precision_at_3",
    "recall_at_3",
    "recall_at_5",
    "f1_micro",
)


@dataclass(frozen=True)
class GateConfig:
    """How `promote` judges a challenger."""

    data: tuple[Path, ...]  # the questions: files or folders read together (a single path is held as a tuple of one)
    primary_metric: str = "f1_at_3_all"  # what users get, comparable across vocabularies (module docstring)
    floor_metric: str = "f1_at_3"
    floor: float = 0.45
    floor_mode: Literal["fixed", "champion"] = "fixed"  # "champion": never above the champion's own (settings)
    min_delta: float = 0.0  # the challenger must reach champion + min_delta on the primary metric
    eval_start: str | None = None  # default: the challenger's split date
    eval_end: str | None = None  # default: the challenger's eval end
    exclude_sources: tuple[str, ...] | None = None  # default: what the challenger was trained with
    mirror_stages: bool = False
    batch_size: int = 2048
    # The challenger's single-question p50, measured in-process on a fixed sample of the window, must be
    # within this budget: the default lets a TF-IDF model (~0.5 ms) through, not an SBERT one on a CPU.
    max_latency_ms: float = 5.0
    latency_sample: int = 50
    # CheckList-style cases (registry/behaviour_cases.json); None runs none.
    behaviour_cases: Path | None = DEFAULT_CASES
    # A champion whose files fail their sha256 or do not load cannot be compared against: by default nothing is
    # promoted over it (BrokenChampion, exit 3); True judges the challenger on the floor alone and says so.
    replace_broken_champion: bool = False
    # `--live`: after the offline checks pass, judge the prediction log's evidence too (registry/live.py); None: not.
    live: LiveGate | None = None

    def __post_init__(self) -> None:
        if self.data is not None:  # None: a gate that judges figures only, never reads questions
            object.__setattr__(self, "data", as_data_paths(self.data))


@dataclass(frozen=True)
class Window:
    start: str
    end: str | None
    exclude_sources: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.start} .. {self.end or 'end of data'}"


@dataclass(frozen=True)
class Decision:
    """What the metrics (and then the extra checks) say: promote or not, and why in one line."""

    promote: bool
    reason: str
    metrics: dict[str, dict[str, float]]  # "challenger"/"champion" -> metric -> value


def window_for(config: GateConfig, challenger: ModelCard) -> Window:
    start = config.eval_start or challenger.split_date
    if not start:
        raise DataError("--eval-start: the challenger has no split_date tag; name the evaluation window")
    end = config.eval_end or challenger.eval_end or None
    exclude = config.exclude_sources if config.exclude_sources is not None else challenger.exclude_sources
    return Window(start=start, end=end, exclude_sources=exclude)


def evaluation_frame(data: Sequence[Path], window: Window, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The window's questions, from `frame` when the caller already read the data set."""
    if frame is None:
        frame, _ = load_questions(data)
    frame = filter_sources(frame, window.exclude_sources)
    return time_split(frame, window.start, window.end, flag="--eval-start").evaluation


def model_scores(tagger: Tagger, frame: pd.DataFrame, batch: int = 2048, label: str = "model") -> np.ndarray:
    """The model's scores on `frame`'s questions: (len(frame), len(tagger.vocabulary)) float64, in batches.

    float64, not float32: a calibrated version's probabilities keep the raw scores' order by a tie-break of 1e-6
    times the raw score's difference (tagger.calibration), which float32 rounds away, reordering tied tags."""
    out = np.zeros((len(frame), len(tagger.vocabulary)), dtype=np.float64)
    titles, bodies = frame["title"].tolist(), frame["body"].tolist()
    starts = range(0, len(frame), batch)
    # A context manager: the bar is closed (its line cleared) however the loop ends, so an error prints on a clean line.
    with tqdm(starts, desc=f"scoring {label}", leave=False, mininterval=1, disable=None) as bar:
        for start in bar:
            stop = start + batch
            out[start:stop] = tagger.scores(titles[start:stop], bodies[start:stop])
    return out


def score_models(models: dict[str, Tagger], frame: pd.DataFrame, batch_size: int = 2048) -> dict[str, dict[str, float]]:
    """Every metric of each model on `frame`: the in-vocabulary ones over the union of their vocabularies, the
    all-tags ones (`*_all`, `vocabulary_coverage`) on every question against its full tag list."""
    union = sorted({t for tagger in models.values() for t in tagger.vocabulary})
    index = {t: i for i, t in enumerate(union)}
    y_true = MultiLabelBinarizer(classes=union).fit_transform(restrict_tags(frame["tags"], union))
    asked = frame["tags"].tolist()
    out = {}
    for label, tagger in models.items():
        columns = np.array([index[t] for t in tagger.vocabulary])
        own = model_scores(tagger, frame, batch_size, label)
        scores = np.zeros((len(frame), len(union)), dtype=np.float64)
        scores[:, columns] = own
        # Coverage stays relative to the model's own vocabulary: the share of its tags it ever predicts.
        served = tagger.config
        result = evaluate(scores, y_true, union, served.top_k, served.threshold, served.min_tags)
        metrics = dict(result.metrics)
        metrics.update(all_tags_from_scores(own, tagger.vocabulary, asked))
        predicted = result.per_tag.set_index("tag")["predicted"]
        metrics["tag_coverage"] = float((predicted.loc[list(tagger.vocabulary)] > 0).mean())
        out[label] = metrics
    return out


def effective_floor(config: GateConfig, champion: dict[str, float] | None) -> tuple[float, str]:
    """The floor a challenger must reach, and how it is shown: `config.floor`, or with `floor_mode="champion"` and a
    champion scored on the same window, the lower of it and the champion's own floor metric there."""
    if config.floor_mode == "fixed" or champion is None or champion[config.floor_metric] >= config.floor:
        return config.floor, f"the floor {config.floor:.4f}"
    value = champion[config.floor_metric]
    return value, f"the floor {value:.4f} (the champion's own on this window, under the configured {config.floor:.4f})"


def judge(
    config: GateConfig,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    champion_version: str | None,
    note: str = "",
) -> Decision:
    """Promote when the challenger passes the floor and is at least as good as the champion."""
    primary, floor_metric = config.primary_metric, config.floor_metric
    p_label = METRIC_LABELS.get(primary, primary)
    f_label = METRIC_LABELS.get(floor_metric, floor_metric)
    metrics = {"challenger": {k: round(challenger[k], 4) for k in {*REPORTED, primary, floor_metric}}}
    if champion is not None:
        metrics["champion"] = {k: round(champion[k], 4) for k in {*REPORTED, primary, floor_metric}}
    suffix = f" {note}" if note else ""
    floor, floor_shown = effective_floor(config, champion)
    if challenger[floor_metric] < floor:
        return Decision(False, f"{f_label} {challenger[floor_metric]:.4f} is below {floor_shown}{suffix}", metrics)
    if champion is None:
        first = "first champion: " if champion_version is None else ""
        return Decision(
            True,
            f"{first}{f_label} {challenger[floor_metric]:.4f} passes the floor {config.floor:.4f}{suffix}",
            metrics,
        )
    needed = champion[primary] + config.min_delta
    comparison = f"{p_label} {challenger[primary]:.4f} vs champion v{champion_version}'s {champion[primary]:.4f}"
    if challenger[primary] >= needed:
        floor_line = f"{f_label} {challenger[floor_metric]:.4f} passes {floor_shown}"
        if challenger[primary] < champion[primary]:  # through only because the margin is negative: say so
            allowed = f"worse than the champion by {champion[primary] - challenger[primary]:.4f}, within the "
            allowed += f"--min-delta {config.min_delta:.4f} allowed"
            return Decision(True, f"{comparison}: {allowed} ({floor_line}){suffix}", metrics)
        return Decision(True, f"{comparison} ({floor_line}){suffix}", metrics)
    margin = f" + min delta {config.min_delta:.4f}" if config.min_delta else ""
    return Decision(False, f"{comparison}{margin}: not better, champion kept{suffix}", metrics)


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    n: int


def measure_latency(tagger: Tagger, frame: pd.DataFrame, n: int, seed: int = 0) -> Latency:
    """Single-question latency, text in -> tags out, on a fixed (seeded) sample of the window, in-process."""
    sample = frame.sample(n=min(n, len(frame)), random_state=seed)
    pairs = list(zip(sample["title"], sample["body"], strict=True))
    for title, body in pairs[:5]:  # warm-up: first calls pay lazy loading (SBERT weights, caches)
        tagger.suggest([title], [body])
    times = []
    for title, body in pairs:
        start = time.perf_counter()
        tagger.suggest([title], [body])
        times.append((time.perf_counter() - start) * 1000)
    return Latency(float(np.percentile(times, 50)), float(np.percentile(times, 99)), len(times))


def latency_refusal(config: GateConfig, latency: Latency) -> str | None:
    """Why the challenger's single-question p50 refuses it, or None when it fits the budget."""
    if latency.p50_ms <= config.max_latency_ms:
        return None
    return (
        f"single-question p50 {latency.p50_ms:.2f} ms is over the latency budget of {config.max_latency_ms:g} ms "
        "(--max-latency-ms)"
    )


def behaviour_refusal(behaviour: BehaviourReport) -> str | None:
    """Why the challenger's behavioural cases refuse it, or None when no required case failed."""
    if not behaviour.failed_required:
        return None
    failed = "; ".join(f"{o.case.id} ({o.detail})" for o in behaviour.failed_required[:5])
    return f"{len(behaviour.failed_required)} required behavioural case(s) failed: {failed}"


def extra_checks(
    config: GateConfig, verdict: Decision, latency: Latency, behaviour: BehaviourReport | None
) -> Decision:
    """A decision the metrics would promote must also pass the behavioural cases and fit the latency budget."""
    if not verdict.promote:
        return verdict
    refusal = (behaviour_refusal(behaviour) if behaviour is not None else None) or latency_refusal(config, latency)
    return Decision(False, refusal, verdict.metrics) if refusal else verdict


def overlap_note(champion: ModelCard, window: Window) -> str:
    """A champion trained on questions inside the window is scored on data it has seen."""
    trained_until = champion.split_date
    if trained_until and pd.Timestamp(trained_until) > pd.Timestamp(window.start):
        return (
            f"(note: the champion was trained on questions up to {trained_until}, inside the evaluation window "
            f"from {window.start}, so its figures are optimistic)"
        )
    return ""
