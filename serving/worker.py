"""One gateway worker: what uvicorn's factory call builds in each process `sotag gateway` starts.

`sotag gateway` builds the settings once (flags, config file, environment), fetches the model if asked, then writes
the resulting settings to `<run_dir>/worker-settings.json` (readable by its user only: it holds the admin token)
and starts uvicorn with `--workers N` on `create_worker_app`, naming that file for the workers
(`sotag.settings.publish_for_workers`). Each worker reads the file back (`published_for_workers`: no flag, file or
variable is read again, so every worker serves with the same settings as its parent) and builds the app.
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from sotag.infra.retrain_job import RetrainProcess
from sotag.serving.config import GatewayConfig
from sotag.settings import Settings, published_for_workers


def write_worker_settings(settings: Settings, path: Path) -> Path:
    """The settings every worker builds its app from (mode 0600: they hold secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(settings.model_dump(mode="json"), handle)
    tmp.replace(path)
    return path


def worker_app(settings: Settings, multiprocess_metrics: bool) -> FastAPI:
    from sotag.serving.app import create_app

    config = GatewayConfig.from_settings(settings, multiprocess_metrics=multiprocess_metrics)
    app = create_app(config, retrain=partial(RetrainProcess, settings))
    model = app.state.holder.current
    print(f"gateway: worker {os.getpid()} serving {model.name} v{model.version}", flush=True)
    return app


def create_worker_app() -> FastAPI:
    """uvicorn's factory (`sotag.serving.worker:create_worker_app`)."""
    settings, multiprocess_metrics = published_for_workers()
    return worker_app(settings, multiprocess_metrics)
