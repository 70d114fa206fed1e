"""Drift sample floors, by measurement: at what month size does an ordinary month stay `ok`?

For each family with severity rules, draw 100 "months" of n questions from the period its baseline comes
from (the champion's reference months for embeddings; the questions after its training for predictions
and supervised figures), judge each with the rules in monitoring/thresholds.json exactly as the drift job
does, and count the draws that stay `ok`. The floor of a family is the smallest n of the grid from which
every larger n keeps at least 99 of 100 draws `ok` (monitoring/severity.py MIN_QUESTIONS holds the result).

Costs: SBERT embeds the reference months once (the embedding cache in $SOTAG_CACHE, default .cache/, makes
a rerun fast); each embedding draw trains Evidently's domain classifier (an SGD logistic regression) on
the reference sample plus the draw. The model family needs a trained model (--model-uri). The vocabulary family
draws from the champion's evaluation window too (the out-of-vocabulary share of its tags against the whole
window's); `--only vocabulary` runs just that one (seconds: it needs the model's vocabulary, no scoring).

    python -m bench.drift_floors [--data questions.parquet] [--model-uri models:/stackoverflow-tagger@challenger]
    python -m bench.drift_floors --only vocabulary [--top-n-tags 100]   # the default model's vocabulary, no model

Prints one line per family and n (`floors: family=… n=… ok=…/100`) and ends with
`floors: embeddings=… text=… predictions=… supervised=… vocabulary=…`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import MultiLabelBinarizer

from sotag.infra.tracking import TrackingSettings

GRID = (3, 5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300)
DRAWS = 100
OK_SHARE = 0.99


def floor_of(ok_counts: dict[int, int], draws: int = DRAWS) -> int | None:
    """The smallest n from which every n of the grid keeps `OK_SHARE` of its draws ok (None: none does)."""
    floor = None
    for n in sorted(ok_counts, reverse=True):
        if ok_counts[n] < OK_SHARE * draws:
            break
        floor = n
    return floor


def _levels(rules: list, family: str, values: dict[str, float], reference: dict[str, float], n: float) -> str:
    from sotag.monitoring.severity import LEVELS

    levels = [r.level(values.get(r.metric), reference.get(r.metric), n) for r in rules if r.family == family]
    return max(levels, key=LEVELS.index, default="ok")


def embedding_floor(frame: pd.DataFrame, split_date: str, cache_dir: Path, rng: np.random.Generator) -> dict[int, int]:
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import model

    from sotag.monitoring import stats
    from sotag.monitoring.config import DriftConfig
    from sotag.monitoring.job import question_texts, sample
    from sotag.monitoring.months import champion_window
    from sotag.monitoring.severity import load_rules
    from sotag.tagger.sbert import EmbeddingCache, encode

    rules = load_rules()
    first, last = champion_window(split_date)
    months = frame["creation_date"].dt.strftime("%Y-%m")
    period = frame[(months >= first) & (months <= last)].reset_index(drop=True)
    config = DriftConfig(reference=None, months=())
    reference = sample(period, config.max_reference, config.seed)
    embeddings = encode(question_texts(period), cache=EmbeddingCache(cache_dir / "embeddings.sqlite"), progress=True)
    ref_emb = embeddings[period.index.get_indexer(reference.index)]
    method = model(bootstrap=False, threshold=0.55)  # as monitoring/evidently_report.py runs it
    columns = [f"e{i}" for i in range(embeddings.shape[1])]
    print(f"floors: embeddings reference {first}..{last}: {len(reference)} of {len(period)} questions", flush=True)
    ok: dict[int, int] = {}
    for n in GRID:
        good = 0
        for _ in range(DRAWS):
            drawn = embeddings[rng.choice(len(period), size=n, replace=False)]
            auc, _, _ = method(pd.DataFrame(drawn, columns=columns), pd.DataFrame(ref_emb, columns=columns))
            values = {
                "embedding_drift_auc": float(auc),
                "centroid_cosine_distance": stats.centroid_cosine_distance(ref_emb, drawn),
            }
            good += _levels(rules, "embeddings", values, {}, n) == "ok"
        ok[n] = good
        print(f"floors: family=embeddings n={n} ok={good}/{DRAWS}", flush=True)
    return ok


def model_floors(
    frame: pd.DataFrame, split_date: str, model_uri: str, settings: TrackingSettings, rng: np.random.Generator
) -> dict[str, dict]:
    """Predictions (tag PSI, no-tag share) and supervised (P@1) on draws from the questions after training."""
    from sotag.monitoring import stats
    from sotag.monitoring.config import DriftConfig
    from sotag.monitoring.job import sample
    from sotag.monitoring.severity import load_rules
    from sotag.registry.resolve import resolve
    from sotag.tagger.metrics import decide, evaluate
    from sotag.tagger.vocabulary import restrict_tags

    rules = load_rules()
    tagger = resolve(model_uri, settings).tagger
    vocabulary = list(tagger.vocabulary)
    window = frame[frame["creation_date"] >= pd.Timestamp(split_date)].reset_index(drop=True)
    config = DriftConfig(reference=None, months=())
    reference = sample(window, config.max_reference, config.seed)
    scores = tagger.scores(window["title"].tolist(), window["body"].tolist())
    predicted = decide(scores, tagger.config.top_k, tagger.config.threshold, tagger.config.min_tags)
    y = MultiLabelBinarizer(classes=vocabulary).fit_transform(restrict_tags(window["tags"], vocabulary))
    ref_rows = window.index.get_indexer(reference.index)
    ref_counts = stats.tag_distribution(predicted[ref_rows])
    top_k, threshold = tagger.config.top_k, tagger.config.threshold
    held_out = evaluate(scores, y, vocabulary, top_k, threshold).metrics
    baseline = {
        "no_tag_share": float((predicted[ref_rows].sum(axis=1) == 0).mean()),
        "precision_at_1": held_out["precision_at_1"],
    }
    print(
        f"floors: model {model_uri}: {len(window)} questions from {split_date}, baseline P@1 "
        f"{baseline['precision_at_1']:.3f}, no-tag share {baseline['no_tag_share']:.3f}",
        flush=True,
    )
    out: dict[str, dict] = {"predictions": {}, "supervised": {}}
    for n in GRID:
        good = {"predictions": 0, "supervised": 0}
        for _ in range(DRAWS):
            rows = rng.choice(len(window), size=n, replace=False)
            values = {
                "tag_psi": stats.psi(ref_counts, stats.tag_distribution(predicted[rows])),
                "no_tag_share": float((predicted[rows].sum(axis=1) == 0).mean()),
            }
            good["predictions"] += _levels(rules, "predictions", values, baseline, n) == "ok"
            tagged = y[rows].sum(axis=1) > 0
            if tagged.any():
                metrics = evaluate(scores[rows], y[rows], vocabulary, top_k, threshold).metrics
                level = _levels(rules, "supervised", metrics, baseline, metrics["n_evaluated"])
            else:
                level = "ok"
            good["supervised"] += level == "ok"
        for family, count in good.items():
            out[family][n] = count
            print(f"floors: family={family} n={n} ok={count}/{DRAWS}", flush=True)
    return out


def vocabulary_floor(
    frame: pd.DataFrame, split_date: str, vocabulary: list[str], rng: np.random.Generator
) -> dict[int, int]:
    """The out-of-vocabulary share of draws of n questions from the evaluation window, against the window's own."""
    from sotag.monitoring.severity import load_rules
    from sotag.tagger.metrics import vocabulary_coverage

    rules = load_rules()
    window = frame[frame["creation_date"] >= pd.Timestamp(split_date)]
    tags = [list(row) for row in window["tags"] if len(row)]
    baseline = {"oov_share": 1.0 - vocabulary_coverage(vocabulary, tags)}
    print(
        f"floors: vocabulary of {len(vocabulary)} tags: {len(tags)} tagged questions from {split_date}, "
        f"out-of-vocabulary share {baseline['oov_share']:.3f}",
        flush=True,
    )
    ok: dict[int, int] = {}
    for n in GRID:
        good = 0
        for _ in range(DRAWS):
            drawn = [tags[i] for i in rng.choice(len(tags), size=n, replace=False)]
            values = {"oov_share": 1.0 - vocabulary_coverage(vocabulary, drawn), "n_tagged_questions": float(n)}
            good += _levels(rules, "vocabulary", values, baseline, n) == "ok"
        ok[n] = good
        print(f"floors: family=vocabulary n={n} ok={good}/{DRAWS}", flush=True)
    return ok


