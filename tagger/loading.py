"""The one model-loading path shared by promotion, the gateway and monitoring.

Everything goes through `mlflow.pyfunc.load_model`, exactly as `mlflow models serve` does,
on a registry URI (`models:/stackoverflow-tagger@champion`), a run URI or a local model
directory. A directory holding only the four artifacts (a fetched model) loads directly;
either way every sha256 is verified before anything is unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow.pyfunc
from mlflow.exceptions import MlflowException

from tagger.artifacts import CONFIG_FILE
from tagger.errors import ArtifactError
from tagger.model import Tagger


@dataclass(frozen=True)
class LoadedModel:
    uri: str
    tagger: Tagger
    pyfunc: mlflow.pyfunc.PyFuncModel | None = None  # None for a bare artifact directory


def load_model(uri: str) -> LoadedModel:
    """Load a pyfunc (registry/run URI or MLmodel directory) or a bare artifact directory."""
    path = Path(uri)
    if path.is_dir() and (path / CONFIG_FILE).is_file() and not (path / "MLmodel").is_file():
        return LoadedModel(uri=uri, tagger=Tagger.from_directory(path))
    try:
        model = mlflow.pyfunc.load_model(uri)
    except ArtifactError:
        raise
    except (MlflowException, OSError) as exc:
        raise ArtifactError(f"cannot load model {uri}: {exc}") from exc
    return LoadedModel(uri=uri, tagger=model.unwrap_python_model().tagger, pyfunc=model)
