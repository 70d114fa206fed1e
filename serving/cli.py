"""`sotag serve`, `sotag gateway`, `sotag score`, `sotag fetch-model` and `sotag convert-legacy`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from sotag.infra.argtypes import add_model_uri_argument, positive_int, setting
from sotag.infra.tracking import TrackingSettings, use_fluent
from sotag.registry.cli import add_model_name_argument
from sotag.serving.config import GatewayConfig
from sotag.settings import Settings, child_environment, publish_for_workers


def serve_command(host: str, port: int, workers: int) -> list[str]:
    """What `mlflow models serve --env-manager local` runs, with sotag's guarded app (serving/scoring_app.py)."""
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    return [
        uvicorn, "--host", host, "--port", str(port), "--workers", str(workers),
        "--factory", "sotag.serving.scoring_app:create_app",
    ]  # fmt: skip


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT
    from mlflow.pyfunc import scoring_server

    from sotag.registry.resolve import model_files, pinned_uri

    tracking = TrackingSettings.from_settings(settings)
    model_uri = settings.served_model_uri
    # As `mlflow models serve` does: the model (pinned to the version an alias, `latest` or a stage names now)
    # downloaded once, then the scoring server on the local copy.
    pinned = pinned_uri(model_uri, tracking)
    local_path = str(model_files(pinned, tracking))
    bindir = str(Path(sys.executable).parent)
    env = child_environment(
        settings,
        {
            scoring_server._SERVER_MODEL_PATH: local_path,
            MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.name: str(MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get()),
        },
    )
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    serve = settings.serve
    command = serve_command(serve.host, serve.port, serve.workers)
    served = model_uri if pinned == model_uri else f"{model_uri} = {pinned}"
    print(f"serve: {served} ({local_path}) on http://{serve.host}:{serve.port}/invocations", flush=True)
    os.execve(command[0], command, env)
    return 0  # not reached


def model_to_serve(config: GatewayConfig) -> GatewayConfig:
    """With SOTAG_MODEL_URL: fetch and verify it (unless already installed with that digest), serve the folder."""
    if not config.model_url:
        return config
    from sotag.serving.fetch import ensure_model

    directory, downloaded = ensure_model(config.model_url, config.model_dir, config.model_sha256)
    done = "downloaded and verified" if downloaded else "already installed with that sha256, nothing downloaded"
    print(f"gateway: {config.model_url}: {done} ({directory})", flush=True)
    return replace(config, model_uri=str(directory))


