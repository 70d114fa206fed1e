"""`make ui`: the MLflow UI on the embedded store, with direct links to where an ML engineer looks.

MLflow 3.17's UI opens an experiment on its GenAI overview (traces, tokens), which sotag's runs
never fill; the links printed here go straight to the training runs (table and chart views), the
registered model, and the drift-monitoring runs.
"""

from __future__ import annotations

import argparse
import os
import sys

from mlflow.tracking import MlflowClient

from infra.tracking import MODEL_NAME, PROJECT_ROOT, TrackingSettings, runs_view_url

EXPERIMENTS = (("stackoverflow-tagger", "training runs"), ("drift-monitoring", "drift-monitoring runs"))


def links(settings: TrackingSettings, ui_url: str) -> list[str]:
    client = MlflowClient(settings.tracking_uri)
    out = []
    for name, label in EXPERIMENTS:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            out.append(f"  {label:<22} (none yet: make demo / make drift)")
            continue
        out.append(f"  {label:<22} {runs_view_url(ui_url, experiment.experiment_id)}")
        if name == "stackoverflow-tagger":
            out.append(f"  {'  metrics as charts':<22} {runs_view_url(ui_url, experiment.experiment_id, 'CHART')}")
    out.append(f"  {'registered model':<22} {ui_url}/#/models/{MODEL_NAME}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="make ui", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    settings = TrackingSettings.from_env()
    if settings.tracking_uri.startswith(("http://", "https://")):
        # A tracking server serves its own UI: nothing to start, only where to look.
        print(f"the tracking server {settings.tracking_uri} serves the UI:")
        print("\n".join(links(settings, settings.ui_url)))
        return
    ui_url = f"http://{args.host}:{args.port}"
    print(f"mlflow ui on {settings.tracking_uri}:")
    print("\n".join(links(settings, ui_url)), flush=True)
    root = settings.artifact_root or (PROJECT_ROOT / "mlartifacts").as_uri()
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    command = ["--backend-store-uri", settings.tracking_uri, "--default-artifact-root", root]
    os.execv(mlflow, [mlflow, "ui", *command, "--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":
    main()
