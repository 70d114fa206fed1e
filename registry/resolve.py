"""Resolve a model URI to a loaded model pinned to one registry version.

Every model URI MLflow accepts: `models:/name@alias`, `models:/name/<version>`, `models:/name/latest`,
`models:/name/<stage>` (Production, Staging, ...), `runs:/<id>/<path>`, a logged model's `models:/<id>`, a local
model folder; registry URIs are parsed and resolved by MLflow's own functions, so sotag takes what MLflow takes.
For a registry URI the version it names is read once and pinned before loading, so an alias or `latest` may move
meanwhile without the caller serving a mix, and that version is what is recorded: batch output, the gateway's
/health and drift say `v7`, not `latest`. The gateway, the drift job and the gate all load through here (and so
through `sotag.infra.model_loading`, the one loading path). Registry reads and downloads go through a client of
the store the caller's `TrackingSettings` name, never through MLflow's process-wide tracking or registry URI.
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

from sotag.infra.model_loading import STORE_FAILURES, LoadedModel, fetch_model, load_model
from sotag.infra.store_errors import TRACKING, fault, first_line, is_absent
from sotag.infra.tracking import MODEL_NAME, TrackingSettings
from sotag.registry.card import ModelCard, read_card
from sotag.tagger.errors import ArtifactError, SotagError
from sotag.tagger.model import Tagger


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
            # Calibrated: the scores are probabilities that the asker chose the tag (sotag.tagger.calibration).
            "calibrated": self.tagger.config.calibration is not None,
            "min_tags": self.tagger.config.min_tags,
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
    in a stage (MLflow's own resolution, `get_model_name_and_version`).

    Not in the registry (SotagError, exit 2) only when the registry says so (RESOURCE_DOES_NOT_EXIST, a registered
    model without that alias, no version in that stage); any other failure is a ComponentFault naming the tracking
    server (exit 1), never "not in the registry"."""
    parsed = _parse_registry_uri(uri)
    try:
        if parsed is not None and parsed.alias:
            # Read from the registered model's aliases: MLflow answers a missing alias with INVALID_PARAMETER_VALUE.
            found = (client.get_registered_model(parsed.name).aliases or {}).get(parsed.alias)
            if found is None:
                raise SotagError(f"{uri}: not in the registry (model {parsed.name} has no @{parsed.alias})")
            return client.get_model_version(parsed.name, str(found))
        name, version = get_model_name_and_version(client, uri)
        return client.get_model_version(name, version)
    except STORE_FAILURES as exc:
        if is_absent(exc) or (isinstance(exc, MlflowException) and str(exc.message).startswith("No versions of")):
            raise SotagError(f"{uri}: not in the registry ({first_line(exc)})") from exc
        raise fault(TRACKING, f"reading {uri}", exc) from exc


def parse_alias_uri(uri: str) -> tuple[str, str] | None:
    """`models:/name@alias` -> (name, alias); None for any other URI (a version, a run, a folder)."""
    parsed = _parse_registry_uri(uri)
    if parsed is None or parsed.name is None or parsed.alias is None:
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


def fetch_version(client: MlflowClient, name: str, version: str) -> Path:
    """The files of version `version` of registered model `name`, read through `client` into a new local folder.

    Raises ArtifactError (the registry or the store says they do not exist) or ComponentFault naming the
    tracking server (locating them) or the artifact store (downloading them)."""
    uri = f"models:/{name}/{version}"
    try:
        source = client.get_model_version_download_uri(name, str(version))
    except STORE_FAILURES as exc:
        if is_absent(exc):
            raise ArtifactError(f"{uri}: not in the registry") from exc
        raise fault(TRACKING, f"locating the files of {uri}", exc) from exc
    return fetch_model(source, client.tracking_uri, shown_as=uri)


def load_version(client: MlflowClient, name: str, version: str) -> LoadedModel:
    """Version `version` of registered model `name`, fetched through `client` and loaded (sha256 verified).

    Raises ComponentFault (could not fetch), ArtifactError (not there) or BrokenModel (fetched, does not load)."""
    uri = f"models:/{name}/{version}"
    return replace(load_model(str(fetch_version(client, name, version)), shown_as=uri), uri=uri)


def _remote(uri: str) -> bool:
    """A URI MLflow resolves against a store (runs:/, mlflow-artifacts:/, s3://, ...), not a local folder."""
    return urlparse(uri).scheme not in ("", "file") and not Path(uri).exists()


def model_files(uri: str, settings: TrackingSettings) -> Path:
    """A local MLmodel folder for `uri`: a registry URI pinned and downloaded, a run or artifact URI downloaded,
    both from `settings`' store; a local folder as it is."""
    if _parse_registry_uri(uri) is not None:
        pinned = pin(uri, settings)
        return fetch_version(settings.client(), pinned.name, pinned.version)
    if not _remote(uri):
        return Path(uri)
    return fetch_model(uri, settings.tracking_uri)


def resolve(uri: str, settings: TrackingSettings) -> ResolvedModel:
    """Load `uri` (registry URIs from `settings`' store); for a registry URI, pin the version first so an alias or
    `latest` may move meanwhile."""
    parsed = _parse_registry_uri(uri)
    if parsed is None:
        if _remote(uri):
            loaded = replace(load_model(str(model_files(uri, settings)), shown_as=uri), uri=uri)
        else:
            loaded = load_model(uri)
        return ResolvedModel(loaded=loaded, name=Path(uri).name or MODEL_NAME, version=None, alias=None, source=uri)
    name, alias = parsed.name, parsed.alias
    client = settings.client()
    mv = _model_version(client, uri)
    card = read_card(client, mv)  # a malformed tag is a CardError naming the version and the tag, before any download
    loaded = load_version(client, name, str(mv.version))
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
