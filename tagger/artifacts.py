"""The four-file model artifact: vectorizer.joblib, estimator.joblib, mlb.joblib, config.json.

joblib is pickle: unpickling runs code. Every file's sha256 is recorded in config.json when
it is written and checked before anything is unpickled; a mismatch is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import joblib
import sklearn
from sklearn.exceptions import InconsistentVersionWarning

from sotag.tagger.calibration import Calibration
from sotag.tagger.errors import ArtifactError
from sotag.tagger.kinds import kind_class
from sotag.tagger.kinds.base import KindOptions

log = logging.getLogger(__name__)

ARTIFACT_FILES = ("vectorizer.joblib", "estimator.joblib", "mlb.joblib")
CONFIG_FILE = "config.json"
FORMAT_VERSION = 2


@dataclass
class ModelConfig:
    """What config.json holds besides the digests: the model kind, its inference defaults and typed options."""

    top_k: int
    threshold: float
    vectorizer: str  # the features, as reported (/model_info, the registry): bow, tfidf, sbert or ensemble
    vocabulary: list[str]
    preprocessing_version: str
    # "probability" (in [0, 1]) or "margin" (a decision_function, any real number).
    score_kind: str = "probability"
    kind: str = ""  # the kinds table's name (tagger.kinds); default: the vectorizer's
    options: KindOptions | None = None  # the kind's typed options; default: the kind's defaults
    # The map from the kind's raw scores to calibrated probabilities (tagger.calibration); None: the raw scores are
    # served (every version trained before calibration, and the converted original-API model).
    calibration: Calibration | None = None
    # Every question gets at least this many tags (its best ones, whatever their score), at most top_k; 0: only the
    # tags reaching the threshold (every version trained before min_tags).
    min_tags: int = 0

    def __post_init__(self) -> None:
        self.kind = self.kind or self.vectorizer
        cls = kind_class(self.kind)
        if self.options is None:
            self.options = cls.Options()
        elif not isinstance(self.options, cls.Options):
            raise ArtifactError(f"config.json: a {self.kind} model's options are {cls.Options.__name__}")

    @property
    def preprocessing(self) -> str:
        """How the question reaches the model: `sotag` (tagger.text cleans it) or `raw` (as sent: the original API)."""
        return kind_class(self.kind).preprocessing

    @property
    def selection(self) -> str:
        """The selection rule: `top_k_above_threshold` (sotag) or `top_k_or_threshold` (the original Tagger API)."""
        return kind_class(self.kind).selection

    def to_dict(self) -> dict[str, Any]:
        payload = {f.name: getattr(self, f.name) for f in fields(self)}
        calibration = None if self.calibration is None else self.calibration.to_dict()
        return payload | {"options": self.options.as_dict(), "calibration": calibration}

    @classmethod
    def from_dict(cls, payload: dict[str, Any], where: str) -> ModelConfig:
        """config.json's fields (digests and format_version removed); ArtifactError naming what does not fit."""
        if "kind" not in payload:
            payload = _upgrade_v1(payload, where)
        values = dict(payload)
        kind = kind_class(str(values.get("kind") or values.get("vectorizer")))
        options = values.pop("options", None) or {}
        if not isinstance(options, dict):
            raise ArtifactError(f"{where}: field 'options' must be an object")
        calibration = values.pop("calibration", None)
        if calibration is not None:
            values["calibration"] = Calibration.from_dict(calibration, where)
        if not isinstance(values.get("min_tags", 0), int) or values.get("min_tags", 0) < 0:
            raise ArtifactError(f"{where}: field 'min_tags' must be a whole number >= 0")
        try:
            return cls(**values, options=kind.Options.from_dict(options, where))
        except TypeError as exc:
            raise ArtifactError(f"{where}: unexpected or missing fields ({exc})") from exc


# Format 1 (before the kinds table): the kind followed from `preprocessing`/`selection` and `vectorizer`;
# the text options sat in `keep_code` and the untyped `extra` (title_repeat; converted_from, bundle_sha256).
_V1_FIELDS = {"top_k", "threshold", "vectorizer", "vocabulary", "preprocessing_version", "score_kind"}
_V1_OPTIONAL = {"keep_code", "extra", "preprocessing", "selection"}


