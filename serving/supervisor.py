"""The gateway's worker processes under gunicorn, each with its own listening socket (`SO_REUSEPORT`).

Why gunicorn and not uvicorn's own `--workers`: uvicorn's workers share one listening socket, and on Linux the worker
that wakes first accepts a whole burst of connections, so 16 keep-alive clients that connect together often land
16/0 on two workers and one worker idles for the life of those connections. With gunicorn's `reuse_port`, every
worker binds its own socket to the port and the kernel spreads new connections over them by a hash of the client's
address. gunicorn also replaces a worker that dies (or stays silent for `gateway.worker_timeout_s`) and stops them
all on SIGTERM; uvicorn runs inside each worker (the `uvicorn-worker` package), as it does with one worker.

`sotag gateway` resolves, loads and probes the model once, publishes the settings (sotag.settings), then replaces
itself with `python -m sotag.serving.supervisor`: gunicorn's master forks its workers from a process that never
loaded a model (no model memory, no torch threads for the children to inherit), and keeps the gateway's pid.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from gunicorn.app.base import BaseApplication
from prometheus_client import multiprocess
from uvicorn_worker import UvicornWorker

from sotag.serving.workers import RunDir
from sotag.settings import Settings, published_for_workers

# After the in-flight requests' `gateway.shutdown_timeout_s`, a stopping worker drains its prediction log (or spools
# it to disk): gunicorn waits this much longer before it kills the worker.
DRAIN_S = 30.0


class GatewayWorker(UvicornWorker):
    """uvicorn in a gunicorn worker, with the gateway's grace for in-flight requests on SIGTERM."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.timeout_graceful_shutdown = max(self.cfg.graceful_timeout - DRAIN_S, 0.0)


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    g = settings.gateway
    metrics_dir = RunDir(settings.gateway_run_dir).metrics

    def child_exit(_server: Any, worker: Any) -> None:
        # What prometheus_client asks of a multiprocess server: a dead worker's live gauges stop counting (its
        # counters and histograms still do).
        multiprocess.mark_process_dead(worker.pid, str(metrics_dir))

    def on_exit(_server: Any) -> None:
        print(f"gateway: stopped ({g.workers} workers)", flush=True)

    return {
        "bind": [bind_address(g.host, g.port)],
        "workers": g.workers,
        "worker_class": f"{__name__}.GatewayWorker",
        "reuse_port": True,
        "timeout": math.ceil(g.worker_timeout_s),  # gunicorn takes whole seconds
        "graceful_timeout": math.ceil(g.shutdown_timeout_s + DRAIN_S),
        "keepalive": 5,  # uvicorn's default idle keep-alive, as with one worker
        "loglevel": g.log_level,
        "accesslog": "-" if g.access_log else None,
        "errorlog": "-",
        "proc_name": f"sotag-gateway-{g.port}",
        "control_socket_disable": True,  # gunicornc's socket: nothing here uses it, and it would live in $HOME
        "child_exit": child_exit,
        "on_exit": on_exit,
    }


class GatewaySupervisor(BaseApplication):
    """gunicorn configured from sotag's settings alone (no gunicorn.conf.py, no GUNICORN_CMD_ARGS, no argv)."""

    def __init__(self, options: dict[str, Any]):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from sotag.serving.worker import create_worker_app

        return create_worker_app()


def main() -> int:
    settings, _ = published_for_workers()
    try:
        GatewaySupervisor(gunicorn_options(settings)).run()
    except SystemExit as stop:
        if stop.code not in (0, None):
            # gunicorn halts when a worker cannot start (its error is printed above): a component fault, exit 1.
            print(f"gateway: stopped: a worker could not start (gunicorn exit {stop.code})", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
