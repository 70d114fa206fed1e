import re

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from sotag.infra.tracking import use_fluent
from sotag.training.compare import compare
from sotag.training.config import TrainConfig


def test_compare_runs_each_vectorizer_nested_and_logs_the_table(tracking, questions_parquet, tmp_path, capsys):
    config = TrainConfig(
        data=questions_parquet,
        split_date="2018-03-01",
        top_n_tags=8,
        max_features=2000,
        min_df=1,
        C=10.0,
        cache_dir=tmp_path / "cache",
        register=False,
    )
    table = compare(config, use_fluent(tracking, config.experiment), ("bow", "tfidf", "sbert", "ensemble"))
    # Before the SBERT pass, what it will take: the kinds that embed, the texts the cold cache lacks, a measured rate.
    said = capsys.readouterr().out
    (cold,) = [line for line in said.splitlines() if "the embedding cache" in line]
    assert re.search(r"^compare: sbert, ensemble embed [\d,]+ question texts .* at \d+ texts/s \(measured on", cold)
    assert said.index(cold) < said.index("| vectorizer")
    assert sorted(table["vectorizer"]) == ["bow", "ensemble", "sbert", "tfidf"]
    # Ranked on the gate's primary metric (all-tags F1@3), best first: what decides which model users get.
    assert table["f1_at_3_all"].is_monotonic_decreasing
    assert (table["precision_at_1"] > 0.8).all()

    client = MlflowClient()
    experiment = client.get_experiment_by_name(config.experiment)
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("sotag.stage") == "compare")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.params["vectorizer"] for r in children) == ["bow", "ensemble", "sbert", "tfidf"]
    ensemble = next(r for r in children if r.data.params["vectorizer"] == "ensemble")
    assert 0.0 <= float(ensemble.data.params["ensemble_weight_chosen"]) <= 1.0
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert {
        "comparison/comparison.csv",
        "comparison/comparison.md",
        "comparison/f1_at_3.png",
        "comparison/f1_at_3_all.png",
        "comparison/precision_at_1.png",
        "comparison/tag_coverage.png",
    } <= logged
    csv = pd.read_csv(
        mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="comparison/comparison.csv")
    )
    assert csv["vectorizer"].tolist() == table["vectorizer"].tolist()
    assert parent.data.tags["ranked_on"] == "f1_at_3_all"
    assert parent.data.tags["best_vectorizer"] == table["vectorizer"].iloc[0]
    # No registry version from a comparison.
    assert client.search_model_versions(f"name='{config.model_name}'") == []
    # The SBERT embeddings were cached on disk for the next run.
    assert (tmp_path / "cache" / "embeddings.sqlite").stat().st_size > 0
    # A second comparison finds every text in the cache and says nothing of it.
    compare(config, use_fluent(tracking, config.experiment), ("sbert",))
    assert "the embedding cache" not in capsys.readouterr().out