def _upgrade_v1(payload: dict[str, Any], where: str) -> dict[str, Any]:
    unexpected = sorted(set(payload) - _V1_FIELDS - _V1_OPTIONAL)
    if unexpected:
        raise ArtifactError(f"{where}: unexpected or missing fields (unexpected: {', '.join(unexpected)})")
    extra = payload.get("extra") or {}
    if not isinstance(extra, dict):
        raise ArtifactError(f"{where}: field 'extra' must be an object")
    original = payload.get("preprocessing") == "raw" or payload.get("selection") == "top_k_or_threshold"
    kind = kind_class("legacy" if original else str(payload.get("vectorizer")))
    known = {f.name for f in fields(kind.Options)}
    merged = {k: v for k, v in ({"keep_code": payload.get("keep_code", True)} | extra).items() if k in known}
    return {k: v for k, v in payload.items() if k in _V1_FIELDS} | {"kind": kind.name, "options": merged}


@dataclass
class LoadedArtifacts:
    vectorizer: Any
    estimator: Any
    mlb: Any
    config: ModelConfig


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_artifacts(directory: str | Path, vectorizer: Any, estimator: Any, mlb: Any, config: ModelConfig) -> Path:
    """Write the four files; config.json last, with the sha256 of the other three."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, obj in zip(ARTIFACT_FILES, (vectorizer, estimator, mlb), strict=True):
        joblib.dump(obj, directory / name, compress=0)
    payload = config.to_dict() | {
        "format_version": FORMAT_VERSION,
        "sha256": {name: sha256_file(directory / name) for name in ARTIFACT_FILES},
    }
    _atomic_write_text(directory / CONFIG_FILE, json.dumps(payload, indent=2, sort_keys=True))
    return directory


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def read_config(directory: str | Path) -> tuple[ModelConfig, dict[str, str]]:
    """config.json as a ModelConfig and the recorded digests; clear errors for what is missing."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (a model directory needs {', '.join((*ARTIFACT_FILES, CONFIG_FILE))})")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from exc
    digests = payload.pop("sha256", None)
    payload.pop("format_version", None)  # 1: before the kinds table (read by ModelConfig.from_dict); 2: now
    if digests is None and "topk" in payload:
        raise ArtifactError(
            f"{path}: an original Tagger API models/ folder (topk, threshold, no sha256 digests); convert it "
            f"first: sotag convert-legacy {Path(directory)} DEST, then serve DEST"
        )
    if not isinstance(digests, dict) or set(digests) != set(ARTIFACT_FILES):
        raise ArtifactError(f"{path}: field 'sha256' must list the digest of each of {', '.join(ARTIFACT_FILES)}")
    return ModelConfig.from_dict(payload, str(path)), digests


def verify_artifacts(directory: str | Path) -> tuple[ModelConfig, dict[str, str]]:
    """Check every file exists and matches its recorded sha256; nothing is unpickled here."""
    directory = Path(directory)
    config, digests = read_config(directory)
    for name in ARTIFACT_FILES:
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{path}: missing")
        actual = sha256_file(path)
        if actual != digests[name]:
            raise ArtifactError(
                f"{path}: sha256 mismatch (config.json records {digests[name][:12]}…, file is {actual[:12]}…); "
                "refusing to load a file that may have been altered"
            )
    return config, digests


def load_artifacts(directory: str | Path) -> LoadedArtifacts:
    """Verify, then unpickle the three joblib files."""
    directory = Path(directory)
    config, _ = verify_artifacts(directory)
    with pickled_sklearn_versions() as versions:
        objects = [joblib.load(directory / name) for name in ARTIFACT_FILES]
    _report_version_mismatch(directory, versions)
    return LoadedArtifacts(*objects, config=config)


@contextmanager
def pickled_sklearn_versions() -> Iterator[list[str]]:
    """Collect the scikit-learn versions that pickles loaded inside the block were made with (other than ours).

    scikit-learn warns once per pickled class; callers say it once, in one line. Other warnings pass through.
    """
    versions: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        yield versions
    versions += sorted({w.message.original_sklearn_version for w in caught if _is_version_warning(w)})
    for w in caught:
        if not _is_version_warning(w):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _is_version_warning(caught: warnings.WarningMessage) -> bool:
    return isinstance(caught.message, InconsistentVersionWarning)


_reported_mismatches: set[tuple[str, str]] = set()


def _report_version_mismatch(directory: Path, versions: list[str]) -> None:
    """Once per model and version, in one line."""
    key = (str(directory.resolve()), ",".join(versions))
    if not versions or key in _reported_mismatches:
        return
    _reported_mismatches.add(key)
    log.warning(
        "%s: pickled by scikit-learn %s, loaded by %s (digests match); re-train or re-convert the model "
        "with this version to silence this",
        directory,
        " and ".join(versions),
        sklearn.__version__,
    )
