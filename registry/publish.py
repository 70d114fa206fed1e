"""Log a folder of the four artifacts as the sotag pyfunc, and register the version as @challenger.

`sotag train` and `sotag convert-legacy` both publish through here, so every registered
version carries the same pyfunc (models-from-code), signature, input example, pinned requirements
and the `git_commit` of the checkout that logged it (when sotag runs from one).

The code a version carries is the model and nothing else: `sotag.tagger` (the kinds, fused scoring, text
cleaning, the pyfunc), copied under an empty `sotag` package as `code/sotag/tagger/`. Loaded in an environment
built from the version's own requirements alone (`mlflow models serve --env-manager virtualenv`), MLflow puts
`code/` first on sys.path and `sotag.tagger` imports from there; no loader, MLflow client, setting or path of
sotag's travels with it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient

from sotag.registry.card import ModelCard, write_card
from sotag.registry.store import CHALLENGER
from sotag.tagger.errors import ComponentFault, SotagError
from sotag.tagger.kinds import kind_class
from sotag.tagger.pyfunc import MODEL_DIR_KEY, signature

# What the model code imports at module level (tests/registry/test_model_code.py checks it); a kind adds its own.
_BASE_REQUIREMENTS = ("mlflow", "scikit-learn", "numpy", "scipy", "pandas", "joblib", "tqdm")
MODEL_PACKAGE = "sotag.tagger"
# The `sotag/__init__.py` a version carries: `sotag.tagger` alone, and, where sotag itself is installed too, the
# rest of sotag found beside it (pkgutil.extend_path), so loading a model first does not hide the installed sotag.
_NAMESPACE_INIT = (
    '"""The model code of one sotag model version (sotag.tagger); nothing else of sotag travels with it."""\n\n'
    "import pkgutil\n\n"
    "__path__ = pkgutil.extend_path(__path__, __name__)\n"
)


def model_code_dir() -> Path:
    """The folder of the installed `sotag.tagger` package: the model code a version logs."""
    return Path(str(resources.files(MODEL_PACKAGE)))


def git_commit() -> str:
    """HEAD of the checkout sotag runs from (an editable install), with `-dirty` when it has uncommitted changes;
    "unknown" for an installed wheel (its version is logged instead)."""
    code = model_code_dir()
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=code, capture_output=True, text=True, check=True
        ).stdout.strip()
        if Path(top).resolve() / "tagger" != code.resolve():  # site-packages inside someone else's repository
            return "unknown"
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=top, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=top,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def sotag_version() -> str:
    try:
        return version("sotag")
    except PackageNotFoundError:
        return "unknown"


def stage_model_code(into: Path) -> Path:
    """`into/sotag/` holding an empty-namespace `__init__.py` and a copy of `sotag.tagger` (no caches): the one
    code path a version logs (MLflow copies it to `code/sotag/`)."""
    package = into / "sotag"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(_NAMESPACE_INIT)
    shutil.copytree(model_code_dir(), package / "tagger", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return package


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
    with tempfile.TemporaryDirectory(prefix="sotag-model-code-") as staging:
        code = stage_model_code(Path(staging))
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code / "tagger" / "pyfunc_entry.py"),
            artifacts={MODEL_DIR_KEY: str(model_dir)},
            code_paths=[str(code)],
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
