"""The kinds table: every model kind sotag can train or serve, by the name config.json records.

Adding a kind is one module in this package (a `tagger.kinds.base.ModelKind` subclass) and one entry here;
`Tagger`, the pyfunc, training, the gate and monitoring know only the interface.
"""

from __future__ import annotations

from sotag.tagger.errors import ArtifactError
from sotag.tagger.kinds.base import ModelKind
from sotag.tagger.kinds.ensemble import EnsembleKind
from sotag.tagger.kinds.legacy import LegacyKind
from sotag.tagger.kinds.linear import BowKind, SbertKind, TfidfKind
from sotag.tagger.kinds.plt import TreeKind

KINDS: dict[str, type[ModelKind]] = {
    kind.name: kind for kind in (BowKind, TfidfKind, SbertKind, EnsembleKind, TreeKind, LegacyKind)
}


def trainable_kinds() -> tuple[str, ...]:
    """The kinds `sotag train --vectorizer` / `sotag compare --vectorizers` offer, in table order."""
    return tuple(name for name, kind in KINDS.items() if kind.trainable)


def kind_class(name: str) -> type[ModelKind]:
    """The kind named `name`; ArtifactError (config.json's `kind`) when the table has no such kind."""
    try:
        return KINDS[name]
    except KeyError:
        raise ArtifactError(f"config.json: kind {name!r} is not one of {', '.join(KINDS)}") from None
