"""Where runs and models are tracked: one setting, `tracking.uri` (`MLFLOW_TRACKING_URI`).

With nothing set, the embedded profile applies: a SQLite store `mlflow.db` and an artifact
folder `mlartifacts/` in the state folder (`home`: the working folder unless `SOTAG_HOME` says), no server needed.

`TrackingSettings` is the tracking view of the settings (`from_settings`), built once per command at the edge (the
CLI's command function or the gateway's configuration) and passed down. Everything that reads or writes the store
builds its client from it (`client()`, `download_version(client, ...)`); MLflow's process-wide tracking and
registry URIs and current experiment are set in one place, `use_fluent`, which only entry points call (the CLI's
command functions, the retrain job behind `sotag retrain` and the gateway's /admin/retrain, the benches): never a
library function. It returns a `FluentRuns`, which the library functions that open MLflow fluent runs (a training
run, a comparison, an evaluation, a drift run, a legacy conversion) take as an argument: their signature says they
log fluent runs, and they cannot be called before the entry point has pointed MLflow at the store.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.artifacts
from mlflow.tracking import MlflowClient

from sotag.settings import MODEL_NAME, Settings

__all__ = ["MODEL_NAME", "FluentRuns", "TrackingSettings", "download_version", "use_fluent"]
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
    lock_dir: Path = Path(".locks")
    # The MLflow UI for this store: the tracking server itself, else `make ui` (or $MLFLOW_UI_URL).
    ui_url: str = LOCAL_UI_URL
    # The database whose advisory lock serialises champion moves across hosts (the server profile); None: lock_dir.
    promote_lock_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TrackingSettings:
        uri = settings.tracking_uri
        remote = uri.startswith(("http://", "https://"))
        return cls(
            tracking_uri=uri,
            artifact_root=settings.artifact_root,
            launched_run_id=settings.tracking.launched_run_id,
            lock_dir=settings.lock_dir,
            ui_url=settings.tracking.ui_url or (uri if remote else running_ui(settings) or LOCAL_UI_URL),
            promote_lock_url=settings.promotion_lock_url,
        )

    @property
    def registry_uri(self) -> str:
        """The model registry lives in the tracking store."""
        return self.tracking_uri

    def client(self) -> MlflowClient:
        """A client for this store and its registry (never MLflow's process-wide URIs)."""
        use_write_ahead_log(self.tracking_uri)
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)


def running_ui(settings: Settings) -> str | None:
    """The URL `make ui` serves this home's store on (the port it was given), noted while it runs; None otherwise."""
    try:
        noted = settings.ui_url_file.read_text().strip()
    except OSError:
        return None
    return noted if noted.startswith(("http://", "https://")) else None


_WAL_DONE: set[str] = set()


def use_write_ahead_log(uri: str) -> None:
    """Put an embedded SQLite store (`sqlite:///path`) in write-ahead-log mode, once per file and process.

    Why: in SQLite's default rollback-journal mode a reader holds the whole file while it reads, so a training
    run that commits while `make ui`, a test's poll or a second command reads the store waits, and under load
    fails with "database is locked" (MLflow waits 20 s, then gives up). In WAL mode readers never block the writer
    nor the writer readers. The mode is a property of the file (every later connection, `mlflow ui`'s included,
    uses it); a file that does not exist yet is created in that mode, and MLflow then creates its tables in it.
    Other stores (PostgreSQL, a tracking server) are left alone.

    Best effort: switching modes needs the file to itself, so while another process is inside it (creating its
    tables, say) the store stays as it is for this call and the next client tries again; a file that cannot be
    opened at all is left for MLflow to report (a component fault at the CLI)."""
    if not uri.startswith("sqlite:///") or uri in _WAL_DONE:
        return
    path = uri.removeprefix("sqlite:///")
    if path in ("", ":memory:"):
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=5)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        finally:
            conn.close()
    except (sqlite3.Error, OSError):
        return
    if mode == ("wal",):
        _WAL_DONE.add(uri)


def download_version(client: MlflowClient, name: str, version: str, dst: Path | None = None) -> Path:
    """The files of registered model `name` version `version`, read through `client` (its store, not MLflow's
    process-wide registry URI): a local MLmodel folder that `mlflow.pyfunc.load_model` loads as it would
    `models:/name/version`, downloaded into `dst` (a new temporary folder when None, as `load_model` would).

    Raises MlflowException when the version or its artifacts cannot be read."""
    source = client.get_model_version_download_uri(name, str(version))
    dst = Path(tempfile.mkdtemp(prefix="sotag-model-")) if dst is None else dst
    dst.mkdir(parents=True, exist_ok=True)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=source,
        dst_path=str(dst),
        tracking_uri=client.tracking_uri,
        registry_uri=client.tracking_uri,  # sotag's registry lives in its tracking store
    )
    return Path(local)


@dataclass(frozen=True)
class FluentRuns:
    """MLflow's fluent API (`mlflow.start_run`, `mlflow.log_*`) pointed at `settings`' store and `experiment_id`.

    Made only by `use_fluent`, at an entry point; taken by the library functions that open fluent runs, which
    read the store's settings from it and set nothing themselves."""

    settings: TrackingSettings
    experiment_id: str


def use_fluent(settings: TrackingSettings, experiment: str) -> FluentRuns:
    """Make `settings`' store and `experiment` MLflow's process-wide current ones (entry points only).

    The one place sotag sets process-wide MLflow state: the CLI's command functions, the retrain job and the
    benches call it before a library function that logs fluent runs. The experiment is created on first use
    (artifacts under `artifact_root`); under `mlflow run` the launcher already chose it, and its run is resumed
    there. Raises MlflowException when the store cannot be reached (a component fault at the CLI).
    """
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    client = settings.client()
    if settings.launched_run_id:
        experiment_id = client.get_run(settings.launched_run_id).info.experiment_id
    else:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            location = f"{settings.artifact_root.rstrip('/')}/{experiment}" if settings.artifact_root else None
            experiment_id = client.create_experiment(experiment, artifact_location=location)
        else:
            experiment_id = found.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return FluentRuns(settings, experiment_id)


def note_launched_run(settings: TrackingSettings, stage: str, own_experiment: str, exit_code: int) -> str | None:
    """Under `mlflow run` (the launcher made a run, `launched_run_id`): tag it with the stage and its exit code,
    so runs are told apart in the UI; when the launcher put it in another experiment than the stage's own (the
    training runs, or "Default"), the note that says which to name. None when not launched."""
    if not settings.launched_run_id:
        return None
    client = settings.client()
    run = client.get_run(settings.launched_run_id)
    client.set_tag(run.info.run_id, "sotag.stage", stage)
    client.set_tag(run.info.run_id, "sotag.exit_code", str(exit_code))
    experiment = client.get_experiment(run.info.experiment_id).name
    if experiment == own_experiment:
        return None
    return (
        f"note:  `mlflow run` put this {stage} run in '{experiment}'; {stage} runs belong in '{own_experiment}': "
        f"pass --experiment-name {own_experiment}"
    )


def log_to_launched_run(settings: TrackingSettings, metrics: dict[str, float], tags: dict[str, str]) -> None:
    """What a command without a run of its own (promote, rollback) decided, on the launcher's run when there is
    one: a run `mlflow run` made is never left without its outcome."""
    if not settings.launched_run_id:
        return
    client = settings.client()
    for key, value in metrics.items():
        client.log_metric(settings.launched_run_id, key, value)
    for key, value in tags.items():
        client.set_tag(settings.launched_run_id, key, value)
