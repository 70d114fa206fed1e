"""The one settings object: every knob of every command, built once at the edge and passed down.

Precedence, lowest first (pydantic-settings merges the sources in this order):

1. the defaults written below, once;
2. a config file: `--config PATH`, else `$SOTAG_CONFIG`, else `sotag.toml` / `sotag.yaml` / `sotag.yml` in the
   working folder (TOML or YAML; the same sections as here: `[train]`, `[promote]`, `[gateway]`, ...);
3. the environment: the documented names in `ENVIRONMENT` (`MLFLOW_TRACKING_URI`, `SOTAG_HOME`, `SOTAG_DATA`,
   `SOTAG_ADMIN_TOKEN`, ...), and any field as `SOTAG_<SECTION>__<FIELD>` (`SOTAG_TRAIN__TOP_N_TAGS=200`);
4. command-line flags (each flag's `dest` is the field's dotted path: `train.top_n_tags`).

`sotag config` prints the effective values and where each came from (`provenance`). This module is the only
product code that reads the environment: library code receives a `Settings` (or a typed view built from it) and
never looks at `os.environ`, the package's location or the checkout.

State: everything sotag writes (the embedded MLflow store, artifacts, promotion locks, the prediction log and its
spool, the fetched model, drift reports, the embedding cache) lives under `home`, by default the folder the
command runs in (as MLflow's own `mlflow.db` default does); one setting, `SOTAG_HOME` / `home =`, moves all of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from sotag.tagger.errors import InputError

MODEL_NAME = "stackoverflow-tagger"
CHAMPION = "champion"
CHALLENGER = "challenger"
# The model the model-using commands take when nothing names one (`Settings.served_model_uri`): the one default.
DEFAULT_MODEL_URI = f"models:/{MODEL_NAME}@{CHAMPION}"
CONFIG_FILES = ("sotag.toml", "sotag.yaml", "sotag.yml")
ENV_PREFIX = "SOTAG_"
NESTED = "__"
SECRETS = frozenset(
    {"gateway.admin_token", "gateway.webhook_secret", "server.flask_secret_key", "server.auth_admin_password"}
)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrackingSection(Section):
    uri: str | None = None  # None: the embedded store, sqlite:///<home>/mlflow.db
    artifact_root: str | None = None  # None: <home>/mlartifacts (embedded store); a server chooses its own
    ui_url: str | None = None  # the MLflow UI of this store (None: the tracking server itself, else make ui's)
    lock_dir: Path | None = None  # None: <home>/.locks (promotion's compare-and-set lock)
    launched_run_id: str | None = None  # set by `mlflow run` (MLFLOW_RUN_ID): its run is resumed
    model_name: str = MODEL_NAME


class PltOptions(Section):
    """The label-tree kind's own option."""

    min_tag_questions: int = Field(5, ge=1)  # its vocabulary: every tag on at least this many training questions


class EnsembleOptions(Section):
    """The ensemble kind's own options."""

    sbert_C: float = Field(10.0, gt=0)  # the SBERT head's C
    weight: float | None = Field(None, ge=0, le=1)  # a fixed TF-IDF weight; None: chosen on the newest share
    validation_share: float = Field(0.15, gt=0, lt=1)
    metric: str = "f1_at_3"


class TrainSection(Section):
    kind: str = "plt"  # --vectorizer: the model kind (sotag.tagger.kinds)
    split_date: str = "2018-04-20"
    eval_end: str | None = None
    top_n_tags: int = Field(100, ge=1)
    exclude_sources: str = ""
    keep_code: bool = True
    max_features: int = Field(100_000, ge=1)
    ngram_max: int = Field(2, ge=1)
    min_df: int = Field(2, ge=1)
    C: float = Field(30.0, gt=0)
    top_k: int = Field(5, ge=1)
    # The served threshold on calibrated probabilities; None: the one with the best served F1 on the newest
    # `ensemble.validation_share` of the training window (the slice the calibration is fitted on).
    threshold: float | None = Field(None, ge=0, le=1)
    choose_threshold: bool = False  # choose it even when `threshold` is set (the flag of versions before 0.4)
    calibrate: bool = True  # map the kind's scores to calibrated probabilities (sotag.tagger.calibration)
    min_tags: int = Field(1, ge=0)  # every question gets at least this many tags (its best), at most top_k
    n_jobs: int = Field(2, ge=1)
    experiment: str = "stackoverflow-tagger"
    eval_days: int = Field(30, ge=1)  # retrain: evaluate on the last N days of the data
    # retrain: the fewest questions neither the challenger nor the champion trained on that it judges on; fewer:
    # the champion is kept without a verdict (exit 3), the reason said
    retrain_min_questions: int = Field(200, ge=1)
    # train: an evaluation window of fewer questions is too small for its figures to judge the model; the run warns
    # (and tags itself sotag.small_data), never refuses
    min_eval_questions: int = Field(200, ge=1)
    compare_kinds: str | None = None  # compare: comma-separated kinds (None: every trainable kind)
    plt: PltOptions = PltOptions()
    ensemble: EnsembleOptions = EnsembleOptions()


