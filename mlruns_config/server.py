"""`make tracking-server`: the server profile in the foreground until Ctrl-C.

Configured from the environment only (credentials never live in the repository):

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
import os
import signal
import sys
import threading

from mlruns_config.servers import AuthSettings, MlflowServer, MotoS3, PostgresCluster, ServerError


def _require(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        print(f"tracking-server: error: {name} is not set (see mlruns_config/README.md)", file=sys.stderr)
        raise SystemExit(2)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracking-server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--sandbox", action="store_true", help="throwaway PostgreSQL + moto S3 on 127.0.0.1")
    parser.add_argument("--auth", action="store_true", help="start MLflow's basic-auth app")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

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
            backend = _require("SOTAG_BACKEND_STORE_URI")
            destination = _require("SOTAG_ARTIFACTS_DESTINATION")
            auth_db = _require("SOTAG_AUTH_DATABASE_URI") if args.auth else ""
        auth = None
        if args.auth:
            auth = AuthSettings(
                admin_username=_require("SOTAG_AUTH_ADMIN_USERNAME"),
                admin_password=_require("SOTAG_AUTH_ADMIN_PASSWORD"),
                database_uri=auth_db,
                **(
                    {"secret_key": os.environ["MLFLOW_FLASK_SERVER_SECRET_KEY"]}
                    if os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
                    else {}
                ),
            )
        server = MlflowServer(backend, destination, env=env, port=args.port, auth=auth, workers=args.workers)
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
