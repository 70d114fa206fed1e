"""`make tracking-server`: the server profile in the foreground until Ctrl-C.

Configured through sotag's settings (the `[server]` section of a config file, or these variables;
credentials belong in the environment, never in the repository):

  SOTAG_BACKEND_STORE_URI     postgresql://user[:password]@host:port/db   (required unless --sandbox)
  SOTAG_ARTIFACTS_DESTINATION s3://bucket[/prefix]                        (required unless --sandbox)
  MLFLOW_S3_ENDPOINT_URL      MinIO or any S3-compatible endpoint (optional; AWS when unset)
  AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION          (read by boto3)
  --auth: SOTAG_AUTH_ADMIN_USERNAME, SOTAG_AUTH_ADMIN_PASSWORD, SOTAG_AUTH_DATABASE_URI (not the
          backend store's database) and MLFLOW_FLASK_SERVER_SECRET_KEY (random per start when unset)

`--sandbox` starts a throwaway PostgreSQL cluster and a moto S3 server on 127.0.0.1 first,
to try the profile on one machine; everything is deleted on exit.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from sotag.infra.argtypes import positive_int, setting, settings_flags
from sotag.mlruns_config.servers import AuthSettings, MlflowServer, MotoS3, PostgresCluster, ServerError
from sotag.settings import ServerSection, load_settings
from sotag.tagger.errors import SotagError

_NAMES = {
    "backend_store_uri": "SOTAG_BACKEND_STORE_URI",
    "artifacts_destination": "SOTAG_ARTIFACTS_DESTINATION",
    "auth_admin_username": "SOTAG_AUTH_ADMIN_USERNAME",
    "auth_admin_password": "SOTAG_AUTH_ADMIN_PASSWORD",
    "auth_database_uri": "SOTAG_AUTH_DATABASE_URI",
}


def _require(server: ServerSection, field: str) -> str:
    value = getattr(server, field)
    if not value:
        print(
            f"tracking-server: error: {_NAMES[field]} (server.{field}) is not set (see mlruns_config/README.md)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracking-server", description=__doc__.splitlines()[0])
    setting(parser, "--port", "server.port", type=int)
    parser.add_argument("--sandbox", action="store_true", help="throwaway PostgreSQL + moto S3 on 127.0.0.1")
    parser.add_argument("--auth", action="store_true", help="start MLflow's basic-auth app")
    setting(parser, "--workers", "server.workers", type=positive_int)
    parser.add_argument("--config", dest="config_file", default=None, metavar="FILE", help="a sotag settings file")
    args = parser.parse_args(argv)
    try:
        config = load_settings(settings_flags(args), config=args.config_file).settings.server
    except SotagError as exc:
        print(f"tracking-server: error: {exc}", file=sys.stderr)
        return 2

    started: list = []
    try:
        env: dict[str, str] = {}
        if args.sandbox:
            pg = PostgresCluster().start()
            started.append(pg)
            backend = pg.create_database("mlflow")
            s3 = MotoS3().start()
            started.append(s3)
            destination = s3.create_bucket("sotag-artifacts") + "/mlartifacts"
            env = {**MotoS3.credentials(), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint}
            auth_db = pg.create_database("mlflow_auth") if args.auth else ""
            print(f"sandbox: PostgreSQL {backend}, S3 {destination} at {s3.endpoint} (deleted on exit)")
        else:
            backend = _require(config, "backend_store_uri")
            destination = _require(config, "artifacts_destination")
            auth_db = _require(config, "auth_database_uri") if args.auth else ""
        auth = None
        if args.auth:
            auth = AuthSettings(
                admin_username=_require(config, "auth_admin_username"),
                admin_password=_require(config, "auth_admin_password"),
                database_uri=auth_db,
                **({"secret_key": config.flask_secret_key} if config.flask_secret_key else {}),
            )
        server = MlflowServer(backend, destination, env=env, port=config.port, auth=auth, workers=config.workers)
        started.append(server.start())
        print(f"tracking-server: {server.url}  (backend {backend.split('@')[-1]}, artifacts {destination})")
        print(f"use it:  export MLFLOW_TRACKING_URI={server.url}")
        if auth:
            print("         export MLFLOW_TRACKING_USERNAME=... MLFLOW_TRACKING_PASSWORD=...")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while not stop.is_set() and server.proc.poll() is None:
            stop.wait(1)
        if server.proc.poll() is not None:
            print(f"tracking-server: mlflow server exited\n{server.log_text()[-3000:]}", file=sys.stderr)
            return 1
        return 0
    except ServerError as exc:
        print(f"tracking-server: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for component in reversed(started):
            component.stop()


if __name__ == "__main__":
    sys.exit(main())