class PromoteSection(Section):
    # Where `mlflow run . -e promote|rollback` runs belong (the launcher's run records the decision): not among the
    # training runs.
    experiment: str = "stackoverflow-tagger-promotions"
    primary_metric: str = "f1_at_3_all"
    floor_metric: str = "f1_at_3"
    floor: float = Field(0.45, ge=0, le=1)
    # "fixed": the challenger must reach `floor`. "champion": with a champion scored on the same window, the floor is
    # never above the champion's own value there. A window of harder questions (new topics, titles only: June 2026's
    # retrains scored F1@3 0.34-0.37) lowers both models' figures, and a challenger at least as good as the champion
    # on the same questions is then not refused by a bar the champion itself no longer clears; a first champion
    # still needs `floor`. For a loop that retrains on the newest weeks.
    floor_mode: Literal["fixed", "champion"] = "fixed"
    min_delta: float = 0.0
    max_latency_ms: float = Field(5.0, gt=0)
    behaviour_cases: Path | None = None  # None: the cases shipped with sotag (sotag.registry)
    run_behaviour_cases: bool = True
    mirror_stages: bool = False
    replace_broken_champion: bool = False
    # A PostgreSQL URL whose advisory lock serialises champion moves across every host (registry/locks.py); None:
    # the server profile's backend store (server.backend_store_uri) when the tracking URI is a server, else the
    # lock file under tracking.lock_dir (one machine).
    lock_url: str | None = None
    # `--live`: after the offline checks pass, also judge what the gateway's prediction log (gateway.prediction_log)
    # holds about the challenger since it was registered: the questions it scored as a shadow or answered as a
    # canary, its agreement with the champion on them, and the askers' feedback (registry/live.py). Off by default:
    # a challenger nothing has served yet (a fresh `retrain`) could never pass it.
    live: bool = False
    # Enough questions that the agreement share is known to about ±0.035 (its standard error at 200 is at most
    # √(0.25/200)); also the count under which `retrain` already refuses to judge (train.retrain_min_questions).
    live_min_questions: int = Field(200, ge=1)
    # Share of those questions whose top tag is the champion's. A guard against a challenger that is broken live
    # (a preprocessing or vocabulary mismatch in serving, a model that answers one tag): a better model may well
    # disagree often, so the bar is low; quality is judged by the offline comparison and by the feedback below.
    # Judged only on at least live_min_questions questions with both answers (a canary without a shadow has none).
    live_min_agreement: float = Field(0.5, ge=0, le=1)
    # Feedback rows with both models' P@1 (the same questions) needed before live precision is judged; with fewer,
    # the figures are printed and recorded but do not decide, and the verdict says so.
    live_min_feedback: int = Field(100, ge=1)
    # The challenger's live P@1 may be at most this below the champion's on those same rows. Relative, not an
    # absolute floor: live P@1 depends on which questions came, and the offline floor already bounds the model.
    # 0.10 is two standard errors of a paired P@1 difference at 100 rows (√(d/100), d the share of rows where exactly
    # one model is right, at most 1 - agreement: 0.25 for models agreeing on 3 questions in 4), so an equal
    # challenger is refused about 2% of the time and one clearly worse live (a serving mismatch) is caught.
    live_max_precision_drop: float = Field(0.10, ge=0, le=1)


class ServeSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(5001, ge=1, le=65535)
    workers: int = Field(1, ge=1)
    model_path: str | None = None  # set for the scoring server's workers by `sotag serve` (MLflow's variable)


