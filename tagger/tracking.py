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


@dataclass(frozen=True)
class TrackingSettings:
    tracking_uri: str
    artifact_root: str | None  # only used when this process creates an experiment on a local store
    # Set by `mlflow run`: the launcher's run, whose experiment (--experiment-name) takes precedence.
    launched_run_id: str | None = None
    # Where promote/rollback take their lock file (one per registry and model).
    lock_dir: Path = PROJECT_ROOT / ".locks"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> TrackingSettings:
        env = os.environ if environ is None else environ
        uri = env.get("MLFLOW_TRACKING_URI")
        run_id = env.get("MLFLOW_RUN_ID") or None
        home = Path(env.get("SOTAG_HOME", PROJECT_ROOT))
        lock_dir = Path(env.get("SOTAG_LOCK_DIR", home / ".locks"))
        if uri:
            return cls(
                tracking_uri=uri,
                artifact_root=env.get("SOTAG_ARTIFACT_ROOT"),
                launched_run_id=run_id,
                lock_dir=lock_dir,
            )
        return cls(
            tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
            artifact_root=env.get("SOTAG_ARTIFACT_ROOT", (home / "mlartifacts").as_uri()),
            launched_run_id=run_id,
            lock_dir=lock_dir,
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
