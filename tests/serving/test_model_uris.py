"""Every model URI MLflow accepts works in `sotag score` and the gateway, pinned to the version it names now.

Field case (issue 20, kind 7): `models:/stackoverflow-tagger/latest` exited 2 in `sotag score` and `sotag gateway`
("Parameter 'version' must be an integer, got 'latest'") while `sotag serve` and MLflow took it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from sotag.cli import main as sotag_main
from sotag.infra.prediction_log import read_predictions
from sotag.infra.tracking import MODEL_NAME
from sotag.serving.app import create_app
from tests.serving.conftest import throwaway_store
from tests.support.prometheus import metric_value
from tests.support.settings import gateway_config


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, questions_parquet: Path):
    """v1 @champion and in stage Production; v2 the newest (only registered), so `latest` is not the champion."""
    with throwaway_store(tmp_path_factory.mktemp("uri-store"), questions_parquet) as store:
        champion = store.train_and_promote()
        newest = store.train_and_promote(threshold=0.3)  # promoted, then the alias goes back to v1
        client = MlflowClient()
        client.set_registered_model_alias(MODEL_NAME, "champion", champion)
        client.transition_model_version_stage(MODEL_NAME, champion, "Production")
        mv = client.get_model_version(MODEL_NAME, champion)
        local = Path(client.download_artifacts(mv.run_id, "model", str(store.root / "local-copy")))
        yield store, {"champion": champion, "newest": newest, "run_id": mv.run_id, "local": local}


def _forms(versions: dict) -> list[tuple[str, str | None]]:
    """(URI, the version it must pin; None where the URI names no registry version)."""
    return [
        (f"models:/{MODEL_NAME}@champion", versions["champion"]),
        (f"models:/{MODEL_NAME}/{versions['champion']}", versions["champion"]),
        (f"models:/{MODEL_NAME}/latest", versions["newest"]),  # the field case
        (f"models:/{MODEL_NAME}/Latest", versions["newest"]),  # MLflow takes it in any case
        (f"models:/{MODEL_NAME}/Production", versions["champion"]),
        (f"models:/{MODEL_NAME}/production", versions["champion"]),
        (f"runs:/{versions['run_id']}/model", None),
        (str(versions["local"]), None),
    ]


FORMS = ["@champion", "version", "latest", "Latest", "Production", "production", "runs", "folder"]


@pytest.mark.parametrize("form", FORMS)
def test_sotag_score_takes_every_model_uri_and_records_the_version_it_pinned(registry, form, tmp_path, capsys):
    store, versions = registry
    uri, version = dict(zip(FORMS, _forms(versions), strict=True))[form]
    out = tmp_path / "scored"
    code = sotag_main(["score", str(store.data), "--out", str(out), "--engine", "local", "--no-progress",
                       "--model-uri", uri])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    scored = pd.concat(pd.read_parquet(p) for p in out.rglob("*.parquet"))
    assert len(scored) == 360
    if version is not None:
        assert set(scored["model_version"]) == {version}
        assert f"version={version} " in printed.out and "latest" not in printed.out.lower()


@pytest.mark.parametrize("form", FORMS)
def test_the_gateway_starts_on_every_model_uri_and_reports_the_pinned_version(registry, form, tmp_path):
    """Field case: started on `models:/stackoverflow-tagger/latest` the gateway labelled its answers `alias: null,
    arm: champion`. Only the alias it follows is the champion arm; any other URI is `pinned`, the same in the
    answer, /health, the batch answer, the prediction log and `sotag_answers_total{arm}`."""
    _, versions = registry
    uri, version = dict(zip(FORMS, _forms(versions), strict=True))[form]
    alias, arm = ("champion", "champion") if form == "@champion" else (None, "pinned")
    url = f"sqlite:///{tmp_path / 'p.db'}"
    config = gateway_config(model_uri=uri, prediction_log_url=url, reload_poll_s=0)
    question = {"title": "pandas dataframe merge", "top_k": 1, "threshold": 0.0}
    with TestClient(create_app(config)) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok"
        if version is not None:
            assert health["model"]["version"] == version
        answer = client.post("/predict", json=question)
        assert answer.status_code == 200 and answer.json()["tags"] == ["python"]
        batch = client.post("/predict/batch", json={"questions": [{"title": question["title"]}]}).json()
        metrics = client.get("/metrics").text
    served = {"version": version, "alias": alias, "arm": arm, "uri": uri}
    for model in (answer.json()["model"], health["model"], batch["model"], batch["results"][0]["model"]):
        assert {key: model[key] for key in served} == served, model
        assert model["name"] == (MODEL_NAME if form not in ("runs", "folder") else "model")
    assert metric_value(metrics, "sotag_answers_total", version=version or "local", arm=arm) == 2
    assert list(read_predictions(url)["arm"]) == [arm, arm]


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        (f"models:/{MODEL_NAME}/Staging", "Staging"),  # a stage no version is in
        (f"models:/{MODEL_NAME}/99", "99"),
        (f"models:/{MODEL_NAME}@nobody", "nobody"),
        ("models:/", "models:/"),
        (f"models:/{MODEL_NAME}/1/2", "models:/"),
    ],
)
def test_a_uri_naming_nothing_is_exit_2_naming_it(registry, uri, words, tmp_path, capsys):
    store, _ = registry
    code = sotag_main(["score", str(store.data), "--out", str(tmp_path / "o"), "--engine", "local", "--no-progress",
                       "--model-uri", uri])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert words in err and "Traceback" not in err