class GatewaySection(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "warning"
    access_log: bool = False
    model_dir_served: Path | None = None  # serve this local model folder instead of a registry URI (MODEL_DIR)
    admin_token: str | None = None
    prediction_log: str | None = None  # a database URL; None: sqlite:///<home>/predictions.db
    log_text: bool = False
    max_batch: int = Field(1000, ge=1)
    admin_max_failures: int = Field(5, ge=1)
    admin_window_s: float = Field(60.0, gt=0)
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1)
    request_timeout_s: float = Field(10.0, gt=0)
    log_flush_s: float = Field(0.5, gt=0)
    log_max_pending: int = Field(100_000, ge=1)
    spool_dir: Path | None = None  # None: <home>/spool
    shutdown_timeout_s: float = Field(20.0, ge=0)
    model_url: str | None = None  # fetch this archive at start (https, s3:// or a path), verify, serve it
    model_sha256: str | None = None
    model_dir: Path | None = None  # where a fetched archive is installed; None: <home>/models/current
    reload_poll_s: float = Field(30.0, ge=0)  # follow the served alias every N seconds; 0: off
    webhook_secret: str | None = None
    workers: int | None = Field(None, ge=1)  # worker processes; None: one per CPU core
    # With several workers: one silent (no event-loop tick, or still loading its model) this long is killed and
    # replaced.
    worker_timeout_s: float = Field(120.0, gt=0)
    run_dir: Path | None = None  # the workers' shared state (merged metrics, jobs); None: <home>/run/gateway-<port>
    # @challenger beside the champion: `shadow` scores every question off the request path (logged, compared);
    # `canary_percent` of the questions (chosen by a hash of the question) are answered by it.
    shadow: Literal["none", "challenger"] = "none"
    canary_percent: float = Field(0.0, ge=0, le=100)
    shadow_queue: int = Field(2000, ge=1)  # questions waiting for the shadow; beyond: shadow work dropped, counted
    shadow_batch: int = Field(16, ge=1)  # the shadow scores up to this many waiting questions in one call
    # The share of a worker's time the shadow may take: beyond it the shadow waits, its queue fills and what does
    # not fit is dropped and counted; at low traffic every question is shadowed, at saturation the user pays at most
    # this much.
    shadow_max_share: float = Field(0.15, gt=0, le=1)


class ScoreSection(Section):
    engine: Literal["spark", "local"] | None = None  # None: by the input's size (spark_min_rows)
    # From this many rows on, Spark (where it can start) scores faster than the in-process engine: measured on 2
    # cores, Spark ran at 0.14x the in-process rate on 10.7k questions (start-up) and 1.21x on 1M; the lines cross
    # near 700k rows (make bench-batch).
    spark_min_rows: int = Field(700_000, ge=0)
    batch_rows: int = Field(20_000, ge=1)
    progress: bool = True


class SparkSection(Section):
    master: str = "local[*]"
    log_level: str = "WARN"
    java_home: Path | None = None  # JAVA_HOME


class DriftSection(Section):
    exclude_sources: str = ""
    max_per_month: int | None = Field(None, ge=0)  # None: 400 (local engine), every question (spark)
    max_reference: int | None = Field(None, ge=0)  # None: 2000 (local engine), every question (spark)
    engine: Literal["local", "spark"] = "local"
    thresholds: Path | None = None  # None: the thresholds shipped with sotag (sotag.monitoring)
    reports_dir: Path | None = None  # None: <home>/reports/drift
    on_alert: Literal["none", "retrain"] = "none"
    webhook: str | None = None
    mlflow: bool = True
    experiment: str = "drift-monitoring"
    cron: str = "0 6 1 * *"  # sotag schedule, UTC
    # Rolling windows instead of calendar months (set both, or neither): the current window is the
    # `current_days` days before --as-of (default: now, UTC), the reference the `reference_days` days before that.
    current_days: int | None = Field(None, ge=1)
    reference_days: int | None = Field(None, ge=1)


class ObserveSection(Section):
    """Prometheus over the gateway (`make observe`, sotag.monitoring.observe): its port on 127.0.0.1, how often it
    scrapes `gateway.port` and evaluates the alert rules, and where it keeps its data."""

    port: int = Field(9090, ge=1, le=65535)
    scrape_interval_s: float = Field(15.0, gt=0)
    evaluation_interval_s: float = Field(15.0, gt=0)
    dir: Path | None = None  # the rendered configuration and the time series; None: <home>/observe


class StoreSection(Section):
    """The question store `sotag ingest` writes and `--data store` reads (sotag.data.store)."""

    url: str | None = None  # a SQLAlchemy URL; None: sqlite:///<home>/questions.db
    # A load whose refused rows (no integer id, no title, no date) are more than this share of what it read is
    # refused whole: nothing is written (a file that is mostly not questions is a wrong file, not a few bad rows).
    max_refused_share: float = Field(0.5, ge=0, le=1)
    # Every command that reads the store (`--data store`, a `.db`, a database URL) reads only the questions created
    # in this window (`--since` / `--until`: YYYY-MM-DD or an ISO time, UTC; `until` excluded); None: unbounded.
    since: str | None = None
    until: str | None = None
    inbox: Path | None = None  # `sotag ingest --inbox`: the folder new files land in; None: <home>/inbox


class AppSection(Section):
    api_url: str = "http://127.0.0.1:8000"  # the gateway the Streamlit demo asks


