"""The monthly drift job: each month against its baselines, Evidently reports, MLflow run, severity.

Each family of statistics has its own baseline (monitoring/baselines.py): embeddings and text against
the reference months, predictions against questions the champion did not train on, supervised figures
against its held-out ones. Per month:
* embedding drift of SBERT `all-MiniLM-L6-v2` embeddings of title + body with Evidently's
  `EmbeddingsDrift`. Primary method: `model` (a domain classifier told to separate the two
  samples; its ROC AUC is the score). 0.5 means indistinguishable and it reads the same
  whatever the sample sizes, unlike distances whose scale has no natural threshold.
* centroid cosine distance; Wasserstein distance and KS test on the leading PCA components
  (PCA fitted on the reference); a 2-D PCA scatter of the month over the reference.
* prediction drift on the month's questions after the champion's training: the predicted-tag
  distribution (PSI, chi-square), Jensen-Shannon on the top tag, the share with no tag above the threshold.
* supervised P@k, R@k, F1@k and tag coverage when the questions carry tags.
* vocabulary, when the questions carry tags: the share of the month's tag occurrences the champion cannot
  suggest (`oov_share`, 1 - vocabulary coverage) against its evaluation window's, and the month's most used
  tags outside its vocabulary (`new_tags`, top 10 with counts, listed from a month with at least the family's
  minimum of tagged questions): the signal to retrain with a newer or larger vocabulary.
* each report opens with a header (monitoring/report_header.py): the month, the model, the baseline, sotag's verdict.
* text descriptors (length, share of code) with Evidently's column drift: Wasserstein for the
  length (large samples make KS flag trivial shifts) and PSI for the zero-heavy code share.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import MultiLabelBinarizer

from sotag.infra.drift_summary import DriftSummary, MonthSummary
from sotag.monitoring import stats
from sotag.monitoring.baselines import EMBEDDINGS as EMBEDDINGS_FAMILY
from sotag.monitoring.baselines import PREDICTIONS as PREDICTIONS_FAMILY
from sotag.monitoring.baselines import SUPERVISED as SUPERVISED_FAMILY
from sotag.monitoring.baselines import TEXT as TEXT_FAMILY
from sotag.monitoring.baselines import VOCABULARY as VOCABULARY_FAMILY
from sotag.monitoring.config import DriftConfig
from sotag.monitoring.evidently_report import html as report_html
from sotag.monitoring.evidently_report import month_report
from sotag.monitoring.months import Window
from sotag.monitoring.report_header import ModelLine, ReportHeader
from sotag.monitoring.resolved import ResolvedRun
from sotag.monitoring.severity import FAMILIES, LEVELS, Rule, Shortfall, assess, not_enough
from sotag.tagger.errors import DataError
from sotag.tagger.metrics import decide, evaluate, vocabulary_coverage
from sotag.tagger.model import Tagger
from sotag.tagger.questions import question_texts as natural_texts
from sotag.tagger.sbert import EmbeddingCache, encode
from sotag.tagger.text import code_share
from sotag.tagger.vocabulary import restrict_tags

SUPERVISED = ("precision_at_1", "precision_at_3", "recall_at_3", "recall_at_5", "f1_at_3", "f1_at_5", "tag_coverage")
NEW_TAGS = 10  # how many of a month's most used out-of-vocabulary tags it lists


@dataclass
class MonthResult:
    month: str
    n: int
    values: dict[str, float]
    severity: str
    reasons: list[str]
    report: str  # the Evidently report's file name in the reports folder
    html: str = field(repr=False)  # that report
    predictions_html: str | None = field(repr=False)  # the predicted-tags report, when there is one
    pca: np.ndarray = field(repr=False)  # (n, 2) float32: the month's embeddings on the reference's PCA
    # The month's most used tags the champion cannot suggest, most used first (empty: tags unknown).
    new_tags: tuple[tuple[str, int], ...] = ()
    family_severity: dict[str, str] = field(default_factory=dict)  # each judged family's level (its own rules)
    # New tags not listed: the month's tagged questions are under the vocabulary family's floor.
    unlisted_new_tags: int = 0

    @property
    def predictions_report(self) -> str:
        return f"{self.month}-predictions.html"


@dataclass
class DriftResult:
    """Everything the job computed, in memory: the reports folder, the plots and MLflow are written from it."""

    reference: dict[str, float]  # the baseline value of each statistic a "drop" rule reads
    months: list[MonthResult]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    baselines: dict[str, str] = field(default_factory=dict)  # family -> what it was compared with
    notes: list[str] = field(default_factory=list)
    reference_pca: np.ndarray | None = field(default=None, repr=False)  # (n, 2) float32: the reference's sample
    reports_dir: Path | None = None  # where the runner put the finished reports folder
    min_questions: dict[str, int] = field(default_factory=dict)  # family -> its minimum month sample
    windows: dict[str, str] = field(default_factory=dict)  # rolling windows: their labels and spans (summary.json)
    rule_families: dict[str, str] = field(default_factory=dict)  # statistic -> the family of the rule reading it

    @property
    def worst(self) -> str:
        return max((m.severity for m in self.months), key=LEVELS.index, default="unjudged")

    def summary(self) -> DriftSummary:
        return DriftSummary(
            reference=self.reference,
            baselines=self.baselines,
            notes=tuple(self.notes),
            min_questions=dict(self.min_questions),
            months=tuple(
                MonthSummary(
                    m.month, m.n, m.severity, tuple(m.reasons), m.report, m.values, m.new_tags, m.family_severity
                )
                for m in self.months
            ),
            worst=self.worst,
            seconds=round(self.seconds, 1),
            timings={k: round(v, 2) for k, v in self.timings.items()},
            windows=dict(self.windows),
            rule_families=dict(self.rule_families),
        )


def sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most `n` questions (0: all of them), in date order."""
    return frame if n == 0 or len(frame) <= n else frame.sample(n=n, random_state=seed).sort_values("creation_date")


