"""`make bench-serve`: REST latency and throughput on loopback, what users are served, baselines in the same run.

  (a) seed-style pyfunc (sklearn vectorizer + OneVsRestClassifier.predict_proba) under `mlflow models serve`
  (b) our pyfunc of the DEFAULT model kind under `mlflow models serve` (what `make serve` runs); and, beside it, our
      one-vs-rest `tfidf` kind, the same estimator as (a), which is what the seed ratio of `serve-ovr:` compares
  (c) the gateway on the default kind (prediction logging on): 1 worker, then 2 workers with a promotion of a new
      champion in the middle of the long run (followed by the alias poll, no /reload), then 2 workers with the
      shadow on (@challenger scores every question off the request path), then 2 workers with a 10% canary.
Servers run one at a time (the machine's cores are the servers' and the load generator's alone). For 1 and 16
concurrent keep-alive clients: p50, p99, requests/s. Cold start is the time from process start to the first answer.

Then (d) the ensemble model (TF-IDF + SBERT) under `mlflow models serve`, one client: `serve-ensemble: …`.

Ends with `serve: invocations_p50_ms=… invocations_rps=… ratio_vs_seed=… gateway_p50_ms=… gateway_rps=…
gateway_rps_1w=… gateway_rps_2w=… p99_ms_2w=… shadow_cost=… canary_cost=… errors=…` (p50 with 1 client,
requests/s and p99 with 16 clients; gateway_rps is the 2-worker figure; shadow_cost and canary_cost: the larger of
the p50 increase and the requests/s loss against 2 workers without them, as a fraction).
Seconds per load: BENCH_SERVE_SECONDS (10), the promotion run BENCH_SERVE_LONG_SECONDS (60).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import requests
from mlflow.tracking import MlflowClient

from bench.common import default_config, fit_default_in_store, parse_args
from sotag.infra.tracking import MODEL_NAME
from sotag.mlruns_config.servers import free_port
from sotag.registry.publish import log_pyfunc, stage_model_code
from sotag.training.fit import fit_and_evaluate, prepare

TOKEN = "bench-token"


@dataclass
class Load:
    label: str
    clients: int
    latencies_ms: list[float]
    errors: int
    seconds: float

    @property
    def p50(self) -> float:
        return float(np.percentile(self.latencies_ms, 50)) if self.latencies_ms else float("nan")

    @property
    def p99(self) -> float:
        return float(np.percentile(self.latencies_ms, 99)) if self.latencies_ms else float("nan")

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def line(self) -> str:
        return (
            f"[{self.label}] clients={self.clients:<2} p50={self.p50:.2f}ms p99={self.p99:.2f}ms "
            f"rps={self.rps:.0f} requests={len(self.latencies_ms)} errors={self.errors}"
        )


async def _client(port: int, requests_: list[bytes], deadline: float, out: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < deadline:
            payload = requests_[i % len(requests_)]
            i += 1
            start = time.perf_counter()
            writer.write(payload)
            status = int((await reader.readline()).split()[1])
            length, chunked = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "transfer-encoding" and "chunked" in value:
                    chunked = True
            if chunked:
                while (size := int((await reader.readline()).strip(), 16)) > 0:
                    await reader.readexactly(size + 2)
                await reader.readline()
            else:
                await reader.readexactly(length)
            out.append((time.perf_counter() - start) * 1000)
            if status >= 300:
                errors.append(status)
    finally:
        writer.close()


def run_load(label: str, port: int, requests_: list[bytes], clients: int, seconds: float) -> Load:
    out: list[float] = []
    errors: list[int] = []

    async def main() -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(
            *(_client(port, requests_[c::clients] or requests_, deadline, out, errors) for c in range(clients))
        )

    start = time.perf_counter()
    asyncio.run(main())
    return Load(label, clients, out, len(errors), time.perf_counter() - start)


def http_requests(path: str, bodies: list[dict]) -> list[bytes]:
    out = []
    for body in bodies:
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        out.append(head + data)
    return out


def start_server(args: list[str], env: dict[str, str], probe: tuple[str, dict]) -> tuple[subprocess.Popen, float]:
    """Start a server; return it and the seconds from process start to the first answered prediction."""
    log = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)  # noqa: SIM115 (kept for the post-mortem)
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url, payload = probe
    while time.perf_counter() - start < 180:
        if proc.poll() is not None:
            raise SystemExit(f"{args[:3]} exited; log in {log.name}:\n{Path(log.name).read_text()[-3000:]}")
        try:
            if requests.post(url, json=payload, timeout=2).status_code == 200:
                return proc, time.perf_counter() - start
        except requests.RequestException:
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{args[:3]} did not answer in 180 s; log in {log.name}")


def log_models(root: Path, data: tuple[Path, ...]) -> tuple[list[dict], str]:
    """Register the default kind (v1 @champion, v2 the same model @challenger and the promotion target), our
    one-vs-rest `tfidf` kind (tfidf-tagger v1), and the seed-style model made of that one's vectorizer and one-vs-rest
    estimator (the default kind has no single OvR estimator to compare with)."""
    default = fit_default_in_store(data, root, "bench-serve")
    with mlflow.start_run(run_name="bench-serve-default"):
        directory = default.write(root / "default")
        info = log_pyfunc(
            directory, default.config.vectorizer, default.config.top_k, default.tagger.config.threshold,
            default.example, MODEL_NAME,
        )  # fmt: skip
        mlflow.register_model(info.model_uri, MODEL_NAME)  # v2: the same model, the promotion target
    default.client.set_registered_model_alias(MODEL_NAME, "champion", "1")
    default.client.set_registered_model_alias(MODEL_NAME, "challenger", "2")

    fitted = fit_default_in_store(data, root, "bench-serve", vectorizer="tfidf")
    config, result, tagger, example = fitted.config, fitted.result, fitted.tagger, fitted.example
    with mlflow.start_run(run_name="bench-serve-tfidf"):
        ours = fitted.write(root / "ours")
        info = log_pyfunc(ours, config.vectorizer, config.top_k, tagger.config.threshold, example, "tfidf-tagger")
        import joblib

        seed_dir = root / "seed"
        seed_dir.mkdir()
        for name, obj in (("vectorizer", tagger.vectorizer), ("ovr", result.ovr), ("mlb", result.mlb)):
            joblib.dump(obj, seed_dir / f"{name}.joblib")
        (seed_dir / "config.json").write_text(
            json.dumps({"top_k": 5, "threshold": 0.3, "extra": {"title_repeat": tagger.config.options.title_repeat}})
        )
        mlflow.pyfunc.log_model(
            name="seed",
            python_model=str(Path(__file__).with_name("seed_pyfunc.py")),
            artifacts={
                "vectorizer": str(seed_dir / "vectorizer.joblib"),
                "ovr": str(seed_dir / "ovr.joblib"),
                "mlb": str(seed_dir / "mlb.joblib"),
                "config": str(seed_dir / "config.json"),
            },
            code_paths=[str(stage_model_code(root / "seed-code"))],
            input_example=example,
            registered_model_name="seed-tagger",
        )
    evaluation = default.prepared.split.evaluation.head(400)
    questions = [{"title": t, "body": b} for t, b in zip(evaluation["title"], evaluation["body"], strict=True)]
    return questions, default.settings.tracking_uri


def log_ensemble(data: tuple[Path, ...]) -> None:
    """Fit the ensemble (the embedding cache in .cache makes a rerun fast) and register it as ensemble-tagger v1."""
    config = default_config(data, vectorizer="ensemble")
    prepared = prepare(config)
    result = fit_and_evaluate(config, prepared)
    tagger = result.tagger
    example = prepared.split.evaluation.head(2)[["title", "body"]].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name="bench-serve-ensemble"):
        directory = tagger.save(Path(tmp) / "ensemble", result.mlb)
        log_pyfunc(directory, "ensemble", config.top_k, tagger.config.threshold, example, "ensemble-tagger")


def ready_workers(port: int, workers: int, timeout_s: float = 120) -> None:
    """Wait until every worker answers (each loads its model; the first to be ready answers the start probe): the
    load's keep-alive connections are then spread over all of them, as on a gateway that has been up a while."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while len(seen) < workers and time.monotonic() < deadline:
        seen.add(requests.get(f"http://127.0.0.1:{port}/health", timeout=30).json()["worker_pid"])
        time.sleep(0.05)
    if len(seen) < workers:
        raise SystemExit(f"only {len(seen)} of {workers} gateway workers answered in {timeout_s:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's session (the gateway's workers, mlflow's gunicorn), wait for it."""
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=30)


