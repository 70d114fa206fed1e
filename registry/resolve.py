"""Resolve a model URI to a loaded model pinned to one registry version.

For `models:/name@alias` the alias is read once and the version pinned before loading, so
the alias may move meanwhile without the caller serving a mix. The gateway, the drift job
and the gate all load through here (and so through `tagger.loading`, the one loading path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from registry.card import read_card
from tagger.errors import SotagError
from tagger.loading import LoadedModel, load_model
from tagger.model import Tagger
from tagger.store_errors import TRACKING, fault, first_line, is_absent
from tagger.tracking import MODEL_NAME


@dataclass(frozen=True)
class ResolvedModel:
    loaded: LoadedModel
    name: str
    version: str | None
    alias: str | None
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    trained_at: str | None = None
    data_digest: str | None = None
    source: str = ""
    tags: dict[str, str] = field(default_factory=dict)  # the version's tags: split_date, eval_end, eval_metrics, ...
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def tagger(self) -> Tagger:
        return self.loaded.tagger

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "metrics": self.metrics,
            "trained_at": self.trained_at,
            "data_digest": self.data_digest,
            "source": self.source,
            "loaded_at": self.loaded_at,
            "vectorizer": self.tagger.config.vectorizer,
            "n_tags": len(self.tagger.vocabulary),
            "top_k": self.tagger.config.top_k,
            "threshold": self.tagger.config.threshold,
            "score_kind": self.tagger.config.score_kind,
            "preprocessing": self.tagger.config.preprocessing,
            "selection": self.tagger.config.selection,
        }


def _parse_registry_uri(uri: str) -> tuple[str, str | None, str | None] | None:
    """`models:/name@alias` or `models:/name/version` -> (name, alias, version)."""
    if not uri.startswith("models:/"):
        return None
    rest = uri[len("models:/") :]
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, alias, None
    name, _, version = rest.partition("/")
    return name, None, version or None


@dataclass(frozen=True)
class PinnedVersion:
    name: str
    version: str
    alias: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def registry_version(client: MlflowClient, uri: str, name: str, alias: str | None, version: str | None) -> ModelVersion:
    """The version `uri` names now. Not in the registry (SotagError, exit 2) only when the registry says so
    (RESOURCE_DOES_NOT_EXIST, or a registered model without that alias); any other failure is a ComponentFault
    naming the tracking server (exit 1), never "not in the registry"."""
    try:
        if alias:
            # Read from the registered model's aliases: MLflow answers a missing alias with INVALID_PARAMETER_VALUE.
            found = (client.get_registered_model(name).aliases or {}).get(alias)
            if found is None:
                raise SotagError(f"{uri}: not in the registry (model {name} has no @{alias})")
            version = str(found)
        return client.get_model_version(name, str(version))
    except (MlflowException, OSError) as exc:
        if is_absent(exc):
            raise SotagError(f"{uri}: not in the registry ({first_line(exc)})") from exc
        raise fault(TRACKING, f"reading {uri}", exc) from exc


def pin(uri: str) -> PinnedVersion:
    """The registry version `uri` names now, without loading it (Spark's workers load it themselves)."""
    parsed = _parse_registry_uri(uri)
    if parsed is None or not (parsed[1] or parsed[2]):
        raise SotagError(f"{uri}: not a registry URI (models:/name@alias or models:/name/version)")
    name, alias, version = parsed
    mv = registry_version(MlflowClient(), uri, name, alias, version)
    return PinnedVersion(name, str(mv.version), alias)


def resolve(uri: str) -> ResolvedModel:
    """Load `uri`; for a registry alias, pin the version first so the alias may move meanwhile."""
    parsed = _parse_registry_uri(uri)
    if parsed is None:
        loaded = load_model(uri)
        return ResolvedModel(loaded=loaded, name=Path(uri).name or MODEL_NAME, version=None, alias=None, source=uri)
    name, alias, version = parsed
    mv = registry_version(MlflowClient(), uri, name, alias, version)
    tags = mv.tags or {}
    metrics = read_card(mv).eval_metrics  # a malformed tag is a CardError naming the version and the tag
    loaded = load_model(f"models:/{name}/{mv.version}")
    return ResolvedModel(
        loaded=loaded,
        name=name,
        version=str(mv.version),
        alias=alias,
        run_id=mv.run_id,
        metrics=metrics,
        trained_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds"),
        data_digest=tags.get("data_digest"),
        source=uri,
        tags=dict(tags),
    )