def _gateway(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from sotag.infra.prediction_log import log_summary
    from sotag.serving.worker import worker_app, write_worker_settings
    from sotag.serving.workers import RunDir

    # A --model-uri typed on this command line beats a model folder from the environment ($MODEL_DIR).
    typed = settings.served_model_uri if "model_uri" in vars(args) else None
    config = model_to_serve(GatewayConfig.from_settings(settings, model_uri=typed))
    g = settings.gateway
    workers = g.workers or os.cpu_count() or 1
    # The workers serve exactly this: the model the settings resolved to (fetched once, here), nothing re-read.
    settings = settings.model_copy(
        update={
            "model_uri": config.model_uri,
            "gateway": g.model_copy(update={"model_dir_served": None, "model_url": None, "workers": workers}),
        }
    )
    run_dir = RunDir(settings.gateway_run_dir)
    run_dir.prepare()
    host, port = g.host, g.port
    extra = f", {config.canary_percent:g}% canary" if config.canary_percent else ""
    extra += ", shadow @challenger" if config.shadow else ""
    print(
        f"gateway: {config.model_uri} on http://{host}:{port} (docs /docs), {workers} worker"
        f"{'s' if workers > 1 else ''}{extra}",
        flush=True,
    )
    if config.model_uri.startswith("models:/") and "@" in config.model_uri:
        follows = "polling off (gateway.reload_poll_s = 0)"
        if config.reload_poll_s:
            follows = f"checked every {config.reload_poll_s:g} s (gateway.reload_poll_s, $SOTAG_RELOAD_POLL_S)"
        hook = ", and on POST /webhooks/mlflow" if config.webhook_secret else ""
        print(f"gateway: following {config.model_uri}: {follows}{hook}", flush=True)
    options = {
        "host": host,
        "port": port,
        "log_level": g.log_level,
        "access_log": g.access_log,
        "timeout_graceful_shutdown": config.shutdown_timeout_s,
    }
    if workers == 1:
        app = worker_app(settings, multiprocess_metrics=False)
        # SIGTERM: uvicorn stops accepting, lets in-flight requests finish (up to the timeout), then the app's
        # shutdown drains the prediction log (spooling to disk what the database does not take). uvicorn re-raises
        # the signal it stopped on once shut down; a stop the gateway completed cleanly is an exit 0.
        signal.signal(signal.SIGTERM, lambda *_: None)
        uvicorn.run(app, **options)
        print(f"gateway: stopped; {log_summary(app.state.prediction_log.status(), config.spool_dir)}", flush=True)
        return 0
    # The model is loaded (and probed) once here first: a missing version, a registry that cannot answer or a file
    # that fails its sha256 is this command's clean error (exit 2 or 1), not N workers' tracebacks.
    check_servable(config)
    # Several workers: gunicorn (serving/supervisor.py) forks them, each with its own socket on the port, replaces one
    # that dies, and stops them all on SIGTERM (each drains its prediction log). This process becomes its master.
    publish_for_workers(write_worker_settings(settings, run_dir.path / "worker-settings.json"), run_dir.metrics)
    sys.stdout.flush()
    supervisor = [sys.executable, "-m", "sotag.serving.supervisor"]
    os.execve(supervisor[0], supervisor, child_environment(settings, {}))
    return 0  # not reached


def check_servable(config: GatewayConfig) -> None:
    """Raise what a worker would raise at start: the model cannot be resolved, loaded or probed; shadow or canary
    without a registry alias to find @challenger beside."""
    from sotag.registry.resolve import parse_alias_uri, resolve
    from sotag.serving.model_holder import probe
    from sotag.tagger.errors import SotagError

    if config.uses_challenger and parse_alias_uri(config.model_uri) is None:
        raise SotagError(
            f"--shadow and --canary-percent need a registry alias to serve (models:/name@champion), "
            f"not {config.model_uri}"
        )
    probe(resolve(config.model_uri, config.tracking))


def _fetch(args: argparse.Namespace, settings: Settings) -> int:
    from sotag.serving.fetch import FetchConfig, fetch_model

    config = FetchConfig(
        connect_timeout_s=args.connect_timeout,
        read_timeout_s=args.read_timeout,
        s3_endpoint_url=settings.s3_endpoint_url,
    )
    dest = fetch_model(args.source, Path(args.dest), args.sha256, args.manifest, config)
    print(f"fetch-model: installed {args.source} into {dest} (sha256 verified, four artifacts verified)")
    print(f"serve it:    MODEL_DIR={dest} sotag gateway")
    return 0


def _convert(args: argparse.Namespace, settings: Settings) -> int:
    from sotag.serving.legacy import convert_legacy, register_converted

    converted = convert_legacy(Path(args.bundle), Path(args.dest))
    print(
        f"convert-legacy: wrote {converted.directory} ({converted.config.vectorizer}, "
        f"{len(converted.config.vocabulary)} tags, max score difference {converted.max_score_difference:.1e})"
    )
    if args.register:
        runs = use_fluent(TrackingSettings.from_settings(settings), args.experiment)
        name = settings.tracking.model_name
        converted = register_converted(converted, name, runs)
        print(f"convert-legacy: registered models:/{name}/{converted.version} as @challenger")
    return 0


def _score(args: argparse.Namespace, settings: Settings) -> int:
    from sotag.infra.spark import parse_conf
    from sotag.serving.batch import default_engine, run_score
    from sotag.serving.score_job import ScoreConfig, written_partitions

    engine = settings.score.engine
    if engine is None:
        engine, why = default_engine(Path(args.input), settings.score.spark_min_rows, settings.spark.java_home)
        print(f"score: engine {engine} ({why})", flush=True)
    config = ScoreConfig(
        input=Path(args.input),
        output=Path(args.out),
        model_uri=settings.served_model_uri,
        engine=engine,
        master=settings.spark.master,
        conf=parse_conf(args.conf),
        batch_rows=settings.score.batch_rows,
        progress=settings.score.progress,
        java_home=settings.spark.java_home,
        spark_log_level=settings.spark.log_level,
    )
    result = run_score(config, TrackingSettings.from_settings(settings))
    print(result.summary())
    print(f"score: wrote {written_partitions(config.output, result.months)}")
    return 0


def add_master_argument(p: argparse.ArgumentParser) -> None:
    setting(p, "--master", "spark.master", "any Spark master URL")


def register(subparsers: argparse._SubParsersAction) -> None:
    """The serving sub-commands; the gateway's /admin/retrain starts `sotag retrain` as a child process
    (sotag.infra.retrain_job) with the gateway's settings."""
    p = subparsers.add_parser("serve", help="mlflow models serve on the registered champion (/invocations)")
    add_model_uri_argument(p)
    setting(p, "--host", "serve.host", "bind address")
    setting(p, "--port", "serve.port", type=int)
    setting(p, "--workers", "serve.workers", type=positive_int)
    p.set_defaults(handler=_serve)

    p = subparsers.add_parser(
        "gateway",
        help="the gateway API (/predict, /explain, /reload, /metrics, ...)",
        description="With gateway.model_url ($SOTAG_MODEL_URL, and $SOTAG_MODEL_SHA256 or a .sha256 manifest) the "
        "model archive is fetched and verified into gateway.model_dir at start, unless already installed with that "
        "digest. Every setting: `sotag config`.",
    )
    add_model_uri_argument(p)
    setting(p, "--model-dir", "gateway.model_dir_served", "serve a local model directory instead ($MODEL_DIR)")
    setting(p, "--host", "gateway.host", "bind address (0.0.0.0 only when asked: a PaaS, a container)")
    setting(p, "--port", "gateway.port", "$PORT sets it too", type=int)
    setting(p, "--log-level", "gateway.log_level")
    setting(p, "--access-log", "gateway.access_log", "log every request", action="store_true")
    setting(p, "--workers", "gateway.workers", "worker processes (none: one per CPU core)", type=positive_int)
    setting(
        p,
        "--shadow",
        "gateway.shadow",
        "score every question with @challenger too, off the request path (logged and compared)",
        choices=("none", "challenger"),
    )
    setting(
        p,
        "--canary-percent",
        "gateway.canary_percent",
        "answer this share of questions (0-100, chosen by a hash of the question) with @challenger",
        type=float,
    )
    p.set_defaults(handler=_gateway)

    p = subparsers.add_parser(
        "score",
        help="tag a backlog (parquet file or folder, SEDE CSV, Posts.xml) into parquet partitioned by month",
        description="Scores every question with the model at --model-uri (pinned to the version it resolves to) "
        "and writes OUT/creation_month=YYYY-MM/*.parquet with id, creation_date, tags, scores, model_name, "
        "model_version, scored_at. A rerun replaces the months it writes. Rows without an integer id, a title or a "
        "creation date are counted and skipped. Exit codes: 0 done, 2 bad input, 1 a component (the tracking server, "
        "the artifact store) failed.",
    )
    p.add_argument(
        "input",
        help="one questions file in any supported format (parquet, SEDE or BigQuery CSV, StackSample Questions.csv, "
        "Posts.xml), a StackSample folder, or any folder of question files (sub-folders included)",
    )
    p.add_argument("--out", required=True, help="output folder (created; its scored months are replaced)")
    add_model_uri_argument(p)
    setting(
        p,
        "--engine",
        "score.engine",
        "none: spark for an input of at least score.spark_min_rows rows (700,000) when pyspark and Java are here, "
        "else local (the run says which and why)",
        choices=("spark", "local"),
    )
    add_master_argument(p)
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting (repeatable)")
    setting(p, "--batch-rows", "score.batch_rows", "rows per chunk of the local engine and the reader", type=int)
    setting(p, "--no-progress", "score.progress", "print no progress line", action="store_false")
    p.set_defaults(handler=_score)

    p = subparsers.add_parser("fetch-model", help="download a model archive (URL or s3://), verify, install atomically")
    p.add_argument("source", help="https://…/model.tar.gz, s3://bucket/key, or a local path")
    p.add_argument("dest", help="the model directory to create or replace")
    p.add_argument("--sha256", default=None, help="expected sha256 of the archive")
    p.add_argument("--manifest", default=None, help="where to read the sha256 (default: SOURCE.sha256)")
    p.add_argument("--connect-timeout", type=float, default=10.0)
    p.add_argument("--read-timeout", type=float, default=60.0)
    p.set_defaults(handler=_fetch)

    p = subparsers.add_parser("convert-legacy", help="a monolithic pickled bundle to the four artifacts (+ registry)")
    p.add_argument("bundle")
    p.add_argument("dest")
    p.add_argument("--register", action="store_true", help="log and register it as @challenger")
    add_model_name_argument(p)
    p.add_argument("--experiment", default="stackoverflow-tagger")
    p.set_defaults(handler=_convert)