def main() -> None:
    args = parse_args(__doc__)
    short = float(os.environ.get("BENCH_SERVE_SECONDS", "10"))
    long = float(os.environ.get("BENCH_SERVE_LONG_SECONDS", "60"))
    loads: dict[str, Load] = {}
    errors = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        questions, uri = log_models(root, args.data)
        bindir = Path(sys.executable).parent
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": uri,
            "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
            "SOTAG_HOME": str(root),
            "SOTAG_ADMIN_TOKEN": TOKEN,
            "SOTAG_RELOAD_POLL_S": "1",
        }
        split = [
            {"dataframe_split": {"columns": ["title", "body"], "data": [[q["title"], q["body"]]]}} for q in questions
        ]
        inv = http_requests("/invocations", split)
        gw = http_requests("/predict", questions)
        mlflow_bin = str(bindir / "mlflow")

        def serve(uri_: str, port: int) -> list[str]:
            return [mlflow_bin, "models", "serve", "-m", uri_, "--env-manager", "local", "-h", "127.0.0.1",
                    "-p", str(port), "-w", "1"]  # fmt: skip

        for label, model in (  # (a), (b): one server at a time
            ("a seed /invocations", "models:/seed-tagger/1"),
            ("b ours-tfidf /invocations", "models:/tfidf-tagger/1"),
            ("b ours /invocations", f"models:/{MODEL_NAME}@champion"),
        ):
            port = free_port()
            proc, cold = start_server(serve(model, port), env, (f"http://127.0.0.1:{port}/invocations", split[0]))
            try:
                for clients in (1, 16):
                    loads[f"{label}/{clients}"] = result = run_load(label, port, inv, clients, short)
                    print(result.line() + (f" (cold start {cold:.1f} s)" if clients == 1 else ""), flush=True)
            finally:
                stop(proc)

        client = MlflowClient(uri)

        def gateway(label: str, workers: int, *extra: str, promote_midway: bool = False) -> None:
            nonlocal errors
            port = free_port()
            run_env = {**env, "SOTAG_PREDICTION_LOG": f"sqlite:///{root / (label.replace(' ', '-') + '.db')}"}
            proc, cold = start_server(
                [str(bindir / "sotag"), "gateway", "--port", str(port), "--workers", str(workers), *extra], run_env,
                (f"http://127.0.0.1:{port}/predict", questions[0]),
            )  # fmt: skip
            try:
                ready_workers(port, workers)
                if workers == 1:
                    loads[f"{label}/1"] = result = run_load(label, port, gw, 1, short)
                    print(result.line() + f" (cold start {cold:.1f} s)", flush=True)
                note, seconds = "", short
                if promote_midway:
                    seconds = long

                    def promote() -> None:
                        time.sleep(long / 2)
                        client.set_registered_model_alias(MODEL_NAME, "champion", "2")

                    mover = threading.Thread(target=promote)
                    mover.start()
                loads[f"{label}/16"] = result = run_load(label, port, gw, 16, seconds)
                if promote_midway:
                    mover.join()
                    served = {
                        requests.get(f"http://127.0.0.1:{port}/health", timeout=30).json()["model"]["version"]
                        for _ in range(8)
                    }
                    note = f" ({seconds:.0f} s, @champion moved v1 -> v2 midway; the workers serve {sorted(served)})"
                    errors += 0 if served == {"2"} else 1
                print(result.line() + note, flush=True)
            finally:
                stop(proc)

        gateway("c gateway 1w", 1)
        gateway("c gateway 2w", 2, promote_midway=True)
        client.set_registered_model_alias(MODEL_NAME, "champion", "1")
        gateway("c gateway 2w shadow", 2, "--shadow", "challenger")
        gateway("c gateway 2w canary", 2, "--canary-percent", "10")

        log_ensemble(args.data)
        port = free_port()
        ensemble, ensemble_cold = start_server(
            serve("models:/ensemble-tagger/1", port), env, (f"http://127.0.0.1:{port}/invocations", split[0])
        )
        try:
            loads["d ensemble /invocations/1"] = ens = run_load("d ensemble /invocations", port, inv, 1, short)
            print(ens.line() + f" (cold start {ensemble_cold:.1f} s)", flush=True)
        finally:
            stop(ensemble)

    a16, b1, b16 = loads["a seed /invocations/16"], loads["b ours /invocations/1"], loads["b ours /invocations/16"]
    t16 = loads["b ours-tfidf /invocations/16"]
    g1, g1w, g2w = loads["c gateway 1w/1"], loads["c gateway 1w/16"], loads["c gateway 2w/16"]
    sh, ca = loads["c gateway 2w shadow/16"], loads["c gateway 2w canary/16"]
    errors += sum(load.errors for load in loads.values())

    def cost(load: Load) -> float:
        return max(load.p50 / g2w.p50 - 1, 1 - load.rps / g2w.rps)

    print(f"serve-ensemble: invocations_p50_ms={ens.p50:.2f} p99_ms={ens.p99:.2f}")
    print(f"serve-ovr: tfidf_invocations_rps={t16.rps:.0f} seed_invocations_rps={a16.rps:.0f} "
          f"ratio_vs_seed={t16.rps / a16.rps:.2f} (the same one-vs-rest estimator on both sides)")  # fmt: skip
    print(
        f"serve: invocations_p50_ms={b1.p50:.2f} invocations_rps={b16.rps:.0f} ratio_vs_seed={b16.rps / a16.rps:.2f} "
        f"gateway_p50_ms={g1.p50:.2f} gateway_rps={g2w.rps:.0f} gateway_rps_1w={g1w.rps:.0f} "
        f"gateway_rps_2w={g2w.rps:.0f} ratio_2w_vs_1w={g2w.rps / g1w.rps:.2f} p99_ms_2w={g2w.p99:.2f} "
        f"shadow_cost={cost(sh):.3f} canary_cost={cost(ca):.3f} errors={errors}"
    )


if __name__ == "__main__":
    main()
