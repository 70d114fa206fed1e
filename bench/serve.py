"""`make bench-serve`: REST latency and throughput on loopback, three servers side by side.

  (a) seed-style pyfunc (sklearn vectorizer + OneVsRestClassifier.predict_proba) under `mlflow models serve`
  (b) our fused pyfunc under `mlflow models serve` (what `make serve` runs)
  (c) the gateway, prediction logging on
(b) and (c) serve the `tfidf` kind (pinned: the seed comparison needs the same one-vs-rest model on both sides).
One worker each. For 1 and 16 concurrent keep-alive clients: p50, p99, requests/s. The gateway
runs 16 clients for 60 s with a `/reload` to a new champion in the middle. Cold start is the
time from process start to the first answered prediction.

Then (d) the ensemble model (TF-IDF + SBERT) under `mlflow models serve`, one client: `serve-ensemble: …`.

Ends with `serve: invocations_p50_ms=… invocations_rps=… ratio_vs_seed=… gateway_p50_ms=… gateway_rps=… errors=…`
(p50 with 1 client, requests/s with 16 clients).
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
    """Fit the `tfidf` kind once; register ours (twice, for the reload) and the seed-style model made of the same
    vectorizer and one-vs-rest estimator (the `plt` default has no single OvR estimator to compare with)."""
    fitted = fit_default_in_store(data, root, "bench-serve", vectorizer="tfidf")
    config, result, tagger, example = fitted.config, fitted.result, fitted.tagger, fitted.example
    with mlflow.start_run(run_name="bench-serve"):
        ours = fitted.write(root / "ours")
        info = log_pyfunc(ours, config.vectorizer, config.top_k, tagger.config.threshold, example, MODEL_NAME)
        mlflow.register_model(info.model_uri, MODEL_NAME)  # v2: the same model, for the reload under load
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
    fitted.client.set_registered_model_alias(MODEL_NAME, "champion", "1")
    evaluation = fitted.prepared.split.evaluation.head(400)
    questions = [{"title": t, "body": b} for t, b in zip(evaluation["title"], evaluation["body"], strict=True)]
    return questions, fitted.settings.tracking_uri


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


def main() -> None:
    args = parse_args(__doc__)
    short = float(os.environ.get("BENCH_SERVE_SECONDS", "10"))
    long = float(os.environ.get("BENCH_SERVE_LONG_SECONDS", "60"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        questions, uri = log_models(root, args.data)
        bindir = Path(sys.executable).parent
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": uri,
            "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
            "SOTAG_ADMIN_TOKEN": TOKEN,
            "SOTAG_PREDICTION_LOG": f"sqlite:///{root / 'predictions.db'}",
        }
        ports = {"seed": free_port(), "ours": free_port(), "gateway": free_port()}
        split = [
            {"dataframe_split": {"columns": ["title", "body"], "data": [[q["title"], q["body"]]]}} for q in questions
        ]
        mlflow_bin = str(bindir / "mlflow")

        def serve(uri_: str, port: int) -> list[str]:
            return [
                mlflow_bin,
                "models",
                "serve",
                "-m",
                uri_,
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ]

        procs = []
        try:
            seed, seed_cold = start_server(
                serve("models:/seed-tagger/1", ports["seed"]),
                env,
                (f"http://127.0.0.1:{ports['seed']}/invocations", split[0]),
            )
            procs.append(seed)
            ours, ours_cold = start_server(
                serve(f"models:/{MODEL_NAME}@champion", ports["ours"]), env,
                (f"http://127.0.0.1:{ports['ours']}/invocations", split[0]),
            )  # fmt: skip
            procs.append(ours)
            gateway, gateway_cold = start_server(
                [str(bindir / "sotag"), "gateway", "--port", str(ports["gateway"])], env,
                (f"http://127.0.0.1:{ports['gateway']}/predict", questions[0]),
            )  # fmt: skip
            procs.append(gateway)
            print(f"cold start (process start → first answer): seed {seed_cold:.1f} s, "
                  f"invocations {ours_cold:.1f} s, gateway {gateway_cold:.1f} s")  # fmt: skip

            inv = http_requests("/invocations", split)
            gw = http_requests("/predict", questions)
            loads: dict[str, Load] = {}
            for clients in (1, 16):
                for label, port, reqs in (
                    ("a seed /invocations", ports["seed"], inv),
                    ("b ours /invocations", ports["ours"], inv),
                ):
                    loads[f"{label}/{clients}"] = result = run_load(label, port, reqs, clients, short)
                    print(result.line(), flush=True)
            loads["c gateway/1"] = result = run_load("c gateway", ports["gateway"], gw, 1, short)
            print(result.line(), flush=True)

            # 16 clients for the long run, with a reload to v2 halfway through.
            client = MlflowClient(uri)
            reload_result: dict = {}

            def reload_midway() -> None:
                time.sleep(long / 2)
                client.set_registered_model_alias(MODEL_NAME, "champion", "2")
                response = requests.post(
                    f"http://127.0.0.1:{ports['gateway']}/reload",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=60,
                )
                reload_result.update(response.json(), status=response.status_code)

            reloader = threading.Thread(target=reload_midway)
            reloader.start()
            loads["c gateway/16"] = result = run_load("c gateway", ports["gateway"], gw, 16, long)
            reloader.join()
            print(result.line() + f" ({long:.0f} s, reload midway: {reload_result.get('message')})", flush=True)
            health = requests.get(f"http://127.0.0.1:{ports['gateway']}/health", timeout=5).json()
            print(f"gateway after the run: serving v{health['model']['version']}, "
                  f"{health['predictions_logged']} predictions logged so far")  # fmt: skip
            log_ensemble(args.data)
            port = free_port()
            ensemble, ensemble_cold = start_server(
                serve("models:/ensemble-tagger/1", port), env, (f"http://127.0.0.1:{port}/invocations", split[0])
            )
            procs.append(ensemble)
            loads["d ensemble /invocations/1"] = ens = run_load("d ensemble /invocations", port, inv, 1, short)
            print(ens.line() + f" (cold start {ensemble_cold:.1f} s)", flush=True)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)

    a16, b1, b16 = loads["a seed /invocations/16"], loads["b ours /invocations/1"], loads["b ours /invocations/16"]
    c1, c16 = loads["c gateway/1"], loads["c gateway/16"]
    errors = sum(load.errors for load in loads.values()) + (0 if reload_result.get("status") == 200 else 1)
    print(f"serve-ensemble: invocations_p50_ms={ens.p50:.2f} p99_ms={ens.p99:.2f}")
    print(
        f"serve: invocations_p50_ms={b1.p50:.2f} invocations_rps={b16.rps:.0f} ratio_vs_seed={b16.rps / a16.rps:.1f} "
        f"gateway_p50_ms={c1.p50:.2f} gateway_rps={c16.rps:.0f} errors={errors}"
    )


if __name__ == "__main__":
    main()
