"""Log a folder of the four artifacts as the sotag pyfunc, and register the version as @challenger.

`sotag train` and `sotag convert-legacy` both publish through here, so every registered
version carries the same pyfunc (models-from-code, `tagger` as its code path), signature,
input example, pinned requirements and the `git_commit` of the checkout that logged it.
"""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient

from infra.tracking import PROJECT_ROOT
from registry.card import ModelCard, write_card
from registry.store import CHALLENGER
from tagger.errors import ComponentFault, SotagError
from tagger.kinds import kind_class
from tagger.pyfunc import MODEL_DIR_KEY, signature

_BASE_REQUIREMENTS = ("mlflow", "scikit-learn", "numpy", "scipy", "pandas", "joblib")


def git_commit() -> str:
    """HEAD of the project checkout, with `-dirty` when it has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pip_requirements(kind: str) -> list[str]:
    """The base packages and the model kind's own (tagger.kinds), pinned to the installed versions."""
    names = _BASE_REQUIREMENTS + kind_class(kind).requirements
    out = []
    for name in names:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            out.append(name)
    return out


def log_pyfunc(
    model_dir: Path,
    kind: str,
    top_k: int,
    threshold: float,
    example: pd.DataFrame,
    registered_model_name: str | None,
) -> ModelInfo:
    """Log a directory of the four artifacts of a `kind` model as the sotag pyfunc (models-from-code) in the active
    run.

    Registration (when asked) happens only once every artifact is stored: an upload that fails leaves
    nothing registered, and the error names the artifact store."""
    try:
        info = _log_model(model_dir, kind, top_k, threshold, example)
    except Exception as exc:
        if isinstance(exc, SotagError):
            raise
        store = mlflow.get_artifact_uri()
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ComponentFault(f"artifact store {store}: the model could not be stored ({first[:300]})") from exc
    if registered_model_name:
        version = mlflow.register_model(info.model_uri, registered_model_name)
        info.registered_model_version = int(version.version)
    return info


def _log_model(model_dir: Path, kind: str, top_k: int, threshold: float, example: pd.DataFrame) -> ModelInfo:
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(PROJECT_ROOT / "tagger" / "pyfunc_entry.py"),
        artifacts={MODEL_DIR_KEY: str(model_dir)},
        code_paths=[str(PROJECT_ROOT / "tagger")],
        signature=signature(top_k, threshold),
        input_example=(example, {"top_k": top_k, "threshold": threshold}),
        pip_requirements=pip_requirements(kind),
    )


def register_challenger(client: MlflowClient, model_name: str, version: str, description: str, card: ModelCard) -> None:
    """Describe a freshly registered version, tag it with its model card, and point @challenger at it (last, once it
    is complete)."""
    mv = client.update_model_version(model_name, version, description=description)
    write_card(client, mv, card)
    client.set_registered_model_alias(model_name, CHALLENGER, version)
