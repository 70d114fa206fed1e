"""The one model-loading path shared by promotion, the gateway and monitoring.

Everything goes through `mlflow.pyfunc.load_model`, exactly as `mlflow models serve` does,
on a registry URI (`models:/stackoverflow-tagger@champion`), a run URI or a local model
directory. A directory holding only the four artifacts (a fetched model) loads directly;
either way every sha256 is verified before anything is unpickled.

A remote model is fetched first, then loaded from the local copy, so the two failures stay apart:
* could not fetch (the tracking server or the artifact store failed): `ComponentFault`, naming which;
  a rerun once it is back will do. Only MLflow's RESOURCE_DOES_NOT_EXIST is "not there" (`ArtifactError`);
* fetched, but the files fail their sha256, do not unpickle or do not load: `BrokenModel`; a rerun will not.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import mlflow.artifacts
import mlflow.pyfunc
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tagger.artifacts import CONFIG_FILE
from tagger.errors import ArtifactError, BrokenModel
from tagger.model import Tagger
from tagger.store_errors import ARTIFACTS, TRACKING, fault, is_absent

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


def _registry_source(uri: str) -> str:
    """`models:/name/version` or `models:/name@alias` -> the version's artifact location (tracking-server reads;
    an alias is read from the registered model, where a missing one is absence, not an error)."""
    rest = uri[len("models:/") :]
    name, _, version = rest.partition("@") if "@" in rest else rest.partition("/")
    try:
        client = MlflowClient()
        if "@" in rest:
            version = (client.get_registered_model(name).aliases or {}).get(version)
            if version is None:
                raise ArtifactError(f"{uri}: not in the registry (no such alias)")
        return client.get_model_version_download_uri(name, str(version))
    except _store_failures() as exc:
        if is_absent(exc):
            raise ArtifactError(f"{uri}: not in the registry") from exc
        raise fault(TRACKING, f"locating the files of {uri}", exc) from exc


def fetch_model(uri: str) -> Path:
    """The files of a remote model (`models:/name/version`, `runs:/...`, `mlflow-artifacts:/...`, `s3://...`)
    in a new local folder. Raises ComponentFault (tracking server or artifact store failed) or ArtifactError
    (the registry or the store says it does not exist)."""
    source = _registry_source(uri) if uri.startswith("models:/") else uri
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=source))
    except _store_failures() as exc:
        if is_absent(exc):
            raise ArtifactError(f"{uri}: its files are not in the artifact store ({source})") from exc
        raise fault(ARTIFACTS, f"downloading {uri}", exc) from exc


def load_model(uri: str) -> LoadedModel:
    """Load a pyfunc (registry/run URI or MLmodel directory) or a bare artifact directory.

    Raises ComponentFault (could not fetch), ArtifactError (not there), BrokenModel (fetched, does not load)."""
    path = Path(uri)
    if path.is_dir() and (path / CONFIG_FILE).is_file() and not (path / "MLmodel").is_file():
        return LoadedModel(uri=uri, tagger=Tagger.from_directory(path))
    local = path if path.exists() else fetch_model(uri)
    try:
        model = mlflow.pyfunc.load_model(str(local))
        tagger = model.unwrap_python_model().tagger
    except _LOAD_FAILURES as exc:
        raise BrokenModel(f"{uri}: its files do not load ({type(exc).__name__}: {exc})") from exc
    return LoadedModel(uri=uri, tagger=tagger, pyfunc=model)
