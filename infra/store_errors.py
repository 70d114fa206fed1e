"""Absence, outage and corruption told apart for everything read from MLflow's stores.

Only MLflow's `RESOURCE_DOES_NOT_EXIST` means "not there". Every other `MlflowException` (a 503, a 403, a
proxy's 404 without MLflow's body, an internal error), a dropped connection or a timeout is a fault of the
component that was asked: the caller stops with one line naming it (`ComponentFault`, exit 1), and never
decides anything on what it could not read.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException

from sotag.tagger.errors import ComponentFault

TRACKING = "tracking server (model registry)"
ARTIFACTS = "artifact store"
ABSENT = "RESOURCE_DOES_NOT_EXIST"


def is_absent(exc: BaseException) -> bool:
    """True only for MLflow's "does not exist" answer."""
    return isinstance(exc, MlflowException) and exc.error_code == ABSENT


def first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return next((line.strip() for line in str(text).splitlines() if line.strip()), type(exc).__name__)[:300]


def fault(component: str, doing: str, exc: BaseException) -> ComponentFault:
    """`component: <doing> failed: <first line of the cause>` (raise it `from exc`)."""
    return ComponentFault(f"{component}: {doing} failed: {first_line(exc)}")
