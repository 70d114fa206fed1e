"""Resolve a model URI to a loaded model pinned to one registry version.

For `models:/name@alias` the alias is read once and the version pinned before loading, so
the alias may move meanwhile without the caller serving a mix. The gateway, the drift job
and the gate all load through here (and so through `tagger.loading`, the one loading path).
Registry reads and downloads go through a client of the store the caller's `TrackingSettings`
name, never through MLflow's process-wide tracking or registry URI.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from infra.tracking import MODEL_NAME, TrackingSettings, download_version
from registry.card import ModelCard, read_card
from tagger.errors import ArtifactError, SotagError
from tagger.loading import LoadedModel, load_model
from tagger.model import Tagger


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
    card: ModelCard = field(default_factory=ModelCard)  # the version's model card (registry.card); empty for a folder
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


def _model_version(client: MlflowClient, uri: str, name: str, alias: str | None, version: str | None) -> ModelVersion:
    try:
        return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException as exc:
        raise SotagError(f"{uri}: not in the registry ({exc.message})") from exc


def pin(uri: str, settings: TrackingSettings) -> PinnedVersion:
    """The registry version `uri` names now in `settings`' store, without loading it (Spark's workers load it
    themselves)."""
    parsed = _parse_registry_uri(uri)
    if parsed is None or not (parsed[1] or parsed[2]):
        raise SotagError(f"{uri}: not a registry URI (models:/name@alias or models:/name/version)")
    name, alias, version = parsed
    mv = _model_version(settings.client(), uri, name, alias, version)
    return PinnedVersion(name, str(mv.version), alias)


def load_version(client: MlflowClient, name: str, version: str) -> LoadedModel:
    """Version `version` of registered model `name`, downloaded through `client` and loaded (sha256 verified)."""
    uri = f"models:/{name}/{version}"
    try:
        local = download_version(client, name, version)
    except MlflowException as exc:
        raise ArtifactError(f"cannot load model {uri}: {exc.message}") from exc
    except OSError as exc:
        raise ArtifactError(f"cannot load model {uri}: {exc}") from exc
    return replace(load_model(str(local)), uri=uri)


def _remote(uri: str) -> bool:
    """A URI MLflow resolves against a store (runs:/, mlflow-artifacts:/, s3://, ...), not a local folder."""
    return urlparse(uri).scheme not in ("", "file") and not Path(uri).exists()


def model_files(uri: str, settings: TrackingSettings) -> Path:
    """A local MLmodel folder for `uri`: a registry URI pinned and downloaded, a run or artifact URI downloaded,
    both from `settings`' store; a local folder as it is."""
    if _parse_registry_uri(uri) is not None:
        pinned = pin(uri, settings)
        return download_version(settings.client(), pinned.name, pinned.version)
    if not _remote(uri):
        return Path(uri)
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=settings.tracking_uri))


def resolve(uri: str, settings: TrackingSettings) -> ResolvedModel:
    """Load `uri` (registry URIs from `settings`' store); for a registry alias, pin the version first so the
    alias may move meanwhile."""
    parsed = _parse_registry_uri(uri)
    if parsed is None:
        if _remote(uri):
            try:
                local = model_files(uri, settings)
            except (MlflowException, OSError) as exc:
                raise ArtifactError(f"cannot load model {uri}: {exc}") from exc
            loaded = replace(load_model(str(local)), uri=uri)
        else:
            loaded = load_model(uri)
        return ResolvedModel(loaded=loaded, name=Path(uri).name or MODEL_NAME, version=None, alias=None, source=uri)
    name, alias, version = parsed
    client = settings.client()
    mv = _model_version(client, uri, name, alias, version)
    loaded = load_version(client, name, str(mv.version))
    card = read_card(mv)
    return ResolvedModel(
        loaded=loaded,
        name=name,
        version=str(mv.version),
        alias=alias,
        run_id=mv.run_id,
        metrics=card.eval_metrics,
        trained_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds"),
        data_digest=card.data_digest,
        source=uri,
        card=card,
    )