class ServerSection(Section):
    """The tracking server profile (`make tracking-server`): credentials only from the environment or a file."""

    backend_store_uri: str | None = None  # postgresql://user[:password]@host:port/db
    artifacts_destination: str | None = None  # s3://bucket[/prefix]
    port: int = Field(5000, ge=1, le=65535)
    workers: int = Field(2, ge=1)
    auth_admin_username: str | None = None
    auth_admin_password: str | None = None
    auth_database_uri: str | None = None  # the basic-auth app's own database (not the backend store's)
    flask_secret_key: str | None = None  # random per start when unset


class Settings(BaseSettings):
    """Every setting sotag has; built by `load_settings`, never by reading the environment elsewhere."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    home: Path = Path(".")  # where every piece of state lives (resolved against the working folder)
    # The questions: files or folders, a question store (`store`, a `.db`, a database URL such as
    # postgresql://…); empty: the shared data beside home, else the bundled sample.
    data: tuple[Path | str, ...] = ()
    cache_dir: Path | None = None  # None: <home>/.cache
    model_uri: str | None = None  # the model serve/gateway/score/evaluate/drift use; None: models:/<name>@champion
    debug: bool = False  # tracebacks for component faults
    s3_endpoint_url: str | None = None  # MLFLOW_S3_ENDPOINT_URL / AWS_ENDPOINT_URL: an S3-compatible store
    tracking: TrackingSection = TrackingSection()
    train: TrainSection = TrainSection()
    promote: PromoteSection = PromoteSection()
    serve: ServeSection = ServeSection()
    gateway: GatewaySection = GatewaySection()
    score: ScoreSection = ScoreSection()
    spark: SparkSection = SparkSection()
    drift: DriftSection = DriftSection()
    observe: ObserveSection = ObserveSection()
    store: StoreSection = StoreSection()
    app: AppSection = AppSection()
    server: ServerSection = ServerSection()

    @field_validator("data", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        """One path, a list of paths, or several separated by the OS path separator (`a.parquet:extra/`)."""
        if isinstance(value, str) and value.lstrip().startswith("["):  # a JSON list (settings_environment's)
            value = json.loads(value)
        elif isinstance(value, str):
            # A database URL holds ':' (the path separator): it is one value, whole.
            value = [value] if "://" in value else [p for p in value.split(os.pathsep) if p]
        if isinstance(value, list | tuple):  # a URL stays text (a Path would fold its '//'), anything else a Path
            return tuple(v if isinstance(v, str) and "://" in v else Path(v) for v in value)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (passed as init values) > environment > config file > defaults."""
        build = _BUILD.get()
        if build is None:  # Settings(...) outside load_settings: the values given and the defaults, nothing read
            return (init_settings,)
        return build.sources(settings_cls, init_settings)

    # Derived state: all under `home` unless a setting names another place.
    @property
    def tracking_uri(self) -> str:
        return self.tracking.uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str | None:
        if self.tracking.artifact_root:
            return self.tracking.artifact_root
        return None if self.tracking.uri else (self.home / "mlartifacts").as_uri()

    @property
    def lock_dir(self) -> Path:
        return self.tracking.lock_dir or self.home / ".locks"

    @property
    def promotion_lock_url(self) -> str | None:
        """The database of the promotion lock every host sees: `promote.lock_url`, else the server profile's
        PostgreSQL backend store when the tracking store is that server; None: the lock file (`lock_dir`)."""
        if self.promote.lock_url:
            return self.promote.lock_url
        backend = self.server.backend_store_uri or ""
        if self.tracking_uri.startswith(("http://", "https://")) and backend.startswith("postgresql"):
            return backend
        return None

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.home / 'questions.db'}"

    @property
    def store_source(self) -> Path | str:
        """What `--data store` reads: the SQLite file, or the server database's URL."""
        return self.store_file or self.store_url

    def data_paths(self) -> tuple[Any, ...]:
        """The questions every command reads: the `data` setting resolved (sotag.data.resolve_data_paths), each
        question store read within store.since..store.until. DataError / InputError naming the flag."""
        from sotag.data import resolve_data_paths

        return resolve_data_paths(self.data, self.home, self.store_source, self.store.since, self.store.until)

    @property
    def store_file(self) -> Path | None:
        """The question store's file when it is SQLite (what `--data store` reads); None for a server database."""
        url = self.store_url
        return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None

    @property
    def inbox_dir(self) -> Path:
        """The folder `sotag ingest --inbox` loads new files from (the weekly pipeline's landing folder)."""
        return self.store.inbox or self.home / "inbox"

    @property
    def ui_url_file(self) -> Path:
        """Where `make ui` notes the URL it serves this home's store on while it runs (printed links use it)."""
        return self.home / ".mlflow-ui-url"

    @property
    def cache(self) -> Path:
        return self.cache_dir or self.home / ".cache"

    @property
    def champion_uri(self) -> str:
        return f"models:/{self.tracking.model_name}@{CHAMPION}"

    @property
    def served_model_uri(self) -> str:
        """The model the model-using commands take when not told otherwise: the one default model URI."""
        return self.model_uri or self.champion_uri

    @property
    def prediction_log_url(self) -> str:
        return self.gateway.prediction_log or f"sqlite:///{self.home / 'predictions.db'}"

    @property
    def spool_dir(self) -> Path:
        return self.gateway.spool_dir or self.home / "spool"

    @property
    def gateway_run_dir(self) -> Path:
        return self.gateway.run_dir or self.home / "run" / f"gateway-{self.gateway.port}"

    @property
    def fetched_model_dir(self) -> Path:
        return self.gateway.model_dir or self.home / "models" / "current"

    @property
    def reports_dir(self) -> Path:
        return self.drift.reports_dir or self.home / "reports" / "drift"

    @property
    def observe_dir(self) -> Path:
        return self.observe.dir or self.home / "observe"

    def state_paths(self) -> dict[str, str]:
        """Where this configuration keeps its state (for `sotag config` and docs/operations.md)."""
        return {
            "tracking store": self.tracking_uri,
            "artifacts": self.artifact_root or "(the tracking server's)",
            "promotion locks": self.promotion_lock_url or str(self.lock_dir),
            "prediction log": self.prediction_log_url,
            "prediction spool": str(self.spool_dir),
            "gateway workers' state": str(self.gateway_run_dir),
            "fetched model": str(self.fetched_model_dir),
            "drift reports": str(self.reports_dir),
            "prometheus (make observe)": str(self.observe_dir),
            "embedding cache": str(self.cache),
            "question store": self.store_url,
            "question inbox": str(self.inbox_dir),
        }


