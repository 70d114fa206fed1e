"""`make ui`: the MLflow UI on the embedded store, with direct links to where an ML engineer looks.

MLflow 3.17's UI opens an experiment on its GenAI overview (traces, tokens), which sotag's runs
never fill; the links printed here go straight to the training runs (table and chart views), the
registered model, and the drift-monitoring runs. They are printed once the UI answers (it takes
tens of seconds to start on a loaded machine), with the `MLFLOW_TRACKING_URI` export line that points
MLflow's own tools at this store from any folder.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from types import FrameType

from sotag.infra.tracking import MODEL_NAME, TrackingSettings, runs_view_url
from sotag.mlruns_config.servers import ServerError, _http_ok, _stop, _wait
from sotag.settings import load_settings

# (experiment, label, the command that fills it)
EXPERIMENTS = (
    ("stackoverflow-tagger", "training runs", "make demo / make train"),
    ("drift-monitoring", "drift-monitoring runs", "make drift"),
    # registry/history.py: one run per move of @champion
    (f"{MODEL_NAME}-registry-history", "champion history", "make promote"),
)
START_TIMEOUT_S = 300


def links(settings: TrackingSettings, ui_url: str) -> list[str]:
    client = settings.client()
    out = []
    for name, label, fill in EXPERIMENTS:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            out.append(f"  {label:<22} (none yet: {fill})")
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
    edge = load_settings().settings
    settings = TrackingSettings.from_settings(edge)
    if settings.tracking_uri.startswith(("http://", "https://")):
        # A tracking server serves its own UI: nothing to start, only where to look.
        print(f"the tracking server {settings.tracking_uri} serves the UI:")
        print("\n".join(links(settings, settings.ui_url)))
        return
    ui_url = f"http://{args.host}:{args.port}"
    root = settings.artifact_root or "./mlartifacts"
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    command = ["--backend-store-uri", settings.tracking_uri, "--default-artifact-root", root]
    print(f"mlflow ui on {settings.tracking_uri}: starting on {ui_url} (links once it answers) …", flush=True)
    proc = subprocess.Popen(
        [mlflow, "ui", *command, "--host", args.host, "--port", str(args.port)], start_new_session=True
    )

    def _terminate(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        # Ours answering, not another server already on the port.
        _wait(lambda: proc.poll() is None and _http_ok(f"{ui_url}/health"), "mlflow ui", START_TIMEOUT_S, proc=proc)
        # Commands run in this folder meanwhile print links on this port (infra.tracking.running_ui).
        edge.ui_url_file.write_text(ui_url + "\n")
        print(f"mlflow ui answers on {ui_url}:")
        print("\n".join(links(settings, ui_url)))
        print("MLflow's own tools on this store, from any folder (docs/serving.md: Use it with MLflow's own tools):")
        print(f"  export MLFLOW_TRACKING_URI={settings.tracking_uri}", flush=True)
        sys.exit(proc.wait())
    except ServerError as exc:
        print(f"make ui: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(proc)
        edge.ui_url_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
