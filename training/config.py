"""Training configuration: one typed object built from CLI flags (and environment defaults)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from infra.cache import DEFAULT_CACHE_DIR
from infra.tracking import MODEL_NAME
from tagger.data import default_data_path
from tagger.data.paths import as_data_paths
from tagger.kinds import kind_class

DEFAULT_SPLIT_DATE = "2018-04-20"


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of one training run; all of it is logged as MLflow params."""

    # The questions: one or several files or folders, read together (tagger.data.load_questions); a single
    # path given is held as a tuple of one.
    data: tuple[Path, ...] = field(default_factory=lambda: (default_data_path(),))
    split_date: str = DEFAULT_SPLIT_DATE
    eval_end: str | None = None
    top_n_tags: int = 100
    min_tag_questions: int = 5  # the label-tree kind's vocabulary: every tag on at least this many questions
    exclude_sources: tuple[str, ...] = ()
    vectorizer: str = "plt"  # measured best for users within the budgets (README: Benchmarks)
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
    threshold: float = 0.3
    # Choose the served threshold on the newest `validation_share` of the training window (one more fit) instead.
    choose_threshold: bool = False
    n_jobs: int = 2
    experiment: str = "stackoverflow-tagger"
    model_name: str = MODEL_NAME
    register: bool = True
    run_name: str | None = None
    cache_dir: Path = DEFAULT_CACHE_DIR  # the CLI passes $SOTAG_CACHE (infra.cache)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", as_data_paths(self.data))

    def for_vectorizer(self, kind: str) -> TrainConfig:
        """The same configuration with another model kind (tagger.kinds) and that kind's sensible text and C."""
        return replace(self, vectorizer=kind, **kind_class(kind).training_overrides(self))

    def params(self) -> dict[str, str]:
        """Flat string params for MLflow (the data path is logged as a dataset input instead)."""
        out = {}
        for key, value in asdict(self).items():
            if key in {"data", "cache_dir", "register", "run_name"}:
                continue
            out[key] = ",".join(value) if isinstance(value, tuple) else str(value)
        return out
