"""`sotag serve`, `sotag gateway`, `sotag score`, `sotag fetch-model` and `sotag convert-legacy`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from infra.tracking import MODEL_NAME, TrackingSettings, use_fluent
from serving.config import CHAMPION_URI, GatewayConfig


def serve_command(host: str, port: int, workers: int) -> list[str]:
    """What `mlflow models serve --env-manager local` runs, with sotag's guarded app (serving/scoring_app.py)."""
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    return [
        uvicorn, "--host", host, "--port", str(port), "--workers", str(workers),
        "--factory", "serving.scoring_app:create_app",
    ]  # fmt: skip


def _serve(args: argparse.Namespace) -> int:
    from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT
    from mlflow.pyfunc import scoring_server

    from registry.resolve import model_files, pinned_uri

    settings = TrackingSettings.from_env()
    # As `mlflow models serve` does: the model (pinned to the version an alias, `latest` or a stage names now)
    # downloaded once, then the scoring server on the local copy.
    pinned = pinned_uri(args.model_uri, settings)
    local_path = str(model_files(pinned, settings))
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env[scoring_server._SERVER_MODEL_PATH] = local_path
    env[MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.name] = str(MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get())
    command = serve_command(args.host, args.port, args.workers)
    served = args.model_uri if pinned == args.model_uri else f"{args.model_uri} = {pinned}"
    print(f"serve: {served} ({local_path}) on http://{args.host}:{args.port}/invocations", flush=True)
    os.execve(command[0], command, env)
    return 0  # not reached


def model_to_serve(config: GatewayConfig) -> GatewayConfig:
    """With SOTAG_MODEL_URL: fetch and verify it (unless already installed with that digest), serve the folder."""
    if not config.model_url:
        return config
    from serving.fetch import ensure_model

    directory, downloaded = ensure_model(config.model_url, config.model_dir, config.model_sha256)
    done = "downloaded and verified" if downloaded else "already installed with that sha256, nothing downloaded"
    print(f"gateway: {config.model_url}: {done} ({directory})", flush=True)
    return replace(config, model_uri=str(directory))


def _gateway(args: argparse.Namespace) -> int:
    import uvicorn

    from serving.app import create_app

    config = model_to_serve(GatewayConfig.from_env(model_uri=args.model_dir or args.model_uri))
    retrain = partial(args.retrain_job, config.tracking) if args.retrain_job is not None else None
    app = create_app(config, retrain=retrain)
    model = app.state.holder.current
    print(f"gateway: {model.name} v{model.version} from {model.source} on http://{args.host}:{args.port} (docs /docs)")
    watch = app.state.alias_watch
    if watch is not None:
        follows = "polling off ($SOTAG_RELOAD_POLL_S=0)"
        if watch.poll_s:
            follows = f"checked every {watch.poll_s:g} s ($SOTAG_RELOAD_POLL_S)"
        hook = ", and on POST /webhooks/mlflow" if config.webhook_secret else ""
        print(f"gateway: following {model.source}: {follows}{hook}", flush=True)
    # SIGTERM: uvicorn stops accepting, lets in-flight requests finish (up to the timeout), then the app's
    # shutdown drains the prediction log (spooling to disk what the database does not take).
    # uvicorn re-raises the signal it stopped on once shut down (so the default action would kill us with
    # status -15); a stop the gateway completed cleanly is an exit 0 for process managers.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
        timeout_graceful_shutdown=config.shutdown_timeout_s,
    )
    status = app.state.prediction_log.status()
    print(
        f"gateway: stopped; prediction log: {status['written']} written, {status['spooled']} spooled to "
        f"{config.spool_dir}, {status['dropped']} dropped",
        flush=True,
    )
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from serving.fetch import FetchConfig, fetch_model

    config = FetchConfig(connect_timeout_s=args.connect_timeout, read_timeout_s=args.read_timeout)
    dest = fetch_model(args.source, Path(args.dest), args.sha256, args.manifest, config)
    print(f"fetch-model: installed {args.source} into {dest} (sha256 verified, four artifacts verified)")
    print(f"serve it:    MODEL_DIR={dest} sotag gateway")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from serving.legacy import convert_legacy, register_converted

    converted = convert_legacy(Path(args.bundle), Path(args.dest))
    print(
        f"convert-legacy: wrote {converted.directory} ({converted.config.vectorizer}, "
        f"{len(converted.config.vocabulary)} tags, max score difference {converted.max_score_difference:.1e})"
    )
    if args.register:
        runs = use_fluent(TrackingSettings.from_env(), args.experiment)
        converted = register_converted(converted, args.model_name, runs)
        print(f"convert-legacy: registered models:/{args.model_name}/{converted.version} as @challenger")
    return 0


def _score(args: argparse.Namespace) -> int:
    from infra.spark import parse_conf
    from serving.batch import default_engine, run_score
    from serving.score_job import ScoreConfig, written_partitions

    settings = TrackingSettings.from_env()
    config = ScoreConfig(
        input=Path(args.input),
        output=Path(args.out),
        model_uri=args.model_uri,
        engine=args.engine or default_engine(),
        master=args.master,
        conf=parse_conf(args.conf),
        batch_rows=args.batch_rows,
        progress=not args.no_progress,
    )
    result = run_score(config, settings)
    print(result.summary())
    print(f"score: wrote {written_partitions(config.output, result.months)}")
    return 0


def register(
    subparsers: argparse._SubParsersAction, retrain_job: Callable[[TrackingSettings], int] | None = None
) -> None:
    """The serving sub-commands; `retrain_job(settings)` is what the gateway's /admin/retrain runs (`sotag retrain`
    in the gateway's process), handed in by the `sotag` command layer since serving does not import training."""
    p = subparsers.add_parser("serve", help="mlflow models serve on the registered champion (/invocations)")
    p.add_argument("--model-uri", default=os.environ.get("SOTAG_MODEL_URI", CHAMPION_URI))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5001)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(handler=_serve)

    p = subparsers.add_parser(
        "gateway",
        help="the gateway API (/predict, /explain, /reload, /metrics, ...)",
        description="With $SOTAG_MODEL_URL (and $SOTAG_MODEL_SHA256 or a .sha256 manifest) the model archive is "
        "fetched and verified into $SOTAG_MODEL_DIR at start, unless already installed with that digest.",
    )
    p.add_argument("--model-uri", default=None, help=f"default: $SOTAG_MODEL_URI or {CHAMPION_URI}")
    p.add_argument("--model-dir", default=None, help="serve a local model directory instead ($MODEL_DIR)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 only when asked: a PaaS, a container)")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)), help="default: $PORT or 8000")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--access-log", action="store_true")
    p.set_defaults(handler=_gateway, retrain_job=retrain_job)

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
    p.add_argument("--model-uri", default=os.environ.get("SOTAG_MODEL_URI", CHAMPION_URI))
    p.add_argument(
        "--engine", choices=("spark", "local"), default=None, help="default: spark when pyspark and Java are here"
    )
    p.add_argument("--master", default=os.environ.get("SOTAG_SPARK_MASTER", "local[*]"), help="any Spark master URL")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting (repeatable)")
    p.add_argument("--batch-rows", type=int, default=20_000, help="rows per chunk of the local engine and the reader")
    p.add_argument("--no-progress", action="store_true")
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
    p.add_argument("--model-name", default=MODEL_NAME)
    p.add_argument("--experiment", default="stackoverflow-tagger")
    p.set_defaults(handler=_convert)
