"""`convert-legacy BUNDLE DEST`: a monolithic pickled model (seed 000) to the four-file contract.

A legacy bundle is one joblib/pickle file holding the vectorizer, the one-vs-rest classifier,
the MultiLabelBinarizer, top_k and threshold (as a dict, or an object with those attributes).
Conversion fuses the classifier's per-tag coefficients, writes `vectorizer.joblib`,
`estimator.joblib`, `mlb.joblib` and `config.json` with their sha256, checks that the
converted model scores exactly as the bundle did, and can log and register it as a pyfunc.

Unpickling runs code: convert only bundles you trust. The bundle's own sha256 is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from registry.publish import git_commit, log_pyfunc, register_challenger
from tagger.artifacts import ModelConfig, sha256_file, write_artifacts
from tagger.errors import ArtifactError
from tagger.fused import FusedLinearModel
from tagger.text import PREPROCESSING_VERSION

ALIASES = {
    "vectorizer": ("vectorizer", "vectoriser", "tfidf", "vect"),
    "classifier": ("classifier", "estimator", "model", "clf"),
    "mlb": ("mlb", "binarizer", "multilabel_binarizer", "label_binarizer"),
    "top_k": ("top_k", "topk", "k"),
    "threshold": ("threshold", "thresh"),
}


@dataclass(frozen=True)
class Converted:
    directory: Path
    config: ModelConfig
    max_score_difference: float
    version: str | None = None


def _get(bundle: Any, part: str, default: Any = None) -> Any:
    for key in ALIASES[part]:
        if isinstance(bundle, dict) and key in bundle:
            return bundle[key]
        if not isinstance(bundle, dict) and hasattr(bundle, key):
            return getattr(bundle, key)
    if default is not None:
        return default
    found = sorted(bundle) if isinstance(bundle, dict) else sorted(vars(bundle)) if hasattr(bundle, "__dict__") else []
    raise ArtifactError(f"bundle: no {part} (looked for {', '.join(ALIASES[part])}; found {', '.join(found)})")


def _vectorizer_kind(vectorizer: Any) -> str:
    if isinstance(vectorizer, TfidfVectorizer):
        return "tfidf"
    if isinstance(vectorizer, CountVectorizer):
        return "bow"
    name = type(vectorizer).__name__
    raise ArtifactError(f"bundle: vectorizer is a {name}; a fitted CountVectorizer or TfidfVectorizer is needed")


def convert_legacy(bundle_path: Path, dest: Path, default_top_k: int = 5, default_threshold: float = 0.3) -> Converted:
    bundle_path = Path(bundle_path)
    if not bundle_path.is_file():
        raise ArtifactError(f"{bundle_path}: no such bundle")
    try:
        bundle = joblib.load(bundle_path)
    except Exception as exc:  # any unpickling failure is a bad bundle, not a crash
        raise ArtifactError(f"{bundle_path}: not a joblib/pickle bundle ({type(exc).__name__}: {exc})") from exc
    vectorizer = _get(bundle, "vectorizer")
    classifier = _get(bundle, "classifier")
    mlb = _get(bundle, "mlb")
    top_k = int(_get(bundle, "top_k", default_top_k))
    threshold = float(_get(bundle, "threshold", default_threshold))
    kind = _vectorizer_kind(vectorizer)
    if not isinstance(classifier, OneVsRestClassifier):
        name = type(classifier).__name__
        raise ArtifactError(f"bundle: classifier is a {name}; a fitted OneVsRestClassifier is needed")
    if not isinstance(mlb, MultiLabelBinarizer) or not hasattr(mlb, "classes_"):
        raise ArtifactError("bundle: mlb must be a fitted MultiLabelBinarizer")
    vocabulary = [str(c) for c in mlb.classes_]
    fused = FusedLinearModel.from_one_vs_rest(classifier)
    if fused.n_tags != len(vocabulary):
        raise ArtifactError(f"bundle: the classifier scores {fused.n_tags} tags, the binarizer has {len(vocabulary)}")

    # The converted model must score as the bundle did, on the bundle's own vocabulary.
    probe = list(vectorizer.vocabulary_)[:200]
    features = vectorizer.transform([" ".join(probe[i : i + 20]) for i in range(0, len(probe), 20)] or ["x"])
    difference = float(np.abs(fused.predict_proba(features) - classifier.predict_proba(features)).max())
    if difference > 1e-5:
        raise ArtifactError(f"bundle: the fused estimator differs from the classifier by {difference:.2e}")

    config = ModelConfig(
        top_k=top_k,
        threshold=threshold,
        vectorizer=kind,
        vocabulary=vocabulary,
        preprocessing_version=PREPROCESSING_VERSION,
        keep_code=True,
        extra={"title_repeat": 1, "converted_from": bundle_path.name, "bundle_sha256": sha256_file(bundle_path)},
    )
    directory = write_artifacts(dest, vectorizer, fused, mlb, config)
    return Converted(directory=directory, config=config, max_score_difference=difference)


def register_converted(converted: Converted, model_name: str) -> Converted:
    """Log the converted directory as a pyfunc run (in the current experiment) and register it as @challenger."""
    config = converted.config
    example = pd.DataFrame({"title": ["How do I parse JSON in Python?"], "body": ["<p>json.loads fails</p>"]})
    with mlflow.start_run(run_name=f"convert-{config.extra['converted_from']}") as run:
        mlflow.set_tags({"sotag.stage": "convert-legacy", "git_commit": git_commit()})
        mlflow.log_params(
            {
                "vectorizer": config.vectorizer,
                "top_k": config.top_k,
                "threshold": config.threshold,
                "top_n_tags": len(config.vocabulary),
                "bundle_sha256": config.extra["bundle_sha256"],
            }
        )
        info = log_pyfunc(converted.directory, config.vectorizer, config.top_k, config.threshold, example, model_name)
    version = str(info.registered_model_version)
    tags = {
        "run_id": run.info.run_id,
        "vectorizer": config.vectorizer,
        "top_n_tags": str(len(config.vocabulary)),
        "converted_from": config.extra["converted_from"],
        "bundle_sha256": config.extra["bundle_sha256"],
    }
    description = f"Converted from the legacy bundle {config.extra['converted_from']}."
    register_challenger(MlflowClient(), model_name, version, description, tags)
    return Converted(converted.directory, config, converted.max_score_difference, version)