# The documented environment variables: the names users, PaaS platforms and MLflow already use, each one field.
ENVIRONMENT: dict[str, str] = {
    "MLFLOW_TRACKING_URI": "tracking.uri",
    "MLFLOW_UI_URL": "tracking.ui_url",
    "MLFLOW_RUN_ID": "tracking.launched_run_id",
    "SOTAG_ARTIFACT_ROOT": "tracking.artifact_root",
    "SOTAG_LOCK_DIR": "tracking.lock_dir",
    "SOTAG_MODEL_NAME": "tracking.model_name",
    "SOTAG_HOME": "home",
    "SOTAG_DATA": "data",
    "SOTAG_CACHE": "cache_dir",
    "SOTAG_MODEL_URI": "model_uri",
    "SOTAG_DEBUG": "debug",
    "AWS_ENDPOINT_URL": "s3_endpoint_url",
    "MLFLOW_S3_ENDPOINT_URL": "s3_endpoint_url",  # after AWS_ENDPOINT_URL: MLflow's own name wins
    "SOTAG_PROMOTION_FLOOR": "promote.floor",
    "SOTAG_MAX_LATENCY_MS": "promote.max_latency_ms",
    "SOTAG_PROMOTE_LOCK_URL": "promote.lock_url",
    "PORT": "gateway.port",  # a PaaS (Heroku, as the original Tagger API ran) names the port this way
    "MODEL_DIR": "gateway.model_dir_served",  # the original Tagger API's variable
    "SOTAG_ADMIN_TOKEN": "gateway.admin_token",
    "SOTAG_PREDICTION_LOG": "gateway.prediction_log",
    "SOTAG_LOG_TEXT": "gateway.log_text",
    "SOTAG_MAX_BATCH": "gateway.max_batch",
    "SOTAG_ADMIN_MAX_FAILURES": "gateway.admin_max_failures",
    "SOTAG_ADMIN_WINDOW_S": "gateway.admin_window_s",
    "SOTAG_MAX_BODY_BYTES": "gateway.max_body_bytes",
    "SOTAG_REQUEST_TIMEOUT_S": "gateway.request_timeout_s",
    "SOTAG_LOG_MAX_PENDING": "gateway.log_max_pending",
    "SOTAG_SPOOL_DIR": "gateway.spool_dir",
    "SOTAG_SHUTDOWN_TIMEOUT_S": "gateway.shutdown_timeout_s",
    "SOTAG_MODEL_URL": "gateway.model_url",
    "SOTAG_MODEL_SHA256": "gateway.model_sha256",
    "SOTAG_MODEL_DIR": "gateway.model_dir",
    "SOTAG_RELOAD_POLL_S": "gateway.reload_poll_s",
    "SOTAG_WEBHOOK_SECRET": "gateway.webhook_secret",
    "__pyfunc_model_path__": "serve.model_path",  # MLflow's scoring server: the model folder its workers load
    "SOTAG_SPARK_MASTER": "spark.master",
    "SOTAG_SPARK_LOG_LEVEL": "spark.log_level",
    "JAVA_HOME": "spark.java_home",
    "SOTAG_REPORTS_DIR": "drift.reports_dir",
    "SOTAG_API_URL": "app.api_url",
    "SOTAG_BACKEND_STORE_URI": "server.backend_store_uri",
    "SOTAG_ARTIFACTS_DESTINATION": "server.artifacts_destination",
    "SOTAG_AUTH_ADMIN_USERNAME": "server.auth_admin_username",
    "SOTAG_AUTH_ADMIN_PASSWORD": "server.auth_admin_password",
    "SOTAG_AUTH_DATABASE_URI": "server.auth_database_uri",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "server.flask_secret_key",
}


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} -> {"a": {"b": 1}}."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return out


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{dotted}.")
        else:
            yield dotted, value


