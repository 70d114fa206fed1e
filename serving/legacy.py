"""`convert-legacy SRC DEST`: the original Tagger API's model files to the four-file contract.

SRC is either form the original API (seed 000) used:
* a monolithic bundle pickled from a notebook: a `TaggerModel` object (its class lived in the
  notebook's `__main__`) or a dict, holding the vectorizer, the one-vs-rest classifier, the
  MultiLabelBinarizer, `topk` and `threshold`;
* an original `models/` folder: `vectorizer.joblib`, `estimator.joblib`, `mlb.joblib` and a
  `config.json` of `{"topk", "threshold"}` with no digests.

The converted model gives the same tags for the same text, because it keeps what the original
inference did: the text reaches the vectorizer as sent (`preprocessing: raw`); scores are
`predict_proba` when the estimator has it, else `decision_function` (margins: a threshold of 0.0
is a margin, not a probability); the selection is the top `topk` tags plus every tag whose score is
>= `threshold`. The per-tag coefficients are fused (one matrix product), checked equal to the
estimator's own scores, and written with their sha256 digests.

Unpickling runs code, so these pickles are read by a restricted unpickler: a class from `__main__`
becomes a stand-in that only receives attributes, and only scikit-learn, NumPy and SciPy classes
(and the few functions pickles use to rebuild arrays) are resolved; anything else is refused
without being imported.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import sklearn
from joblib.numpy_pickle import NumpyUnpickler, _validate_fileobject_and_memmap
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from sotag.infra.tracking import FluentRuns
from sotag.registry.card import ModelCard
from sotag.registry.publish import git_commit, log_pyfunc, register_challenger
from sotag.tagger.artifacts import (
    ARTIFACT_FILES,
    CONFIG_FILE,
    ModelConfig,
    pickled_sklearn_versions,
    sha256_file,
    write_artifacts,
)
from sotag.tagger.errors import ArtifactError
from sotag.tagger.fused import FusedLinearModel
from sotag.tagger.kinds.legacy import LegacyKind, LegacyOptions
from sotag.tagger.model import Tagger
from sotag.tagger.text import PREPROCESSING_VERSION

ALIASES = {
    "vectorizer": ("vectorizer", "vectoriser", "tfidf", "vect"),
    "classifier": ("classifier", "estimator", "model", "clf"),
    "mlb": ("mlb", "binarizer", "multilabel_binarizer", "label_binarizer"),
    "top_k": ("top_k", "topk", "k"),
    "threshold": ("threshold", "thresh"),
}
# Module roots whose classes a model pickle may name; everything else is refused unimported.
ALLOWED_ROOTS = frozenset({"sklearn", "numpy", "scipy", "joblib", "builtins", "copyreg", "collections", "_codecs"})
# The functions (not classes) pickles of arrays and objects call while loading.
ALLOWED_FUNCTIONS = frozenset(
    {
        ("copyreg", "_reconstructor"),
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
    }
)


class LegacyStandIn:
    """Takes the place of a class the pickle names in `__main__` (a notebook's `TaggerModel`).

    It only receives the pickled attributes: no method of the original class exists or runs.
    """

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


class _RestrictedUnpickler(NumpyUnpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "__main__":
            return type(name, (LegacyStandIn,), {"__module__": "__main__"})
        if module.split(".")[0] not in ALLOWED_ROOTS:
            raise ArtifactError(
                f"the pickle needs {module}.{name}, outside scikit-learn, NumPy and SciPy; it was not loaded "
                "(a custom tokenizer or class from another package cannot be converted)"
            )
        found = super().find_class(module, name)
        if not isinstance(found, type) and (module, name) not in ALLOWED_FUNCTIONS:
            raise ArtifactError(f"the pickle calls {module}.{name}, which is not a class; it was not loaded")
        return found


def safe_load(path: Path) -> Any:
    """Unpickle a legacy file (joblib or plain pickle) with the restricted unpickler.

    Uses joblib's own NumpyUnpickler (and its private file-format helper, pinned with joblib) so that
    compressed and array-bearing joblib files load exactly as `joblib.load` reads them.
    """
    with pickled_sklearn_versions() as versions:
        try:
            with open(path, "rb") as handle, _validate_fileobject_and_memmap(handle, str(path), None) as (fobj, _):
                obj = _RestrictedUnpickler(str(path), fobj, True, mmap_mode=None).load()
        except ArtifactError as exc:
            raise ArtifactError(f"{path}: {exc}") from None
        except Exception as exc:  # any unpickling failure is a bad file, not a crash
            raise ArtifactError(f"{path}: not a joblib/pickle bundle ({type(exc).__name__}: {exc})") from exc
    if versions:
        message = (
            f"convert-legacy: {path.name} was pickled by scikit-learn {' and '.join(versions)}, loaded by "
            f"{sklearn.__version__}; the conversion checks the scores match the file's own estimator"
        )
        print(message, file=sys.stderr)
    return obj


@dataclass(frozen=True)
class Converted:
    directory: Path
    config: ModelConfig
    max_score_difference: float
    version: str | None = None


@dataclass(frozen=True)
class LegacyParts:
    vectorizer: Any
    classifier: Any
    mlb: Any
    top_k: int
    threshold: float
    source: str  # what was converted, for the record
    source_sha256: str


def _get(bundle: Any, part: str, default: Any = None) -> Any:
    for key in ALIASES[part]:
        if isinstance(bundle, dict) and key in bundle:
            return bundle[key]
        if not isinstance(bundle, dict) and key in getattr(bundle, "__dict__", {}):
            return bundle.__dict__[key]
    if default is not None:
        return default
    found = sorted(bundle) if isinstance(bundle, dict) else sorted(getattr(bundle, "__dict__", {}))
    raise ArtifactError(f"bundle: no {part} (looked for {', '.join(ALIASES[part])}; found {', '.join(found)})")


def read_bundle(path: Path) -> LegacyParts:
    """A monolithic bundle: a dict, or an object (a `TaggerModel` from a notebook) with those attributes."""
    bundle = safe_load(path)
    return LegacyParts(
        vectorizer=_get(bundle, "vectorizer"),
        classifier=_get(bundle, "classifier"),
        mlb=_get(bundle, "mlb"),
        top_k=int(_get(bundle, "top_k", 5)),
        threshold=float(_get(bundle, "threshold", 0.0)),
        source=path.name,
        source_sha256=sha256_file(path),
    )


def read_models_folder(folder: Path) -> LegacyParts:
    """An original `models/` folder: the three joblib files and `{"topk", "threshold"}`, no digests."""
    missing = [n for n in (*ARTIFACT_FILES, CONFIG_FILE) if not (folder / n).is_file()]
    if missing:
        raise ArtifactError(f"{folder}: not a models/ folder (missing {', '.join(missing)})")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{folder / CONFIG_FILE}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ArtifactError(f"{folder / CONFIG_FILE}: expected an object with topk and threshold")
    vectorizer, classifier, mlb = (safe_load(folder / n) for n in ARTIFACT_FILES)
    digests = {n: sha256_file(folder / n) for n in (*ARTIFACT_FILES, CONFIG_FILE)}
    return LegacyParts(
        vectorizer=vectorizer,
        classifier=classifier,
        mlb=mlb,
        top_k=int(config.get("topk", config.get("top_k", 5))),
        threshold=float(config.get("threshold", 0.0)),
        source=folder.name or str(folder),
        source_sha256=sha256_file_set(digests),
    )


def sha256_file_set(digests: dict[str, str]) -> str:
    """One digest for a set of files: the sha256 of their sorted name:digest lines."""
    lines = "".join(f"{name}:{digest}\n" for name, digest in sorted(digests.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def _vectorizer_kind(vectorizer: Any) -> str:
    if isinstance(vectorizer, TfidfVectorizer):
        return "tfidf"
    if isinstance(vectorizer, CountVectorizer):
        return "bow"
    name = type(vectorizer).__name__
    raise ArtifactError(f"bundle: vectorizer is a {name}; a fitted CountVectorizer or TfidfVectorizer is needed")


def _score_kind(classifier: OneVsRestClassifier) -> str:
    """As the original API ranked: predict_proba if the estimator has it, else decision_function."""
    if hasattr(classifier, "predict_proba") and all(hasattr(e, "predict_proba") for e in classifier.estimators_):
        return "probability"
    if hasattr(classifier, "decision_function"):
        return "margin"
    raise ArtifactError(
        f"bundle: {type(classifier.estimators_[0]).__name__} has neither predict_proba nor decision_function; "
        "only linear per-tag scores can be converted"
    )


def _reference_scores(classifier: OneVsRestClassifier, features: Any, kind: str) -> np.ndarray:
    if kind == "probability":
        return classifier.predict_proba(features)
    scores = classifier.decision_function(features)
    return scores.reshape(-1, 1) if scores.ndim == 1 else scores


def convert_legacy(src: Path, dest: Path) -> Converted:
    src = Path(src)
    if src.is_dir():
        parts = read_models_folder(src)
    elif src.is_file():
        parts = read_bundle(src)
    else:
        raise ArtifactError(f"{src}: no such bundle or models/ folder")
    vectorizer, classifier, mlb = parts.vectorizer, parts.classifier, parts.mlb
    for name, part in (("vectorizer", vectorizer), ("classifier", classifier), ("mlb", mlb)):
        if isinstance(part, LegacyStandIn):
            raise ArtifactError(f"bundle: its {name} is a {type(part).__name__} defined in the notebook; not loadable")
    feature_kind = _vectorizer_kind(vectorizer)
    for hook in ("tokenizer", "preprocessor", "analyzer"):
        value = getattr(vectorizer, hook, None)
        if (isinstance(value, type) and issubclass(value, LegacyStandIn)) or isinstance(value, LegacyStandIn):
            raise ArtifactError(f"bundle: the vectorizer's {hook} is defined in the notebook's __main__; not loadable")
    if not isinstance(classifier, OneVsRestClassifier):
        name = type(classifier).__name__
        raise ArtifactError(f"bundle: classifier is a {name}; a fitted OneVsRestClassifier is needed")
    if not isinstance(mlb, MultiLabelBinarizer) or not hasattr(mlb, "classes_"):
        raise ArtifactError("bundle: mlb must be a fitted MultiLabelBinarizer")
    if not all(hasattr(e, "coef_") or hasattr(e, "y_") for e in classifier.estimators_):
        raise ArtifactError(
            f"bundle: {type(classifier.estimators_[0]).__name__} is not linear (no coef_); only linear per-tag "
            "estimators can be fused"
        )
    score_kind = _score_kind(classifier)
    vocabulary = [str(c) for c in mlb.classes_]
    fused = FusedLinearModel.from_one_vs_rest(classifier, link="sigmoid" if score_kind == "probability" else "identity")
    if fused.n_tags != len(vocabulary):
        raise ArtifactError(f"bundle: the classifier scores {fused.n_tags} tags, the binarizer has {len(vocabulary)}")

    # The converted model must score as the original did, on the original's own vocabulary.
    probe = list(vectorizer.vocabulary_)[:200]
    features = vectorizer.transform([" ".join(probe[i : i + 20]) for i in range(0, len(probe), 20)] or ["x"])
    expected = _reference_scores(classifier, features, score_kind)
    difference = float(np.abs(fused.scores(features) - expected).max())
    tolerance = 1e-5 * max(1.0, float(np.abs(expected).max()))
    if difference > tolerance:
        raise ArtifactError(f"bundle: the fused estimator differs from the classifier by {difference:.2e}")

    config = ModelConfig(
        top_k=parts.top_k,
        threshold=parts.threshold,
        vectorizer=feature_kind,
        vocabulary=vocabulary,
        preprocessing_version=PREPROCESSING_VERSION,
        score_kind=score_kind,
        kind=LegacyKind.name,
        options=LegacyOptions(converted_from=parts.source, bundle_sha256=parts.source_sha256),
    )
    directory = write_artifacts(dest, vectorizer, fused, mlb, config)
    Tagger.from_directory(directory)  # the written model loads and verifies, or the conversion fails here
    return Converted(directory=directory, config=config, max_score_difference=difference)


def register_converted(converted: Converted, model_name: str, runs: FluentRuns) -> Converted:
    """Log the converted directory as a pyfunc in a fluent MLflow run of `runs`' experiment (artifacts under the
    profile's artifact root) and register it as @challenger through a client of `runs`' store."""
    config = converted.config
    example = pd.DataFrame({"title": ["How do I parse JSON in Python?"], "body": ["<p>json.loads fails</p>"]})
    with mlflow.start_run(run_name=f"convert-{config.options.converted_from}", experiment_id=runs.experiment_id) as run:
        mlflow.set_tags({"sotag.stage": "convert-legacy", "git_commit": git_commit()})
        mlflow.log_params(
            {
                "vectorizer": config.vectorizer,
                "top_k": config.top_k,
                "threshold": config.threshold,
                "top_n_tags": len(config.vocabulary),
                "bundle_sha256": config.options.bundle_sha256,
            }
        )
        info = log_pyfunc(converted.directory, config.kind, config.top_k, config.threshold, example, model_name)
    version = str(info.registered_model_version)
    card = ModelCard(
        run_id=run.info.run_id,
        vectorizer=config.vectorizer,
        top_n_tags=len(config.vocabulary),
        n_tags=len(config.vocabulary),
        converted_from=config.options.converted_from,
        bundle_sha256=config.options.bundle_sha256,
        score_kind=config.score_kind,
    )
    description = (
        f"Converted from the original Tagger API's {config.options.converted_from} ({config.score_kind} scores, "
        "raw text, top-k or threshold selection)."
    )
    register_challenger(runs.settings.client(), model_name, version, description, card)
    return Converted(converted.directory, config, converted.max_score_difference, version)
