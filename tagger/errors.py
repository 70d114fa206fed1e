"""User-facing error types. Each names the field at fault and the problem."""

from __future__ import annotations


class SotagError(Exception):
    """Base class: an error with a message meant for the user, never a traceback."""


class DataError(SotagError):
    """Input data is missing, malformed or unusable (a missing column, an unknown format)."""


class ArtifactError(SotagError):
    """A model artifact is missing, incomplete or fails its sha256 check."""


class ComponentFault(SotagError):
    """A component the job needs (tracking server, database, object store) failed; the job stopped cleanly."""


class InputError(SotagError, ValueError):
    """A prediction request is malformed; `field` names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class BrokenModel(ArtifactError):
    """A model's files were fetched but fail their sha256, do not unpickle or do not load: a rerun will not help.

    Not a component fault (the store answered) and not absence (the files are there)."""
