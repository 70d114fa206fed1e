"""The one model-loading path shared by promotion, the gateway and monitoring.

A model in a store is fetched first, then loaded from the local copy, so the two failures stay apart:
* `fetch_model` (the caller names the store: `registry.resolve` passes its settings' tracking URI, and reads a
  registry version's location through its client): could not fetch = `ComponentFault` naming the artifact store
  (a rerun once it is back will do); only MLflow's RESOURCE_DOES_NOT_EXIST is "not there" (`ArtifactError`);
* `load_model` on the local folder, exactly as `mlflow models serve` loads it (`mlflow.pyfunc.load_model`; a folder
  holding only the four artifacts loads directly): every sha256 is verified before anything is unpickled, and
  files that fail it, do not unpickle or do not load are `BrokenModel`; a rerun will not help.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import mlflow.artifacts
import mlflow.pyfunc
from mlflow.exceptions import MlflowException

from sotag.infra.store_errors import ARTIFACTS, fault, is_absent
from sotag.tagger.artifacts import CONFIG_FILE
from sotag.tagger.errors import ArtifactError, BrokenModel
from sotag.tagger.model import Tagger

# What a fetched model's files raise when they are altered, truncated or from an incompatible build.
_LOAD_FAILURES = (
    ArtifactError, MlflowException, OSError, pickle.UnpicklingError, EOFError, ImportError, AttributeError,
    ValueError, TypeError, KeyError, IndexError,
)  # fmt: skip


@dataclass(frozen=True)
class LoadedModel:
    uri: str
    tagger: Tagger
    pyfunc: mlflow.pyfunc.PyFuncModel | None = None  # None for a bare artifact directory


def _store_failures() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [MlflowException, OSError]  # requests' errors are OSErrors
    try:
        import botocore.exceptions

        kinds += [botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError]
    except ImportError:
        pass
    return tuple(kinds)


# What reading MLflow's stores raises on an outage or a refusal (classified by `sotag.infra.store_errors`).
STORE_FAILURES = _store_failures()


def fetch_model(uri: str, tracking_uri: str | None, shown_as: str | None = None) -> Path:
    """The files at artifact URI `uri` (`runs:/...`, `mlflow-artifacts:/...`, `s3://...`, a version's download URI)
    in a new local folder, read from the store `tracking_uri` names. Raises ComponentFault (the artifact store
    failed) or ArtifactError (the store says they do not exist); messages name `shown_as` (default `uri`)."""
    shown = shown_as or uri
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, tracking_uri=tracking_uri, registry_uri=tracking_uri
        )
    except STORE_FAILURES as exc:
        if is_absent(exc):
            raise ArtifactError(f"{shown}: its files are not in the artifact store ({uri})") from exc
        raise fault(ARTIFACTS, f"downloading {shown}", exc) from exc
    return Path(local)


def load_model(uri: str, shown_as: str | None = None) -> LoadedModel:
    """Load a local MLmodel directory (a fetched model: `fetch_model`, `registry.resolve`) or a bare artifact
    directory. Raises BrokenModel (the files fail their sha256, do not unpickle or do not load) or ArtifactError
    (no such directory); messages name `shown_as` (default `uri`)."""
    shown = shown_as or uri
    path = Path(uri)
    if not path.exists():
        raise ArtifactError(f"{shown}: no model there (a store's URI is fetched first: registry.resolve)")
    try:
        if path.is_dir() and (path / CONFIG_FILE).is_file() and not (path / "MLmodel").is_file():
            return LoadedModel(uri=uri, tagger=Tagger.from_directory(path))
        model = mlflow.pyfunc.load_model(str(path))
        tagger = model.unwrap_python_model().tagger
    except _LOAD_FAILURES as exc:
        raise BrokenModel(f"{shown}: its files do not load ({type(exc).__name__}: {exc})") from exc
    return LoadedModel(uri=uri, tagger=tagger, pyfunc=model)
