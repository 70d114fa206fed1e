"""`make bench-batch`: `sotag score` on 1,000,000 questions, Spark (`local[*]`) against the in-process engine.

The shared data is replicated with fresh ids (question id + k * 10^9) into a folder of parquet parts of
50,000 rows: BENCH_BATCH_ROWS rows (default 1,000,000), and a quarter of that for the memory comparison.
The default model is fitted once and registered in a throwaway store; each engine runs as its own
`sotag score` process, exactly as a user runs it. Peak RSS is the largest sum over the job's process
tree (driver, JVM and Python workers), sampled every 0.2 s. `equal` compares the two engines' outputs
row by row (same tags in order, scores within 1e-6). Rows/s are end to end: start, read, score, write.
The model is the default kind (`sotag train`'s, `plt`), scored through its fused path (tagger.kinds.plt).
Prints one line:
`batch: rows=… spark_rows_per_s=… local_rows_per_s=… equal=true|false peak_rss_mb_small=… peak_rss_mb_large=… kind=…`
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import mlflow
import pandas as pd
import psutil

from bench.common import default_config, fit_default_in_store, parse_args
from sotag.data import load_questions
from sotag.infra.scored import read_scored
from sotag.infra.tracking import MODEL_NAME
from sotag.registry.publish import log_pyfunc
from sotag.training.mlflow_log import data_name
from tests.support.scored_outputs import equal_outputs

PART_ROWS = 50_000


def replicate(data: tuple[Path, ...], rows: int, folder: Path) -> Path:
    """`rows` questions: the data set again and again, each copy with fresh ids, in parts of PART_ROWS."""
    base = load_questions(data)[0][["id", "creation_date", "title", "body", "tags"]]
    folder.mkdir(parents=True)
    written, copy, part = 0, 0, 0
    buffer: list[pd.DataFrame] = []
    while written < rows:
        chunk = base.head(rows - written).assign(id=base["id"].head(rows - written) + copy * 1_000_000_000)
        buffer.append(chunk)
        written += len(chunk)
        copy += 1
        merged = pd.concat(buffer, ignore_index=True)
        while len(merged) >= PART_ROWS or (written >= rows and len(merged)):
            merged.head(PART_ROWS).to_parquet(folder / f"part-{part:05d}.parquet", index=False)
            merged = merged.iloc[PART_ROWS:]
            part += 1
        buffer = [merged]
    return folder


def register_model(data: tuple[Path, ...], root: Path) -> dict[str, str]:
    """The default configuration, fitted and registered as @champion in a store under `root`."""
    fitted = fit_default_in_store(data, root, "bench-batch")
    config, directory = fitted.config, fitted.write(root / "model")
    with mlflow.start_run(run_name="bench-batch"):
        served = fitted.tagger.config
        log_pyfunc(directory, config.vectorizer, config.top_k, served.threshold, fitted.example, MODEL_NAME)
    fitted.client.set_registered_model_alias(MODEL_NAME, "champion", "1")
    return {"MLFLOW_TRACKING_URI": fitted.settings.tracking_uri}


def run_job(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB of the whole process tree, output) of one `sotag score`."""
    peak = 0.0
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker that just exited
                    total += p.memory_info().rss
        except psutil.Error:
            pass
        peak = max(peak, total / 2**20)
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    reader.join()
    output = "".join(lines)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{output[-3000:]}")
    return seconds, peak, output


def score(engine: str, source: Path, out: Path, env: dict[str, str]) -> tuple[float, float, str]:
    sotag = str(Path(sys.executable).parent / "sotag")
    args = [sotag, "score", str(source), "--out", str(out), "--engine", engine, "--no-progress"]
    seconds, peak, output = run_job(args, env)
    summary = next((line for line in output.splitlines() if line.startswith("score: rows=")), "")
    print(f"{engine:>5}: {seconds:6.1f} s, peak RSS {peak:6.0f} MB | {summary}", flush=True)
    return seconds, peak, summary


def main() -> None:
    args = parse_args(__doc__)
    rows = int(os.environ.get("BENCH_BATCH_ROWS", "1000000"))
    small_rows = rows // 4
    with tempfile.TemporaryDirectory(prefix="sotag-bench-batch-") as tmp:
        root = Path(tmp)
        env = {**os.environ, **register_model(args.data, root)}
        large = replicate(args.data, rows, root / "large")
        small = replicate(args.data, small_rows, root / "small")
        print(f"input: {rows} and {small_rows} questions in parts of {PART_ROWS} ({data_name(args.data)} replicated)")

        _, peak_small, _ = score("spark", small, root / "out-small", env)
        spark_s, peak_large, _ = score("spark", large, root / "out-spark", env)
        local_s, local_peak, _ = score("local", large, root / "out-local", env)
        equal, detail = equal_outputs(read_scored(root / "out-spark"), read_scored(root / "out-local"))
        print(f"equal: {detail}")
        print(
            f"memory: spark {peak_small:.0f} MB at {small_rows} rows, {peak_large:.0f} MB at {rows} rows "
            f"(ratio {peak_large / peak_small:.2f}, limit 1.5); local engine {local_peak:.0f} MB at {rows} rows"
        )
        print(f"speed: spark / local = {local_s / spark_s:.2f}x (goal 1.5x); local goal 5000 rows/s")
        print(
            f"batch: rows={rows} spark_rows_per_s={rows / spark_s:.0f} local_rows_per_s={rows / local_s:.0f} "
            f"equal={'true' if equal else 'false'} "
            f"peak_rss_mb_small={peak_small:.0f} peak_rss_mb_large={peak_large:.0f} "
            f"kind={default_config(args.data).vectorizer}"
        )


if __name__ == "__main__":
    main()