def main() -> None:
    from bench.common import bench_settings
    from sotag.data import load_questions, resolve_data_paths
    from sotag.infra.argtypes import add_data_argument
    from sotag.infra.tracking import MODEL_NAME
    from sotag.training.config import DEFAULT_SPLIT_DATE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--model-uri", default=f"models:/{MODEL_NAME}@champion")
    parser.add_argument("--split-date", default=DEFAULT_SPLIT_DATE, help="the champion's split date")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("vocabulary",), default=None, help="measure one family")
    parser.add_argument(
        "--top-n-tags", type=int, default=None, help="with --only vocabulary: the top-N training tags, no model"
    )
    args = parser.parse_args()
    edge = bench_settings()
    cache_dir = edge.cache
    settings = TrackingSettings.from_settings(edge)
    start = time.perf_counter()
    frame, _ = load_questions(resolve_data_paths(getattr(args, "data", None) or edge.data, edge.home))
    rng = np.random.default_rng(args.seed)
    if args.top_n_tags:
        from sotag.tagger.vocabulary import tag_vocabulary

        training = frame[frame["creation_date"] < pd.Timestamp(args.split_date)]
        vocabulary = tag_vocabulary(training["tags"], args.top_n_tags)  # as `sotag train --top-n-tags` picks it
    else:
        from sotag.registry.resolve import resolve

        vocabulary = list(resolve(args.model_uri, settings).tagger.vocabulary)
    floors: dict[str, int | None] = {}
    if args.only is None:
        floors["embeddings"] = floor_of(embedding_floor(frame, args.split_date, cache_dir, rng))
        floors["text"] = floors["embeddings"]  # the same month sample; no text rule judges it (thresholds.json)
        model = model_floors(frame, args.split_date, args.model_uri, settings, rng)
        floors |= {family: floor_of(ok) for family, ok in model.items()}
    floors["vocabulary"] = floor_of(vocabulary_floor(frame, args.split_date, vocabulary, rng))
    print(f"floors: seconds={time.perf_counter() - start:.0f}")
    print("floors: " + " ".join(f"{family}={n}" for family, n in floors.items()))


if __name__ == "__main__":
    main()