def question_texts(frame: pd.DataFrame) -> list[str]:
    """Natural title + body text for the sentence encoder (code kept as identifiers, title once)."""
    return natural_texts(frame["title"], frame["body"])


def descriptors(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "length": (frame["title"].str.len() + frame["body"].fillna("").str.len()).astype(float).to_numpy(),
            "code_share": [code_share(b or "") for b in frame["body"]],
        }
    )


# Fewer out-of-sample questions than this in a month: its prediction and supervised statistics are noise.
MIN_MODEL_QUESTIONS = 30


class MonthScorer:
    """Everything computed once on the baselines, then applied to each month."""

    def __init__(
        self,
        tagger: Tagger,
        reference: pd.DataFrame,
        embeddings: np.ndarray,
        prediction_reference: pd.DataFrame,
        held_out: dict[str, float] | None,
        supervised: bool,
    ):
        self.tagger = tagger
        self.vocabulary = list(tagger.vocabulary)
        self.supervised = supervised
        self.ref_embeddings = embeddings
        self.pca = stats.fit_pca(embeddings)
        self.ref_descriptors = descriptors(reference)
        self.predictions = len(prediction_reference) >= MIN_MODEL_QUESTIONS
        self.reference_values: dict[str, float] = {}
        if self.predictions:
            scores = self._scores(prediction_reference)
            predicted = decide(scores, tagger.config.top_k, tagger.config.threshold, tagger.config.min_tags)
            self.ref_counts = stats.tag_distribution(predicted)
            self.ref_top = self.top_tags(scores)
            self.ref_top_tagged = self.ref_top[predicted.sum(axis=1) > 0]
            self.reference_values = self._own_values(prediction_reference, scores, predicted)
        if held_out:
            # Held-out figures replace any scored now: same definitions, over the whole evaluation window.
            self.reference_values |= {k: held_out[k] for k in SUPERVISED if k in held_out}
        if supervised:
            if held_out and "vocabulary_coverage" in held_out:
                self.reference_values["oov_share"] = 1.0 - held_out["vocabulary_coverage"]
            elif prediction_reference["tags"].map(len).gt(0).any():
                self.reference_values["oov_share"] = self.vocabulary_values(prediction_reference)[0]["oov_share"]

    def vocabulary_values(self, frame: pd.DataFrame) -> tuple[dict[str, float], tuple[tuple[str, int], ...]]:
        """The share of `frame`'s tag occurrences outside the vocabulary, the number of its questions carrying
        a tag, and every tag outside the vocabulary with its count, most used first (ties by name)."""
        tags = [list(row) for row in frame["tags"] if len(row)]
        known = set(self.vocabulary)
        counts = Counter(t for row in tags for t in row if t not in known)
        new = tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        values = {"n_tagged_questions": float(len(tags))}
        if tags:
            values["oov_share"] = 1.0 - vocabulary_coverage(self.vocabulary, tags)
        return values, new

    def _scores(self, frame: pd.DataFrame) -> np.ndarray:
        return self.tagger.scores(frame["title"].tolist(), frame["body"].tolist())

    def _own_values(self, frame: pd.DataFrame, scores: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        values = {"no_tag_share": float((predicted.sum(axis=1) == 0).mean())}
        if self.supervised:
            y = MultiLabelBinarizer(classes=self.vocabulary).fit_transform(
                restrict_tags(frame["tags"], self.vocabulary)
            )
            if y.sum(axis=1).any():
                metrics = evaluate(scores, y, self.vocabulary, self.tagger.config.top_k, self.tagger.config.threshold)
                values |= {k: metrics.metrics[k] for k in (*SUPERVISED, "n_evaluated")}
        return values

    def embedding_values(self, embeddings: np.ndarray) -> dict[str, float]:
        values = {"centroid_cosine_distance": stats.centroid_cosine_distance(self.ref_embeddings, embeddings)}
        return values | stats.pca_component_drift(self.pca, self.ref_embeddings, embeddings)

    def model_values(self, frame: pd.DataFrame) -> tuple[dict[str, float], np.ndarray | None]:
        """The month's out-of-sample questions: supervised figures (if tagged), and against the prediction
        baseline when there is one (then also their top tags, for Evidently's Jensen-Shannon)."""
        scores = self._scores(frame)
        predicted = decide(scores, self.tagger.config.top_k, self.tagger.config.threshold, self.tagger.config.min_tags)
        values = self._own_values(frame, scores, predicted) | {"n_model_questions": float(len(frame))}
        if not self.predictions:
            return values, None
        counts = stats.tag_distribution(predicted)
        chi2, chi2_p = stats.chi_square(self.ref_counts, counts)
        values |= {"tag_psi": stats.psi(self.ref_counts, counts), "tag_chi2": chi2, "tag_chi2_pvalue": chi2_p}
        return values, self.top_tags(scores)

    def top_tags(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(self.vocabulary, dtype=object)[scores.argmax(axis=1)]

    def scored_values(self, rows: pd.DataFrame) -> tuple[dict[str, float], np.ndarray]:
        """Prediction statistics from `sotag score` output: the served decision of every scored question.

        The top tag of a question is its first tag; questions with none count in `no_tag_share` only, and the
        reference's top tags are taken the same way (`ref_top_tagged`)."""
        index = {tag: j for j, tag in enumerate(self.vocabulary)}
        predicted = np.zeros((len(rows), len(self.vocabulary)), dtype=np.int8)
        firsts = []
        for i, tags in enumerate(rows["tags"]):
            columns = [index[t] for t in tags if t in index]
            predicted[i, columns] = 1
            if len(tags):
                firsts.append(tags[0])
        counts = stats.tag_distribution(predicted)
        chi2, chi2_p = stats.chi_square(self.ref_counts, counts)
        values = {
            "tag_psi": stats.psi(self.ref_counts, counts),
            "tag_chi2": chi2,
            "tag_chi2_pvalue": chi2_p,
            "no_tag_share": float((predicted.sum(axis=1) == 0).mean()),
            "n_scored_questions": float(len(rows)),
        }
        return values, np.asarray(firsts, dtype=object)


# The prediction log's own record of what was served (monitoring/runner.py `load_frame`): the tags, the top score.
SERVED_TAGS, SERVED_TOP_SCORE = "served_tags", "served_top_score"


def served_values(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    """What production served in `current` against `reference`, both read from the prediction log (seed 004):
    PSI and chi-square on the served tags' distribution, KS on the top score. Empty when either side holds fewer
    than `MIN_MODEL_QUESTIONS` logged predictions."""
    if min(len(reference), len(current)) < MIN_MODEL_QUESTIONS:
        return {}
    tags = sorted({t for row in (*reference[SERVED_TAGS], *current[SERVED_TAGS]) for t in row})
    index = {tag: j for j, tag in enumerate(tags)}

    def counts(rows: pd.Series) -> np.ndarray:
        out = np.zeros(len(tags))
        for row in rows:
            for tag in row:
                out[index[tag]] += 1
        return out

    ref_counts, cur_counts = counts(reference[SERVED_TAGS]), counts(current[SERVED_TAGS])
    chi2, chi2_p = stats.chi_square(ref_counts, cur_counts)
    ks, ks_p = stats.ks(reference[SERVED_TOP_SCORE].to_numpy(float), current[SERVED_TOP_SCORE].to_numpy(float))
    return {
        "served_tag_psi": stats.psi(ref_counts, cur_counts),
        "served_tag_chi2": chi2,
        "served_tag_chi2_pvalue": chi2_p,
        "served_top_score_ks": ks,
        "served_top_score_ks_pvalue": ks_p,
        "n_served_questions": float(len(current)),
    }


def _scored_by_month(config: DriftConfig, months: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """`sotag score` output of the checked months, per month."""
    from sotag.infra.scored import PARTITION, read_scored

    frame = read_scored(config.scored, months)
    if frame.empty:
        raise DataError(f"{config.scored}: no scored question in {months[0]}..{months[-1]}")
    return {str(m): rows for m, rows in frame.groupby(PARTITION)}


def run_drift(config: DriftConfig, run: ResolvedRun, frame: pd.DataFrame, progress: bool = True) -> DriftResult:
    """Compute every month's statistics and Evidently report, in memory; write nothing (but the embedding cache).

    `config` gives the sample sizes, the seed, the cache and the engine; `run` the months, the model, the
    baselines and the rules. Raises DataError (no reference question, no scored question).
    """
    from tqdm import tqdm

    start = time.perf_counter()
    timings: dict[str, float] = {}
    tagger, baselines = run.tagger, run.baselines
    dates = frame["creation_date"]
    reference_window = baselines.reference_window
    reference = sample(frame[reference_window.mask(dates)], config.max_reference, config.seed)
    if reference.empty:
        raise DataError(f"reference {reference_window.label}: no questions in the data")
    floor = run.floors.get("embeddings", 0)
    if run.rolling and len(reference) < floor:
        raise DataError(
            f"reference window {reference_window.label}: not enough questions (n={len(reference)} < {floor}); "
            "no verdict (a longer --reference-days, or wait for more traffic)"
        )
    windows = dict(zip(run.months, run.checked, strict=True))
    checked = {m: sample(frame[w.mask(dates)], config.max_per_month, config.seed) for m, w in windows.items()}
    empty = [m for m, f in checked.items() if len(f) == 0]
    checked = {m: f for m, f in checked.items() if len(f) > 0}
    supervised = "tags" in frame.columns and frame["tags"].map(len).gt(0).any()
    words = dict(baselines.words)
    notes = list(baselines.notes)
    if not supervised:
        words.pop(SUPERVISED_FAMILY, None)
        words.pop(VOCABULARY_FAMILY, None)
        notes.append("the questions carry no tags: supervised and vocabulary statistics skipped")
    if run.rolling and empty:
        notes.append(f"the current window {empty[0]} holds no questions: nothing to judge")
    prediction_reference = sample(
        baselines.prediction_reference(frame, tuple(windows[m] for m in checked)), config.max_reference, config.seed
    )

    t = time.perf_counter()
    cache = EmbeddingCache(config.cache_dir / "embeddings.sqlite")
    parts = [reference, *checked.values()]
    encoder = None
    if config.engine == "spark":
        from sotag.monitoring.spark_embed import SparkEncoder

        encoder = SparkEncoder(config.spark)
    all_embeddings = encode(question_texts(pd.concat(parts)), cache=cache, progress=progress, encoder=encoder)
    if cache.recovered:
        notes.append(cache.recovered)
        print(f"drift: note: {cache.recovered}", flush=True)
    timings["embed_s"] = time.perf_counter() - t
    timings["embedded_questions"] = float(len(all_embeddings))
    if encoder is not None and encoder.texts:
        timings["spark_encoded_texts"] = float(encoder.texts)
        timings["spark_texts_per_s"] = encoder.texts / encoder.seconds
    scored = _scored_by_month(config, tuple(checked)) if config.scored is not None else {}
    bounds = np.cumsum([0, *[len(p) for p in parts]])
    ref_emb = all_embeddings[: bounds[1]]

    scorer = MonthScorer(tagger, reference, ref_emb, prediction_reference, baselines.held_out, supervised)
    if VOCABULARY_FAMILY in words and "oov_share" not in scorer.reference_values:
        notes.append(
            f"{words.pop(VOCABULARY_FAMILY)} holds no tagged question and the champion records no vocabulary "
            "coverage: vocabulary statistics skipped"
        )
    if not scorer.predictions and PREDICTIONS_FAMILY in words:
        notes.append(
            f"{words.pop(PREDICTIONS_FAMILY)} holds {len(prediction_reference)} questions the champion did not train "
            f"on outside the checked months: prediction statistics skipped"
        )
        if baselines.held_out is None:
            words.pop(SUPERVISED_FAMILY, None)
    if PREDICTIONS_FAMILY in words:
        words[PREDICTIONS_FAMILY] += f", {len(prediction_reference)} questions"
    results = []
    t = time.perf_counter()
    # A context manager: the bar is closed (its line ended) whether the months finish or one of them fails.
    with tqdm(total=len(checked), desc="months", disable=not progress) as bar:
        for i, (month, current) in enumerate(checked.items()):
            emb = all_embeddings[bounds[i + 1] : bounds[i + 2]]
            values = scorer.embedding_values(emb)
            month_words = dict(words)
            ranked_new_tags: tuple[tuple[str, int], ...] = ()
            if VOCABULARY_FAMILY in words:
                vocabulary_values, ranked_new_tags = scorer.vocabulary_values(current)
                values |= vocabulary_values
            top_tags = None
            reference_top = getattr(scorer, "ref_top", None)
            own = baselines.model_part(current)
            predictions_n = len(own)  # the questions the predicted-tags report compares
            model_families = {PREDICTIONS_FAMILY, SUPERVISED_FAMILY} & set(words)
            if model_families and len(own) >= MIN_MODEL_QUESTIONS:
                model_values, top_tags = scorer.model_values(own)
                values |= model_values
                rows = baselines.model_part(scored.get(month, own.iloc[:0]))
                if scorer.predictions and len(rows) >= MIN_MODEL_QUESTIONS:
                    scored_values, top_tags = scorer.scored_values(rows)
                    values |= scored_values
                    reference_top = scorer.ref_top_tagged
                    predictions_n = len(rows)
            else:
                for family in model_families:
                    month_words.pop(family)
            reports = month_report(
                reference=(ref_emb, scorer.ref_descriptors),
                current=(emb, descriptors(current)),
                tags=(reference_top, top_tags) if top_tags is not None else None,
                title=f"sotag drift {month} vs reference {reference_window.label}",
            )
            values |= reports.values
            if PREDICTIONS_FAMILY in month_words and SERVED_TAGS in current.columns:
                values |= served_values(reference, current)
            labels = {family: baselines.labels[family] for family in month_words}
            embeddings_n, model_n = len(current), len(own)
            supervised_n = int(values.get("n_evaluated", model_n))
            tagged_n = int(values.get("n_tagged_questions", 0))
            sizes = dict(zip(FAMILIES, (embeddings_n, embeddings_n, model_n, supervised_n, tagged_n), strict=True))
            # Only the families the job judges: one skipped for every month (no tags, no baseline) has its note.
            too_few = not_enough({family: n for family, n in sizes.items() if family in words}, run.floors)
            severity, reasons = assess(list(run.rules), values, scorer.reference_values, labels, too_few)
            # Each judged family's own level (its rules alone): the gateway exports it per family (serving/metrics.py).
            family_verdicts = {
                family: assess(list(run.rules), values, scorer.reference_values, {family: label})
                for family, label in labels.items()
                if family not in too_few
            }
            family_severity = {family: level for family, (level, _) in family_verdicts.items()}
            # Under MIN_MODEL_QUESTIONS the families were not computed; a family under its own floor said so already.
            skipped = [family for family in FAMILIES if family in model_families - set(month_words) - set(too_few)]
            if skipped:
                reasons.append(
                    f"{' and '.join(skipped)} statistics skipped: {len(own)} of its questions are after the "
                    f"champion's training (at least {MIN_MODEL_QUESTIONS} needed)"
                )
            # The vocabulary floor is also the sample a month's new tags are read from (thresholds.json): under it
            # a tag's count says nothing, so none is listed; how many were left out is kept for the job's line.
            new_tags, unlisted = ranked_new_tags[:NEW_TAGS], 0
            if VOCABULARY_FAMILY in too_few:
                new_tags, unlisted = (), len(ranked_new_tags)
            verdicts = {family: _verdict(family, too_few, family_verdicts, run.rules) for family in FAMILIES}
            header = partial(_header, run=run, window=windows[month], words=words, verdicts=verdicts, severity=severity)
            html = report_html(reports.snapshot, header((EMBEDDINGS_FAMILY, TEXT_FAMILY), f"{len(current)} questions"))
            tags_html = None
            if reports.tags_snapshot is not None:
                questions = f"{predictions_n} questions after the champion's training"
                tags_html = report_html(reports.tags_snapshot, header((PREDICTIONS_FAMILY,), questions))
            pca = scorer.pca.transform(emb)[:, :2].astype(np.float32)
            results.append(
                MonthResult(
                    month, len(current), values, severity, reasons, f"{month}.html", html, tags_html, pca, new_tags,
                    family_severity, unlisted,
                )
            )  # fmt: skip
            bar.update(1)
    timings["months_s"] = time.perf_counter() - t
    return DriftResult(
        reference=scorer.reference_values,
        months=results,
        seconds=time.perf_counter() - start,
        timings=timings,
        baselines=words,
        notes=notes,
        reference_pca=scorer.pca.transform(ref_emb)[:, :2].astype(np.float32),
        min_questions=dict(run.floors),
        windows=_windows(run) if run.rolling else {},
        rule_families={rule.metric: rule.family for rule in run.rules},
    )


def _verdict(
    family: str,
    too_few: dict[str, Shortfall],
    family_verdicts: dict[str, tuple[str, list[str]]],
    rules: tuple[Rule, ...],
) -> str:
    """A family's verdict in words, for a report's header: its level and reasons, or why it has none."""
    if family in too_few:
        return f"not judged ({too_few[family]})"
    if family not in family_verdicts:
        return "skipped"
    if not any(rule.family == family for rule in rules):
        return "not judged (no rule reads it)"
    level, reasons = family_verdicts[family]
    return f"{level} ({'; '.join(reasons)})" if reasons else level


def _header(
    families: tuple[str, ...],
    questions: str,
    run: ResolvedRun,
    window: Window,
    words: dict[str, str],
    verdicts: dict[str, str],
    severity: str,
) -> str:
    """The Markdown header of the report showing `families` on `questions` of `window`."""
    return ReportHeader(
        what=" and ".join(families),
        period="window" if run.rolling else "month",
        label=window.label,
        span=window.describe(),
        questions=questions,
        model=ModelLine(run.model_name, run.model_version, run.model_alias, run.model_run_id),
        baseline=words.get(families[0], "none"),
        verdicts={family: verdicts[family] for family in families},
        month_verdict=severity,
    ).markdown()


def _windows(run: ResolvedRun) -> dict[str, str]:
    current, reference = run.checked[0], run.baselines.reference_window
    return {
        "current": current.label,
        "current_days": f"{current.days:g}",
        "current_span": current.describe(),
        "reference": reference.label,
        "reference_days": f"{reference.days:g}",
        "reference_span": reference.describe(),
    }
