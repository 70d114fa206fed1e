"""Resolve a model URI to a loaded model pinned to one registry version.

Every model URI MLflow accepts: `models:/name@alias`, `models:/name/<version>`, `models:/name/latest`,
`models:/name/<stage>` (Production, Staging, ...), `runs:/<id>/<path>`, a logged model's `models:/<id>`, a local
model folder; registry URIs are parsed and resolved by MLflow's own functions, so sotag takes what MLflow takes.
For a registry URI the version it names is read once and pinned before loading, so an alias or `latest` may move
meanwhile without the caller serving a mix, and that version is what is recorded: batch output, the gateway's
/health and drift say `v7`, not `latest`. The gateway, the drift job and the gate all load through here (and so
through `tagger.loading`, the one loading path). Registry reads and downloads go through a client of the store the
caller's `TrackingSettings` name, never through MLflow's process-wide tracking or registry URI.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.utils.models import ParsedModelUri, _parse_model_uri, get_model_name_and_version
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


def _parse_registry_uri(uri: str) -> ParsedModelUri | None:
    """A `models:/` URI naming a registered model, parsed as MLflow parses it (`name@alias`, `name/<version>`,
    `name/latest`, `name/<stage>`); None for any other URI (runs:/, a folder, a logged model's `models:/<id>`)."""
    if not uri.startswith("models:/"):
        return None
    try:
        parsed = _parse_model_uri(uri)
    except MlflowException as exc:
        raise SotagError(f"{uri}: {exc.message}") from exc
    return parsed if parsed.name is not None else None


def _model_version(client: MlflowClient, uri: str) -> ModelVersion:
    """The registry version a registry `uri` names now: by alias, by number, the newest (`latest`) or the newest
    in a stage (MLflow's own resolution, `get_model_name_and_version`)."""
    try:
        name, version = get_model_name_and_version(client, uri)
        return client.get_model_version(name, version)
    except MlflowException as exc:
        raise SotagError(f"{uri}: not in the registry ({exc.message})") from exc


def parse_alias_uri(uri: str) -> tuple[str, str] | None:
    """`models:/name@alias` -> (name, alias); None for any other URI (a version, a run, a folder)."""
    parsed = _parse_registry_uri(uri)
    if parsed is None or parsed.alias is None:
        return None
    return parsed.name, parsed.alias


@dataclass(frozen=True)
class PinnedVersion:
    name: str
    version: str
    alias: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def pin(uri: str, settings: TrackingSettings) -> PinnedVersion:
    """The registry version `uri` names now in `settings`' store, without loading it (Spark's workers load it
    themselves)."""
    parsed = _parse_registry_uri(uri)
    if parsed is None:
        raise SotagError(f"{uri}: not a registry URI (models:/name@alias, models:/name/<version|latest|stage>)")
    mv = _model_version(settings.client(), uri)
    return PinnedVersion(parsed.name, str(mv.version), parsed.alias)


def pinned_uri(uri: str, settings: TrackingSettings) -> str:
    """`uri` with a registry URI replaced by `models:/name/<version>`, the version it names now; any other as is."""
    return pin(uri, settings).uri if _parse_registry_uri(uri) is not None else uri


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
    """Load `uri` (registry URIs from `settings`' store); for a registry URI, pin the version first so an alias or
    `latest` may move meanwhile."""
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
    name, alias = parsed.name, parsed.alias
    client = settings.client()
    mv = _model_version(client, uri)
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
