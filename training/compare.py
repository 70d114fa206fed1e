"""Compare vectorizers on one split: a parent run with one nested run per vectorizer.

The kinds are ranked on the promotion gate's primary metric (`promote.primary_metric`, all-tags F1@3 by default):
the figure that decides which model users get, comparable across vocabularies, not an in-vocabulary figure over
each kind's own vocabulary (on which a kind with fewer tags looks better)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import mlflow
import pandas as pd

from sotag.infra.tracking import FluentRuns
from sotag.tagger import sbert
from sotag.tagger.kinds import kind_class
from sotag.training import plots
from sotag.training.config import TrainConfig
from sotag.training.fit import Prepared, prepare
from sotag.training.train import TrainOutcome, log_training_run

TABLE_METRICS = (
    "precision_at_1_all",
    "recall_at_5_all",
    "f1_at_3_all",
    "vocabulary_coverage",
    "precision_at_1",
    "precision_at_3",
    "recall_at_3",
    "recall_at_5",
    "f1_at_3",
    "f1_at_5",
    "f1_micro",
    "f1_macro",
    "tag_coverage",
)


def comparison_table(outcomes: dict[str, TrainOutcome]) -> pd.DataFrame:
    rows = []
    for kind, outcome in outcomes.items():
        m = outcome.result.evaluation.metrics
        rows.append(
            {
                "vectorizer": kind,
                **{k: round(m[k], 4) for k in TABLE_METRICS if k in m},
                "train_wall_s": round(outcome.seconds, 1),
                "run_id": outcome.run_id,
            }
        )
    return pd.DataFrame(rows)


def cold_embedding_pass(config: TrainConfig, prepared: Prepared, kinds: tuple[str, ...], probe: int = 64) -> str:
    """What the SBERT pass will cost before it starts: the question texts the kinds embed that the embedding cache
    lacks, and the time at a rate measured on `probe` of them (encoded into the cache, so not lost); "" when the
    cache holds them all or no kind embeds."""
    frame = pd.concat([prepared.split.train, prepared.split.evaluation], ignore_index=True)
    embedding = {kind: kind_class(kind).embedded_texts(frame, config.for_vectorizer(kind)) for kind in kinds}
    embedding = {kind: texts for kind, texts in embedding.items() if texts}
    if not embedding:
        return ""
    path = config.cache_dir / "embeddings.sqlite"
    cache = sbert.EmbeddingCache(path)
    missing = sbert.uncached([t for texts in embedding.values() for t in texts], cache)
    if not missing:
        return ""
    sample = missing[:probe]
    rate = sbert.measured_rate(sample, cache)
    seconds = (len(missing) - len(sample)) / rate
    eta = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
    return (
        f"compare: {', '.join(embedding)} embed {len(missing):,} question texts the embedding cache ({path}) lacks: "
        f"about {eta} on {sbert.device()} at {rate:.0f} texts/s (measured on {len(sample)} of "
        "them); later runs read them from the cache"
    )


def compare(
    config: TrainConfig, runs: FluentRuns, kinds: tuple[str, ...], rank_on: str = "f1_at_3_all"
) -> pd.DataFrame:
    """Train each of `kinds` as a nested run of one comparison run in `runs`' experiment; the comparison table,
    best first on `rank_on` (the gate's primary metric)."""
    print(f"compare: {', '.join(kinds)} on one split, ranked on {rank_on} (the promotion gate's primary metric)")
    prepared = prepare(config)
    cold = cold_embedding_pass(config, prepared, kinds)
    if cold:
        print(cold)
    start = time.perf_counter()
    outcomes: dict[str, TrainOutcome] = {}
    with mlflow.start_run(run_name=f"compare-top{config.top_n_tags}", experiment_id=runs.experiment_id):
        mlflow.log_params(
            {
                "vectorizers": ",".join(kinds),
                "split_date": config.split_date,
                "top_n_tags": config.top_n_tags,
                "n_train": len(prepared.split.train),
                "n_eval": len(prepared.split.evaluation),
            }
        )
        mlflow.set_tag("sotag.stage", "compare")
        for kind in kinds:
            child = replace(config.for_vectorizer(kind), run_name=f"{kind}-top{config.top_n_tags}")
            vocabulary = kind_class(kind).vocabulary(prepared.split.train["tags"], child)
            outcomes[kind] = log_training_run(child, replace(prepared, vocabulary=vocabulary), runs, nested=True)
        table = comparison_table(outcomes)
        with tempfile.TemporaryDirectory() as tmp:
            csv, md = Path(tmp) / "comparison.csv", Path(tmp) / "comparison.md"
            table.to_csv(csv, index=False)
            md.write_text(table.to_markdown(index=False) + "\n", encoding="utf-8")
            mlflow.log_artifact(str(csv), "comparison")
            mlflow.log_artifact(str(md), "comparison")
        bars = (("f1_at_3_all", "F1@3, all tags"), ("f1_at_3", "F1@3"), ("precision_at_1", "P@1"))
        for metric, label in (*bars, ("tag_coverage", "Tag coverage")):
            fig = plots.comparison_bars(table, metric, label)
            mlflow.log_figure(fig, f"comparison/{metric}.png")
            plots.close(fig)
        table = table.sort_values(rank_on, ascending=False, kind="stable").reset_index(drop=True)
        best = table.iloc[0]
        mlflow.log_metrics({"grid_wall_s": time.perf_counter() - start, f"best_{rank_on}": float(best[rank_on])})
        mlflow.set_tags({"best_vectorizer": best["vectorizer"], "ranked_on": rank_on})
    print(table.drop(columns="run_id").to_markdown(index=False))
    print(
        f"compare: grid_wall_s={time.perf_counter() - start:.1f} best={best['vectorizer']} "
        f"ranked_on={rank_on} ({float(best[rank_on]):.4f})"
    )
    return table
