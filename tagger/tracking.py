"""Where runs and models are tracked: one setting, `MLFLOW_TRACKING_URI`.

With nothing set, the embedded profile applies: a SQLite store `mlflow.db` and an artifact
folder `mlartifacts/` in the project directory (both git-ignored), no server needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "stackoverflow-tagger"
LOCAL_UI_URL = "http://127.0.0.1:5000"  # where `make ui` serves the embedded store


def runs_view_url(ui_url: str, experiment_id: str, mode: str = "TABLE") -> str:
    """An experiment's training-runs view: MLflow 3.17's UI otherwise opens on the GenAI overview.

    `mode` is the view's tab: TABLE (runs with metric columns) or CHART (metrics side by side).
    """
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs?compareRunsMode={mode}"


@dataclass(frozen=True)
class TrackingSettings:
    tracking_uri: str
    artifact_root: str | None  # only used when this process creates an experiment on a local store
    # Set by `mlflow run`: the launcher's run, whose experiment (--experiment-name) takes precedence.
    launched_run_id: str | None = None
    # Where promote/rollback take their lock file (one per registry and model).
    lock_dir: Path = PROJECT_ROOT / ".locks"
    # The MLflow UI for this store: the tracking server itself, else `make ui` (or $MLFLOW_UI_URL).
    ui_url: str = LOCAL_UI_URL

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> TrackingSettings:
        env = os.environ if environ is None else environ
        uri = env.get("MLFLOW_TRACKING_URI")
        run_id = env.get("MLFLOW_RUN_ID") or None
        home = Path(env.get("SOTAG_HOME", PROJECT_ROOT))
        lock_dir = Path(env.get("SOTAG_LOCK_DIR", home / ".locks"))
        if uri:
            server = uri if uri.startswith(("http://", "https://")) else LOCAL_UI_URL
            return cls(
                tracking_uri=uri,
                artifact_root=env.get("SOTAG_ARTIFACT_ROOT"),
                launched_run_id=run_id,
                lock_dir=lock_dir,
                ui_url=env.get("MLFLOW_UI_URL", server),
            )
        return cls(
            tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
            artifact_root=env.get("SOTAG_ARTIFACT_ROOT", (home / "mlartifacts").as_uri()),
            launched_run_id=run_id,
            lock_dir=lock_dir,
            ui_url=env.get("MLFLOW_UI_URL", LOCAL_UI_URL),
        )

    def activate(self) -> MlflowClient:
        """Point mlflow at this store (and its registry) and return a client for it."""
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return MlflowClient(self.tracking_uri, self.tracking_uri)

    def use_experiment(self, name: str) -> str:
        """Create the experiment on first use (artifacts under `artifact_root`) and make it current.

        Under `mlflow run` the launcher already chose the experiment; its run is resumed there.
        """
        if self.launched_run_id:
            experiment_id = MlflowClient(self.tracking_uri).get_run(self.launched_run_id).info.experiment_id
            mlflow.set_experiment(experiment_id=experiment_id)
            return experiment_id
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            location = f"{self.artifact_root.rstrip('/')}/{name}" if self.artifact_root else None
            experiment_id = mlflow.create_experiment(name, artifact_location=location)
        else:
            experiment_id = experiment.experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
        return experiment_id
