"""Training configuration: the run's view of the settings (`from_settings`), every field logged as a param."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from sotag.data.paths import as_data_paths
from sotag.settings import MODEL_NAME, Settings, TrainSection
from sotag.tagger.kinds import kind_class

DEFAULT_SPLIT_DATE = TrainSection().split_date


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of one training run; all of it is logged as MLflow params."""

    # The questions: one or several files or folders, read together (sotag.data.load_questions); a single
    # path given is held as a tuple of one.
    data: tuple[Path, ...] = ()
    split_date: str = DEFAULT_SPLIT_DATE
    eval_end: str | None = None
    top_n_tags: int = 100
    min_tag_questions: int = 5  # the label-tree kind's vocabulary: every tag on at least this many questions
    exclude_sources: tuple[str, ...] = ()
    vectorizer: str = "plt"  # measured best for users within the budgets (docs/benchmarks.md)
    keep_code: bool = True
    title_repeat: int = 2
    ngram_max: int = 2
    min_df: int = 2
    max_features: int = 100_000
    C: float = 30.0
    # The ensemble: the SBERT head's C, the share of the training window (its newest questions) held out to
    # choose the TF-IDF weight by `ensemble_metric`, or a fixed `ensemble_weight`.
    sbert_C: float = 10.0
    validation_share: float = 0.15
    ensemble_metric: str = "f1_at_3"
    ensemble_weight: float | None = None
    top_k: int = 5
    # The served threshold on the served scores; None: chosen on the newest `validation_share` of the training
    # window (training.fit), as it is when `choose_threshold`.
    threshold: float | None = None
    choose_threshold: bool = False
    # Serve calibrated probabilities (tagger.calibration), fitted on that slice too.
    calibrate: bool = True
    min_tags: int = 1  # every question gets at least this many tags (its best ones), at most top_k
    n_jobs: int = 2
    experiment: str = "stackoverflow-tagger"
    model_name: str = MODEL_NAME
    register: bool = True
    run_name: str | None = None
    cache_dir: Path = Path(".cache")  # from_settings: the settings' cache (<home>/.cache)
    # Fewer evaluation questions than this: the run warns that its figures are too few to judge the model (not a
    # model knob, not a param). from_settings: train.min_eval_questions.
    min_eval_questions: int = 200

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", as_data_paths(self.data))

    @classmethod
    def from_settings(cls, settings: Settings, data: tuple[Path, ...], **overrides: object) -> TrainConfig:
        """The `train` section (and its kind's own options) as one run's configuration, on `data`."""
        from sotag.data.split import parse_sources

        t = settings.train
        values: dict[str, object] = dict(
            data=data,
            split_date=t.split_date,
            eval_end=t.eval_end,
            top_n_tags=t.top_n_tags,
            min_tag_questions=t.plt.min_tag_questions,
            exclude_sources=parse_sources(t.exclude_sources),
            keep_code=t.keep_code,
            max_features=t.max_features,
            ngram_max=t.ngram_max,
            min_df=t.min_df,
            C=t.C,
            sbert_C=t.ensemble.sbert_C,
            validation_share=t.ensemble.validation_share,
            ensemble_metric=t.ensemble.metric,
            ensemble_weight=t.ensemble.weight,
            top_k=t.top_k,
            threshold=t.threshold,
            choose_threshold=t.choose_threshold,
            calibrate=t.calibrate,
            min_tags=t.min_tags,
            n_jobs=t.n_jobs,
            experiment=t.experiment,
            model_name=settings.tracking.model_name,
            cache_dir=settings.cache,
            min_eval_questions=t.min_eval_questions,
        )
        values.update(overrides)
        return cls(**values)

    def for_vectorizer(self, kind: str) -> TrainConfig:
        """The same configuration with another model kind (tagger.kinds) and that kind's sensible text and C."""
        return replace(self, vectorizer=kind, **kind_class(kind).training_overrides(self))

    def params(self) -> dict[str, str]:
        """Flat string params for MLflow (the data path is logged as a dataset input instead)."""
        out = {}
        for key, value in asdict(self).items():
            if key in {"data", "cache_dir", "register", "run_name", "min_eval_questions"}:
                continue
            out[key] = ",".join(value) if isinstance(value, tuple) else str(value)
        return out
