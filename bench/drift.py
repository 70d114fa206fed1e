"""`make bench-drift`: the verification scenario on the shared data, cold and warm, plus SBERT throughput.

1. SBERT throughput: plain sentence-transformers on 512 real title + body texts (128 tokens), no cache.
2. A champion trained on general-purpose questions before 2017-01-01 (tfidf, top-100; pinned).
3. The drift job, reference 2017-01..2017-06, months 2017-07..2018-05 plus the planted topic-shift
   month, with an empty embedding cache (cold), then again with the cache filled (warm).
   The cold run's summary is kept in reports/bench-drift-summary.json.
4. The default path as users run it: a champion trained with the default command (plt) on questions before
   2017-01-01 and promoted through the gate, then the default job (no --reference) on each month
   2017-01 .. 2018-05 one at a time, as the scheduler would, and on the planted month.
Prints `drift: texts_per_s=… cold_s=… warm_s=… planted_alert=… false_alerts=…`, then
`drift-default: months=… alerts=… warns=… planted_alert=…`.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from bench.common import default_config, parse_args
from sotag.data.split import TOPIC_SPECIFIC_SOURCES
from sotag.infra.tracking import MODEL_NAME, TrackingSettings, use_fluent
from sotag.monitoring.config import DriftConfig
from sotag.monitoring.job import question_texts
from sotag.monitoring.runner import execute
from sotag.registry.cli import promotion_lines
from sotag.registry.gate import GateConfig
from sotag.registry.lifecycle import promote
from sotag.registry.store import open_registry
from sotag.tagger import sbert
from sotag.training.config import TrainConfig
from sotag.training.train import train
from tests.support.drift_scenario import CHAMPION_SPLIT, ORDINARY_MONTHS, PLANTED_MONTH, REFERENCE, scenario_frame


def sbert_throughput(texts: list[str]) -> float:
    model = sbert._load_model(128)
    model.encode(texts[:32], batch_size=32)  # warm-up: first call pays lazy initialisation
    start = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    return len(texts) / (time.perf_counter() - start)


DEFAULT_PATH_MONTHS = tuple(str(p) for p in pd.period_range("2017-01", "2018-05", freq="M"))


def default_path(data: tuple[Path, ...], frame: pd.DataFrame, root: Path, cache_dir: Path) -> str:
    """The scheduler's view: one default job per month against a champion trained before 2017."""
    root.mkdir(parents=True, exist_ok=True)
    settings = TrackingSettings(
        f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri(), lock_dir=root / "locks"
    )
    os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    champion = TrainConfig(
        data=data, split_date=CHAMPION_SPLIT, exclude_sources=TOPIC_SPECIFIC_SOURCES, cache_dir=root / "cache"
    )
    train(champion, use_fluent(settings, champion.experiment))
    print("\n".join(promotion_lines(promote(open_registry(settings, MODEL_NAME), GateConfig(data=data)), MODEL_NAME)))
    severity: dict[str, str] = {}
    for month in (*DEFAULT_PATH_MONTHS, PLANTED_MONTH):
        config = DriftConfig(
            reference=None, months=(month,), data=data, reports_root=root / "reports", cache_dir=cache_dir
        )
        with contextlib.redirect_stdout(io.StringIO()):
            result, _ = execute(config, settings, frame=frame)
        [checked] = result.months
        severity[month] = checked.severity
        print(f"  {month} {checked.severity:<5} " + " | ".join(checked.reasons))
    print("  baselines: " + "; ".join(f"{k}: {v}" for k, v in result.baselines.items()))
    ordinary = [severity[m] for m in DEFAULT_PATH_MONTHS]
    return (
        f"drift-default: months={len(ordinary)} alerts={ordinary.count('alert')} warns={ordinary.count('warn')} "
        f"planted_alert={str(severity[PLANTED_MONTH] == 'alert').lower()}"
    )


def main() -> None:
    args = parse_args(__doc__)
    frame = scenario_frame(args.data)
    sample = frame[frame["creation_date"] >= "2018-04-01"].sample(512, random_state=0)
    texts_per_s = sbert_throughput(question_texts(sample))
    print(f"SBERT (plain sentence-transformers, CPU, {os.cpu_count()} cores): {texts_per_s:.0f} texts/s")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = TrackingSettings(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri())
        os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
        champion = default_config(
            args.data, register=True, split_date=CHAMPION_SPLIT, exclude_sources=TOPIC_SPECIFIC_SOURCES,
            cache_dir=root / "cache", run_name="drift-champion", vectorizer="tfidf",
        )  # fmt: skip
        outcome = train(champion, use_fluent(settings, champion.experiment))
        settings.client().set_registered_model_alias(MODEL_NAME, "champion", outcome.version)

        config = DriftConfig(
            reference=REFERENCE,
            months=(*ORDINARY_MONTHS, PLANTED_MONTH),
            data=args.data,
            exclude_sources=TOPIC_SPECIFIC_SOURCES,
            reports_root=root / "reports",
            cache_dir=root / "drift-cache",
        )
        start = time.perf_counter()
        result, code = execute(config, settings, frame=frame, publish_to=use_fluent(settings, config.experiment))
        cold = time.perf_counter() - start
        keep = Path("reports") / "bench-drift-summary.json"
        keep.parent.mkdir(exist_ok=True)
        keep.write_text((result.reports_dir / "summary.json").read_text())
        start = time.perf_counter()
        warm_result, _ = execute(
            replace(config, reports_root=root / "reports-warm"),
            settings,
            frame=frame,
            publish_to=use_fluent(settings, config.experiment),
        )
        warm = time.perf_counter() - start
        print("default path, one month at a time (the months' reasons, if any):")
        default_line = default_path(args.data, frame, root / "default", root / "drift-cache")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    severity = {m.month: m.severity for m in result.months}
    false_alerts = sum(severity[m] == "alert" for m in ORDINARY_MONTHS)
    warns = sum(severity[m] == "warn" for m in ORDINARY_MONTHS)
    same = [m.severity for m in result.months] == [m.severity for m in warm_result.months]
    print(f"cold: {cold:.1f} s ({result.timings}), warm: {warm:.1f} s ({warm_result.timings}), same verdicts: {same}")
    ok = len(ORDINARY_MONTHS) - false_alerts - warns
    print(f"ordinary months: {ok} ok, {warns} warn, {false_alerts} alert; exit code {code}")
    print(f"peak memory (RSS): {peak_mb:.0f} MiB")
    print(
        f"drift: texts_per_s={texts_per_s:.0f} cold_s={cold:.1f} warm_s={warm:.1f} "
        f"planted_alert={severity.get(PLANTED_MONTH) == 'alert'} false_alerts={false_alerts}"
    )
    print(default_line)


if __name__ == "__main__":
    main()