def _field_paths(model: type[BaseModel], prefix: str = "") -> dict[str, type[BaseModel] | None]:
    """Every field's dotted path (sections' fields included): the names an env variable or a file may set."""
    out: dict[str, type[BaseModel] | None] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out[f"{prefix}{name}"] = annotation
            out.update(_field_paths(annotation, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = None
    return out


FIELDS = _field_paths(Settings)
_LOWER_FIELDS = {dotted.lower(): dotted for dotted in FIELDS}


class EnvironmentSource(PydanticBaseSettingsSource):
    """The environment given (not necessarily `os.environ`): the documented names, then `SOTAG_SECTION__FIELD`.

    Written by hand rather than pydantic-settings' EnvSettingsSource because sotag keeps the flat names its users,
    PaaS platforms and MLflow already set (`PORT`, `MLFLOW_TRACKING_URI`, `SOTAG_ADMIN_TOKEN`), and reports which
    variable set each value."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ
        self.names: dict[str, str] = {}  # dotted field -> the variable that set it
        self.unknown: list[str] = []  # SOTAG_* variables that name no setting (a typo, an old name)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # required by the base class
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        flat: dict[str, Any] = {}
        for name, dotted in ENVIRONMENT.items():
            value = self.environ.get(name)
            if value is None or not value.strip():  # NAME= (a PaaS, a Makefile) is "not set"
                continue
            flat[dotted], self.names[dotted] = value, name
        for name, value in self.environ.items():
            if (
                name.startswith(ENV_PREFIX)
                and NESTED not in name
                and name not in ENVIRONMENT
                and name != "SOTAG_CONFIG"
            ):
                self.unknown.append(name)
            if not name.startswith(ENV_PREFIX) or NESTED not in name or not value.strip():
                continue
            dotted = name.removeprefix(ENV_PREFIX).lower().replace(NESTED, ".")
            dotted = _LOWER_FIELDS.get(dotted, dotted)  # SOTAG_TRAIN__C is train.C
            if dotted not in FIELDS or FIELDS[dotted] is not None:
                raise InputError(name, f"no setting {dotted!r} (`sotag config` lists them)")
            flat[dotted], self.names[dotted] = value, name
        return _nest(flat)


@dataclass
class _Build:
    """One `load_settings`: its inputs, and the sources it built (kept, so provenance reads what they read)."""

    flags: dict[str, Any]
    environ: Mapping[str, str]
    config_file: Path | None
    env_source: EnvironmentSource | None = None
    file_values: dict[str, Any] | None = None

    def sources(
        self, settings_cls: type[BaseSettings], flags: PydanticBaseSettingsSource
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """`flags` (pydantic-settings' init source: the flags given) > the environment > the config file."""
        self.env_source = EnvironmentSource(settings_cls, self.environ)
        out: list[PydanticBaseSettingsSource] = [flags, self.env_source]
        if self.config_file is not None:
            source = file_source(settings_cls, self.config_file)  # reads the file, once
            self.file_values = source()
            out.append(source)
        return tuple(out)


_BUILD: ContextVar[_Build | None] = ContextVar("sotag_settings_build", default=None)


def file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    if path.suffix == ".toml":
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    return YamlConfigSettingsSource(settings_cls, yaml_file=path)


def find_config_file(given: str | os.PathLike[str] | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """`--config`, else `$SOTAG_CONFIG`, else the first of sotag.toml / sotag.yaml / sotag.yml in `cwd`."""
    named = given or environ.get("SOTAG_CONFIG") or None
    if named:
        path = Path(named)
        path = path if path.is_absolute() else cwd / path
        what = "--config" if given else "SOTAG_CONFIG"
        if not path.is_file():
            raise InputError(what, f"no config file at {path}")
        if path.suffix not in (".toml", ".yaml", ".yml"):
            raise InputError(what, f"{path.name}: a config file is .toml, .yaml or .yml")
        return path
    return next((cwd / name for name in CONFIG_FILES if (cwd / name).is_file()), None)


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    sources: dict[str, str]  # dotted field -> "default", "file sotag.toml", "env PORT", "flag"
    config_file: Path | None
    ignored: tuple[str, ...] = ()  # SOTAG_* variables that name no setting


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Loaded:
    """Build the settings from defaults < config file < environment < `flags` ({"train.top_n_tags": 200}).

    Only flags the user gave belong in `flags` (the parsers leave the others out), so a default is written once,
    here. Relative paths are resolved against `cwd` (the working folder). InputError naming the variable, the file
    key or the flag when a value does not fit its field."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    path = find_config_file(config, environ, cwd)
    flag_tree = _nest({k: v for k, v in (flags or {}).items() if v is not None})
    build = _Build(flag_tree, environ, path)
    token = _BUILD.set(build)
    try:
        try:
            raw = Settings(**flag_tree)
        except ValidationError as exc:
            raise _named_error(exc, build, path) from None
        except InputError:  # a SOTAG_<SECTION>__<FIELD> variable naming no setting: it names itself
            raise
        except (OSError, ValueError) as exc:  # an unreadable or malformed config file
            raise InputError(str(path), f"cannot read the config file: {exc}") from None
    finally:
        _BUILD.reset(token)
    settings = _resolved(raw, cwd)
    ignored = tuple(sorted(build.env_source.unknown)) if build.env_source else ()
    return Loaded(settings, _provenance(build, path), path, ignored)


def _resolved(settings: Settings, cwd: Path) -> Settings:
    """Relative paths made absolute against the working folder, so a command that changes folder keeps them."""

    def absolute(value: Any) -> Any:
        if isinstance(value, Path) and not value.is_absolute():
            return (cwd / value).resolve()
        return value

    def walk(model: BaseModel) -> BaseModel:
        updates: dict[str, Any] = {}
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                updates[name] = walk(value)
            elif isinstance(value, tuple):  # the data paths; `store` names the question store, not a file here
                updates[name] = tuple(v if str(v) == "store" else absolute(v) for v in value)
            else:
                updates[name] = absolute(value)
        return model.model_copy(update=updates)

    return walk(settings)  # type: ignore[return-value]


def _provenance(build: _Build, path: Path | None) -> dict[str, str]:
    sources = dict.fromkeys(_leaf_fields(), "default")
    for dotted, _ in _leaves(build.file_values or {}):
        sources[dotted] = f"file {path}"
    names = build.env_source.names if build.env_source else {}
    for dotted, name in names.items():
        sources[dotted] = f"env {name}"
    for dotted, _ in _leaves(build.flags):
        sources[dotted] = "flag"
    return sources


def field_value(settings: BaseModel, dotted: str) -> Any:
    """The value of the field at `dotted` ("train.plt.min_tag_questions")."""
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _leaf_fields() -> list[str]:
    return [dotted for dotted, section in FIELDS.items() if section is None]


def _named_error(exc: ValidationError, build: _Build, path: Path | None) -> InputError:
    """The first problem, naming where the value came from: the variable, the file's key or the flag."""
    error = exc.errors()[0]
    dotted = ".".join(str(p) for p in error["loc"])
    names = build.env_source.names if build.env_source else {}
    top = dotted.split(".")
    if any(dotted == d or dotted.startswith(d + ".") for d, _ in _leaves(build.flags)):
        where = f"--{top[-1].replace('_', '-')} ({dotted})"
    elif dotted in names:
        where = f"{names[dotted]} ({dotted})"
    elif path is not None:
        where = f"{path.name}: {dotted}"
    else:
        where = dotted
    value = error.get("input")
    shown = f" {value!r}:" if value is not None and not isinstance(value, dict) else ""
    return InputError(where, f"{shown} {error['msg']}".strip())


def describe(loaded: Loaded) -> list[str]:
    """`sotag config`: every setting, its value and its source; then where the state lives."""
    settings = loaded.settings
    rows: list[tuple[str, str, str]] = []
    for dotted in _leaf_fields():
        value = field_value(settings, dotted)
        shown = "***" if dotted in SECRETS and value else _show(value)
        rows.append((dotted, shown, loaded.sources.get(dotted, "default")))
    width = max(len(r[0]) for r in rows)
    vwidth = min(60, max(len(r[1]) for r in rows))
    lines = [f"config file: {loaded.config_file or 'none (sotag.toml, sotag.yaml or --config PATH)'}"]
    lines += [f"{name:<{width}} = {value:<{vwidth}}  ({source})" for name, value, source in rows]
    if loaded.ignored:
        lines.append(f"ignored (name no setting): {', '.join(loaded.ignored)}")
    lines.append("state:")
    lines += [f"  {what}: {where}" for what, where in settings.state_paths().items()]
    return lines


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return str(value)
    return value if isinstance(value, str) else json.dumps(value)


def child_environment(
    settings: Settings | None, extra: Mapping[str, str] | None = None, *, every_setting: bool = False
) -> dict[str, str]:
    """The environment for a process sotag starts (the scoring server, a tracking server, PostgreSQL): this
    process's, with the settings that process must see (its tracking store, its home) and `extra`. Here because it
    reads `os.environ`, which no other product module does.

    `every_setting`: for a `sotag` command started from this one (the gateway's and the drift job's retrain):
    every setting this process holds, as `SOTAG_<SECTION>__<FIELD>` (`settings_environment`), so the child runs
    with the settings its parent was built with (flags, config file and environment included), whatever its
    working folder holds; a run id set by `mlflow run` is not passed on (the child logs runs of its own)."""
    env = dict(os.environ)
    if settings is not None:
        env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
        env["SOTAG_HOME"] = str(settings.home)
        if every_setting:
            env.pop("MLFLOW_RUN_ID", None)
            env.update(settings_environment(settings))
    env.update(extra or {})
    return env


# Top-level fields as their documented variables (a nested name needs a section: SOTAG_<SECTION>__<FIELD>).
_TOP_LEVEL_NAMES = {dotted: name for name, dotted in ENVIRONMENT.items() if "." not in dotted}
# Not passed to a child command: secrets it does not need (it inherits them where they came from the environment)
# and the run a launcher (`mlflow run`) gave this process.
_NOT_PASSED = SECRETS | {"tracking.launched_run_id"}


def settings_environment(settings: Settings) -> dict[str, str]:
    """Every set (non-None) setting as the variable `load_settings` reads back to the same value:
    `SOTAG_TRAIN__TOP_N_TAGS=200`, `SOTAG_HOME=/srv/sotag`, `SOTAG_DATA=a.parquet:b.parquet`."""
    out: dict[str, str] = {}
    for dotted in _leaf_fields():
        value = field_value(settings, dotted)
        if value is None or dotted in _NOT_PASSED:
            continue
        name = _TOP_LEVEL_NAMES.get(dotted) or ENV_PREFIX + dotted.upper().replace(".", NESTED)
        if isinstance(value, tuple) and any("://" in str(v) for v in value):  # a URL holds the path separator
            text = json.dumps([str(v) for v in value])
        elif isinstance(value, tuple):
            text = os.pathsep.join(str(v) for v in value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        if text.strip():  # an empty value reads as "not set": the default, which it then is
            out[name] = text
    return out


def library_defaults(values: Mapping[str, str]) -> None:
    """Set variables that libraries read only from the environment (pyspark's worker Python, MLflow's progress
    bar), for this process and its children, unless the user set them: the one place sotag writes it."""
    for name, value in values.items():
        os.environ.setdefault(name, value)


# What `sotag gateway` publishes for its worker processes (serving.worker), and prometheus_client's own variable.
WORKER_SETTINGS_VARIABLE = "SOTAG_GATEWAY_WORKER_SETTINGS"
MULTIPROCESS_METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def publish_for_workers(settings_file: Path, metrics_dir: Path) -> None:
    """Set what the gateway's worker processes read when they start (spawned, they inherit this process's
    environment): the settings file they serve with, and prometheus_client's multiprocess folder."""
    os.environ.update({WORKER_SETTINGS_VARIABLE: str(settings_file), MULTIPROCESS_METRICS_VARIABLE: str(metrics_dir)})


def published_for_workers() -> tuple[Settings, bool]:
    """In a gateway worker: the settings its parent published, and whether /metrics merges every worker's files."""
    path = Path(os.environ[WORKER_SETTINGS_VARIABLE])
    settings = Settings.model_validate(json.loads(path.read_text()))
    return settings, bool(os.environ.get(MULTIPROCESS_METRICS_VARIABLE))


def quiet_artifact_downloads() -> None:
    """MLflow draws a progress bar per artifact download (even a 4-file model); sotag's commands already say what
    runs."""
    library_defaults({"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"})
