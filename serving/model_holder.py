"""The model the gateway serves, and its atomic swap on `/reload`.

A request takes a reference to the current `ServedModel` once and uses it to the end, so a
swap never changes the model under a request in flight: old requests finish on the old
model, new ones get the new one. A reload that fails (missing version, sha256 mismatch,
unloadable file) leaves the current model serving and reports why.
"""

from __future__ import annotations

import json
import threading
import time
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
class ServedModel:
    loaded: LoadedModel
    name: str
    version: str | None
    alias: str | None
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    trained_at: str | None = None
    data_digest: str | None = None
    source: str = ""
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


def resolve(uri: str) -> ServedModel:
    """Load `uri`; for a registry alias, pin the version first so the alias may move meanwhile."""
    parsed = _parse_registry_uri(uri)
    if parsed is None:
        loaded = load_model(uri)
        return ServedModel(loaded=loaded, name=Path(uri).name or MODEL_NAME, version=None, alias=None, source=uri)
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
    return ServedModel(
        loaded=loaded,
        name=name,
        version=str(mv.version),
        alias=alias,
        run_id=mv.run_id,
        metrics=metrics,
        trained_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds"),
        data_digest=tags.get("data_digest"),
        source=uri,
    )


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    message: str
    previous_version: str | None
    version: str | None
    seconds: float


class ModelHolder:
    def __init__(self, uri: str, model: ServedModel | None = None):
        self.uri = uri
        self._model = model if model is not None else resolve(uri)
        self._reload_lock = threading.Lock()

    @property
    def current(self) -> ServedModel:
        return self._model

    def reload(self, uri: str | None = None) -> ReloadResult:
        start = time.perf_counter()
        with self._reload_lock:
            old = self._model
            try:
                new = resolve(uri or self.uri)
            except (SotagError, MlflowException, OSError) as exc:
                return ReloadResult(
                    False, f"kept v{old.version}: {exc}", old.version, old.version, time.perf_counter() - start
                )
            self._model = new  # one reference assignment: atomic for readers
        return ReloadResult(
            True,
            f"now serving {new.name} v{new.version} (was v{old.version})",
            old.version,
            new.version,
            time.perf_counter() - start,
        )
