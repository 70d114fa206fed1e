"""Training configuration: one typed object built from CLI flags (and environment defaults)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tagger.errors import DataError
from tagger.tracking import MODEL_NAME, PROJECT_ROOT

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "stackoverflow" / "questions.parquet"
DEFAULT_SPLIT_DATE = "2018-04-20"


def default_data_path() -> Path:
    """`SOTAG_DATA` if set, else the shared data set beside the project."""
    return Path(os.environ.get("SOTAG_DATA", SHARED_DATA))


NO_DATA_HELP = (
    "no data file at {path}. Pass one with --data (make demo DATA=path). Supported: a Stack Exchange "
    "Data Explorer CSV export (columns Id, CreationDate, Title, Body, Tags; e.g. "
    "SELECT Id, CreationDate, Title, Body, Tags FROM Posts WHERE PostTypeId = 1 on data.stackexchange.com), "
    "a Stack Exchange Posts.xml dump (archive.org/details/stackexchange), the Kaggle "
    "'60k Stack Overflow Questions' CSV, or a parquet file with id, creation_date, title, body, tags."
)


def resolve_data_path(text: str) -> Path:
    """A `--data` argument: the given file, or the default data set when empty; DataError when absent."""
    data = Path(text) if text else default_data_path()
    if not data.is_file():
        raise DataError(NO_DATA_HELP.format(path=data))
    return data


def default_cache_dir() -> Path:
    return Path(os.environ.get("SOTAG_CACHE", PROJECT_ROOT / ".cache"))


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of one training run; all of it is logged as MLflow params."""

    data: Path = field(default_factory=default_data_path)
    split_date: str = DEFAULT_SPLIT_DATE
    eval_end: str | None = None
    top_n_tags: int = 100
    exclude_sources: tuple[str, ...] = ()
    vectorizer: str = "tfidf"
    keep_code: bool = True
    title_repeat: int = 2
    ngram_max: int = 2
    min_df: int = 2
    max_features: int = 100_000
    C: float = 30.0
    top_k: int = 5
    threshold: float = 0.3
    n_jobs: int = 2
    experiment: str = "stackoverflow-tagger"
    model_name: str = MODEL_NAME
    register: bool = True
    run_name: str | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)

    def for_vectorizer(self, kind: str) -> TrainConfig:
        """The same configuration with another vectorizer and that vectorizer's sensible text and C."""
        if kind == "sbert":
            # Natural sentences for a sentence encoder; dense, low-dimensional features want more regularisation.
            return replace(self, vectorizer=kind, title_repeat=1, C=min(self.C, 10.0))
        return replace(self, vectorizer=kind)

    def params(self) -> dict[str, str]:
        """Flat string params for MLflow (the data path is logged as a dataset input instead)."""
        out = {}
        for key, value in asdict(self).items():
            if key in {"data", "cache_dir", "register", "run_name"}:
                continue
            out[key] = ",".join(value) if isinstance(value, tuple) else str(value)
        return out


@dataclass(frozen=True)
class GateConfig:
    """How `promote` judges a challenger."""

    data: Path
    primary_metric: str = "f1_at_3"
    floor_metric: str = "f1_at_3"
    floor: float = 0.45
    min_delta: float = 0.0  # the challenger must reach champion + min_delta on the primary metric
    eval_start: str | None = None  # default: the challenger's split date
    eval_end: str | None = None  # default: the challenger's eval end
    exclude_sources: tuple[str, ...] | None = None  # default: what the challenger was trained with
    mirror_stages: bool = False
    batch_size: int = 2048
