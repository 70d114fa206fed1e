"""`make bench-registry`: the promotion gate on the shared data, on both tracking profiles.

1. Embedded store: train a top-100 tfidf model (pinned; the default kind is plt) and promote it
   (first champion), then a bag-of-words challenger and a top-500 tfidf challenger, each judged against the champion
   on the same window. Prints each decision and why.
2. Server profile: a throwaway PostgreSQL + moto S3 + `mlflow server` on 127.0.0.1; time one
   full train → register → promote of the default configuration (plt) through it.

Ends with `registry: decisions=… server_train_promote_s=…`.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.common import default_config, parse_args
from sotag.infra.tracking import MODEL_NAME, TrackingSettings, use_fluent
from sotag.mlruns_config.servers import MlflowServer, MotoS3, PostgresCluster
from sotag.registry.cli import promotion_lines
from sotag.registry.gate import GateConfig
from sotag.registry.lifecycle import promote, status_text
from sotag.registry.store import open_registry
from sotag.training.train import train


def decisions_on_embedded_store(data: tuple[Path, ...], root: Path) -> list[str]:
    settings = TrackingSettings(
        f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri(), lock_dir=root / "locks"
    )
    gate = GateConfig(data=data)
    out = []
    candidates = [
        ("tfidf-top100", {"vectorizer": "tfidf"}),
        ("bow-top100", {"vectorizer": "bow"}),
        ("tfidf-top500", {"vectorizer": "tfidf", "top_n_tags": 500}),
    ]
    for label, overrides in candidates:
        config = default_config(data, register=True, cache_dir=root / "cache", run_name=label, **overrides)
        outcome = train(config, use_fluent(settings, config.experiment))
        result = promote(open_registry(settings, MODEL_NAME), gate, outcome.version)
        print("\n".join(promotion_lines(result, MODEL_NAME)))
        decision = "promoted" if result.promoted else "kept"
        out.append(f"{label}(v{outcome.version})={decision}")
        print(f"decision: {label} v{outcome.version}: {decision.upper()}: {result.verdict.reason}")
    print(status_text(open_registry(settings, MODEL_NAME)))
    return out


def server_profile_round_trip(data: tuple[Path, ...], root: Path) -> float:
    pg, s3 = PostgresCluster().start(), MotoS3().start()
    server = None
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI",)}
    try:
        destination = s3.create_bucket("sotag-bench") + "/mlartifacts"
        env = {**MotoS3.credentials(), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint}
        server = MlflowServer(pg.create_database("mlflow"), destination, env=env, workers=2).start()
        os.environ["MLFLOW_TRACKING_URI"] = server.url
        settings = TrackingSettings(server.url, None, lock_dir=root / "locks-server")
        start = time.perf_counter()
        config = default_config(data, register=True, cache_dir=root / "cache", run_name="server-profile")
        outcome = train(config, use_fluent(settings, config.experiment))
        result = promote(open_registry(settings, MODEL_NAME), GateConfig(data=data), outcome.version)
        print("\n".join(promotion_lines(result, MODEL_NAME)))
        seconds = time.perf_counter() - start
        print(f"server profile: train → register → promote in {seconds:.1f} s (promoted={result.promoted})")
        return seconds
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if server is not None:
            server.stop()
        s3.stop()
        pg.stop()


def main() -> None:
    args = parse_args(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        decisions = decisions_on_embedded_store(args.data, root)
        server_s = server_profile_round_trip(args.data, root)
    print(f"registry: decisions={','.join(decisions)} server_train_promote_s={server_s:.1f}")


if __name__ == "__main__":
    main()
