"""Settings are passed, not set: registry, resolve, loading, batch scoring and the gateway read the store their
`TrackingSettings` name and leave MLflow's process-wide tracking and registry URIs as they found them."""

from __future__ import annotations

from dataclasses import replace

import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from sotag.infra.scored import read_scored
from sotag.infra.tracking import MODEL_NAME, TrackingSettings
from sotag.registry.resolve import pin, resolve
from sotag.registry.store import CHAMPION, open_registry
from sotag.serving.app import create_app
from sotag.serving.batch import run_score
from sotag.serving.model_holder import ModelHolder
from sotag.serving.score_job import ScoreConfig
from tests.support.settings import gateway_config

TOKEN = "settings-token"


@pytest.fixture()
def elsewhere(store, tmp_path, monkeypatch):
    """MLflow's process-wide URIs point at an empty store, and setting them (or the experiment) fails the test."""
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    set_tracking, set_registry = mlflow.set_tracking_uri, mlflow.set_registry_uri
    set_tracking(uri)
    set_registry(uri)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a library function set process-wide MLflow state ({args or kwargs})")

    for name in ("set_tracking_uri", "set_registry_uri", "set_experiment"):
        monkeypatch.setattr(mlflow, name, refuse)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # nothing may fall back on the environment either
    yield uri
    # The other tests of this module read the serving store through bare clients.
    set_tracking(store.settings.tracking_uri)
    set_registry(store.settings.tracking_uri)


def test_registry_resolve_scoring_and_gateway_read_the_given_store_only(store, elsewhere, questions_parquet, tmp_path):
    settings = store.settings
    champion = str(settings.client().get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    uri = f"models:/{MODEL_NAME}@{CHAMPION}"

    assert pin(uri, settings).version == champion
    resolved = resolve(uri, settings)
    assert resolved.version == champion and len(resolved.tagger.vocabulary) > 0
    registry = open_registry(settings, MODEL_NAME)
    assert CHAMPION in registry.aliases()[champion]
    assert list(registry.load_tagger(champion).vocabulary) == list(resolved.tagger.vocabulary)
    assert ModelHolder(uri, settings).reload().ok

    config = gateway_config(admin_token=TOKEN, prediction_log_url=f"sqlite:///{tmp_path / 'p.db'}")
    with TestClient(create_app(replace(config, tracking=settings))) as client:
        assert client.post("/predict", json={"title": "pandas dataframe merge"}).json()["model"]["version"] == champion
        assert client.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"}).json()["ok"]

    out = tmp_path / "scored"
    result = run_score(ScoreConfig(input=questions_parquet, output=out, engine="local", progress=False), settings)
    assert result.model_version == champion and result.rows_scored > 0
    assert set(read_scored(out)["model_version"]) == {champion}

    # Untouched: the process-wide URIs still name the empty store, which holds no model at all.
    assert mlflow.get_tracking_uri() == elsewhere and mlflow.get_registry_uri() == elsewhere
    assert MlflowClient(elsewhere, elsewhere).search_registered_models() == []
    with pytest.raises(Exception, match="not in the registry"):
        resolve(uri, TrackingSettings(tracking_uri=elsewhere, artifact_root=None))
