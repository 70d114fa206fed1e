"""Resolve a model URI to a loaded model pinned to one registry version.

For `models:/name@alias` the alias is read once and the version pinned before loading, so
the alias may move meanwhile without the caller serving a mix. The gateway, the drift job
and the gate all load through here (and so through `tagger.loading`, the one loading path).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tagger.errors import SotagError
from tagger.loading import LoadedModel, load_model
from tagger.model import Tagger
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


def parse_alias_uri(uri: str) -> tuple[str, str] | None:
    """`models:/name@alias` -> (name, alias); None for any other URI (a version, a run, a folder)."""
    parsed = _parse_registry_uri(uri)
    if parsed is None or parsed[1] is None:
        return None
    return parsed[0], parsed[1]


@dataclass(frozen=True)
class PinnedVersion:
    name: str
    version: str
    alias: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def pin(uri: str) -> PinnedVersion:
    """The registry version `uri` names now, without loading it (Spark's workers load it themselves)."""
    parsed = _parse_registry_uri(uri)
    if parsed is None or not (parsed[1] or parsed[2]):
        raise SotagError(f"{uri}: not a registry URI (models:/name@alias or models:/name/version)")
    name, alias, version = parsed
    try:
        client = MlflowClient()
        mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException as exc:
        raise SotagError(f"{uri}: not in the registry ({exc.message})") from exc
    return PinnedVersion(name, str(mv.version), alias)


def resolve(uri: str) -> ResolvedModel:
    """Load `uri`; for a registry alias, pin the version first so the alias may move meanwhile."""
    parsed = _parse_registry_uri(uri)
    if parsed is None:
        loaded = load_model(uri)
        return ResolvedModel(loaded=loaded, name=Path(uri).name or MODEL_NAME, version=None, alias=None, source=uri)
    name, alias, version = parsed
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException as exc:
        raise SotagError(f"{uri}: not in the registry ({exc.message})") from exc
    loaded = load_model(f"models:/{name}/{mv.version}")
    tags = mv.tags or {}
    try:
        metrics = {k: float(v) for k, v in json.loads(tags.get("eval_metrics", "{}")).items()}
    except (ValueError, TypeError):
        metrics = {}
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
