"""Training end to end on the synthetic set against a throwaway embedded MLflow store."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sotag.cli import main
from sotag.data import load_questions
from sotag.infra.tracking import use_fluent
from sotag.registry.card import read_card
from sotag.tagger.metrics import all_tags_metrics, ranked_tags, vocabulary_coverage
from sotag.tagger.threshold import GRID
from sotag.training.config import TrainConfig
from sotag.training.fit import prepare, small_data_warnings
from sotag.training.train import SMALL_DATA_TAG, train

SMALL = dict(
    vectorizer="tfidf", split_date="2018-03-01", top_n_tags=8, max_features=2000, min_df=1, C=10.0, threshold=0.2
)


@pytest.fixture()
def trained(tracking, questions_parquet, tmp_path):
    config = TrainConfig(data=questions_parquet, cache_dir=tmp_path / "cache", **SMALL)
    return config, train(config, use_fluent(tracking, config.experiment))


def test_run_logs_params_metrics_dataset_and_artifacts(trained):
    _, outcome = trained
    run = MlflowClient().get_run(outcome.run_id)
    assert run.data.params["vectorizer"] == "tfidf"
    assert run.data.params["top_n_tags"] == "8"
    for key in (
        "precision_at_1",
        "recall_at_5",
        "f1_at_3",
        "f1_micro",
        "f1_macro",
        "jaccard",
        "hamming_loss",
        "tag_coverage",
        "train_wall_s",
    ):
        assert key in run.data.metrics
    # Words reveal the tags in the synthetic set: a working model ranks them first.
    assert run.data.metrics["precision_at_1"] > 0.9
    # Beside them, the all-tags figures: every question of the evaluation window (not only those carrying one of
    # the 8 vocabulary tags) against every tag its asker chose, as tagger.metrics computes them.
    result, evaluation = outcome.result, trained[0]
    frame = load_questions(evaluation.data)[0]
    asked = frame[frame["creation_date"] >= pd.Timestamp(evaluation.split_date)]["tags"].tolist()
    expected = all_tags_metrics(ranked_tags(result.eval_scores, result.tagger.vocabulary, 5), asked)
    for key in ("precision_at_1_all", "recall_at_3_all", "recall_at_5_all", "f1_at_3_all", "n_all"):
        assert run.data.metrics[key] == pytest.approx(expected[key])
    assert run.data.metrics["n_all"] == len(asked)
    coverage = vocabulary_coverage(result.tagger.vocabulary, asked)
    assert run.data.metrics["vocabulary_coverage"] == pytest.approx(coverage)
    assert 0 < run.data.metrics["vocabulary_coverage"] < 1
    assert run.data.metrics["recall_at_5_all"] < run.data.metrics["recall_at_5"]
    assert run.data.tags["git_commit"]
    contexts = sorted(i.tags[0].value for i in run.inputs.dataset_inputs)
    assert contexts == ["evaluation", "training"]
    names = {a.path for a in MlflowClient().list_artifacts(outcome.run_id, "evaluation")}
    assert {
        "evaluation/per_tag_metrics.csv",
        "evaluation/per_tag_f1.png",
        "evaluation/frequent_confusions.png",
    } <= names
    report = mlflow.artifacts.load_dict(f"runs:/{outcome.run_id}/data/validation_report.json")
    assert report["rows_kept"] == 360


def test_registered_as_challenger_with_description_and_tags(trained):
    config, outcome = trained
    client = MlflowClient()
    version = client.get_model_version_by_alias(config.model_name, "challenger")
    assert str(version.version) == outcome.version == "1"
    assert version.run_id == outcome.run_id
    assert outcome.run_id in version.description
    card = read_card(client, version)  # the model card: its run's `sotag.card` tag
    assert card.run_id == outcome.run_id
    assert card.data_digest
    assert card.eval_metrics["precision_at_1"] > 0.9
    # The model card records the all-tags figures too.
    run_metrics = client.get_run(outcome.run_id).data.metrics
    for key in ("precision_at_1_all", "recall_at_5_all", "f1_at_3_all", "vocabulary_coverage"):
        assert card.eval_metrics[key] == round(run_metrics[key], 4)
    assert version.tags == {}  # judged by no gate yet: no tag on the version's row


def test_registered_model_predicts_through_pyfunc(trained):
    config, _ = trained
    model = mlflow.pyfunc.load_model(f"models:/{config.model_name}@challenger")
    frame = pd.DataFrame(
        {"title": ["pandas dataframe merge in python", "flexbox layout breaks"], "body": ["", "<p>css</p>"]}
    )
    out = model.predict(frame, params={"top_k": 2, "threshold": 0.0})
    assert [sorted(row) for row in out] == [["scores", "tags"], ["scores", "tags"]]
    assert out[0]["tags"][0] == "python"
    assert out[1]["tags"][0] == "css"
    assert len(out[0]["tags"]) == 2 and out[0]["scores"] == sorted(out[0]["scores"], reverse=True)
    with pytest.raises(MlflowException, match="top_k"):
        model.predict(frame, params={"top_k": 0})
    meta = model.metadata
    assert [c["name"] for c in meta.get_input_schema().to_dict()] == ["title", "body"]
    assert {p.name for p in meta.get_params_schema().params} == {"top_k", "threshold"}


def test_second_training_adds_a_version_and_moves_challenger(trained, questions_parquet, tracking, tmp_path):
    config, _ = trained
    outcome = train(
        TrainConfig(data=questions_parquet, cache_dir=tmp_path / "cache", **{**SMALL, "C": 1.0}),
        use_fluent(tracking, "stackoverflow-tagger"),
    )
    assert outcome.version == "2"
    assert str(MlflowClient().get_model_version_by_alias(config.model_name, "challenger").version) == "2"


def test_cli_without_data_says_how_to_get_some(tracking, tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "missing.parquet")])
    err = capsys.readouterr().err
    assert code == 2
    assert "no data file" in err and "Posts.xml" in err and "Data Explorer" in err


def test_cli_bad_split_date_exits_2(tracking, questions_parquet, capsys):
    code = main(["train", "--data", str(questions_parquet), "--split-date", "2031-01-01", "--top-n-tags", "5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--split-date 2031-01-01: leaves no evaluation rows" in err and "e.g. --split-date " in err


def test_every_line_train_prints_is_labelled(tracking, questions_parquet, tmp_path, capsys):
    config = TrainConfig(data=questions_parquet, cache_dir=tmp_path / "cache", **SMALL)
    outcome = train(config, use_fluent(tracking, config.experiment))
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.split(":", 1)[0].strip().isidentifier() for line in lines), lines
    (served,) = [line for line in lines if line.startswith("served:")]
    m = outcome.result.evaluation.metrics
    assert f"f1_micro={m['f1_micro']:.4f}" in served and "at least 1, at most 5 with probability >= 0.2" in served
    record = outcome.result.record.metrics
    assert f"no_tag_share={record['no_tag_share']:.4f} ece={record['ece']:.4f}" in served
    assert not any(line.lstrip().startswith("{") for line in lines)


def _as_stacksample(questions: pd.DataFrame, folder) -> None:
    """The synthetic questions in Kaggle's StackSample layout, one row's bytes cp1252 in an otherwise UTF-8 file."""
    folder.mkdir()
    frame = questions.assign(
        OwnerUserId=4000000.0,
        ClosedDate="NA",
        Score=0,
        CreationDate=questions["creation_date"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
    ).rename(columns={"id": "Id", "title": "Title", "body": "Body"})
    frame.loc[0, "Title"] = "r\u00e9ponse \u201cAPI\u201d " + frame.loc[0, "Title"]
    frame = frame[["Id", "OwnerUserId", "CreationDate", "ClosedDate", "Score", "Title", "Body"]]
    text = frame.to_csv(index=True)
    first = text.splitlines(keepends=True)[1]
    data = text.encode("utf-8").replace(first.encode("utf-8"), first.encode("cp1252"))
    (folder / "Questions.csv").write_bytes(data)
    tags = questions[["id", "tags"]].explode("tags").rename(columns={"id": "Id", "tags": "Tag"})
    tags.to_csv(folder / "Tags.csv", index=False)


def test_cli_trains_on_kaggle_stacksample_with_a_cp1252_line(tracking, questions, tmp_path, capsys, caplog):
    """Issue 20 kind 2: StackSample (a folder or its Questions.csv) trains; the bad bytes are repaired and counted."""
    _as_stacksample(questions, tmp_path / "stacksample")
    flags = ["--split-date", "2018-03-01", "--top-n-tags", "8", "--max-features", "2000", "--min-df", "1"]
    for data in (tmp_path / "stacksample", tmp_path / "stacksample" / "Questions.csv"):
        code = main(["train", "--data", str(data), *flags])
        err = capsys.readouterr().err
        assert code == 0, err
        assert "Traceback" not in err and "1 line(s) not UTF-8, read as cp1252 (lines 2)" in caplog.text
        caplog.clear()
    run = mlflow.search_runs(experiment_names=["stackoverflow-tagger"], max_results=1, output_format="list")[0]
    report = json.loads(mlflow.artifacts.load_text(run.info.artifact_uri + "/data/validation_report.json"))
    assert report["repaired_encoding_lines"] == 1 and report["rows_kept"] == len(questions)


def test_cli_trains_the_label_tree_kind_over_every_tag_with_enough_questions(tracking, questions_parquet, capsys):
    flags = ["--top-n-tags", "3", "--min-tag-questions", "30", "--max-features", "2000", "--min-df", "1"]
    flags += ["--no-register", "--choose-threshold"]
    code = main(["train", "--data", str(questions_parquet), "--split-date", "2018-03-01", "--vectorizer=plt", *flags])
    assert code == 0
    [run] = MlflowClient().search_runs(
        [mlflow.get_experiment_by_name(TrainConfig().experiment).experiment_id], max_results=1
    )
    frame = pd.read_parquet(questions_parquet)
    train_tags = frame[frame["creation_date"] < "2018-03-01"]["tags"]
    counts = pd.Series([t for row in train_tags for t in set(row)]).value_counts()
    assert run.data.params["vectorizer"] == "plt" and run.data.params["min_tag_questions"] == "30"
    assert run.data.params["vocabulary_size"] == str(int((counts >= 30).sum()))
    assert int(run.data.params["tree_nodes"]) > int((counts >= 30).sum())  # a leaf per tag, a root, groups
    assert run.data.metrics["precision_at_1"] > 0.8
    # The served threshold was chosen on the newest training questions; the run says what it leaves untagged.
    table = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/threshold/validation.json")
    best = max(row[table["columns"].index("served_f1")] for row in table["data"])
    assert run.data.metrics["validation_served_f1"] == pytest.approx(best)
    assert run.data.metrics["served_threshold"] != 0.3 or best > 0
    assert 0.0 <= run.data.metrics["no_tag_share"] < 0.2


def test_cli_min_tag_questions_must_be_positive(tracking, questions_parquet, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["train", "--data", str(questions_parquet), "--vectorizer", "plt", "--min-tag-questions", "0"])
    assert exited.value.code == 2
    assert "--min-tag-questions" in capsys.readouterr().err


# Issue 23 item 3: `--data` takes several files or folders, in every command that reads questions.
TINY = ["--vectorizer", "tfidf", "--split-date", "2018-03-01", "--top-n-tags", "8", "--max-features", "2000"]
TINY += ["--min-df", "1", "--no-register"]


def _newest_run():
    experiment = mlflow.get_experiment_by_name(TrainConfig().experiment).experiment_id
    return MlflowClient().search_runs([experiment], order_by=["attribute.start_time DESC"], max_results=1)[0]


def test_cli_trains_on_several_files_and_the_digest_covers_all_of_them(tracking, questions, tmp_path, caplog):
    older, newer = tmp_path / "older.parquet", tmp_path / "newer.parquet"
    questions.iloc[:300].to_parquet(older)
    questions.iloc[250:].to_parquet(newer)  # 50 ids in both files
    assert main(["train", "--data", str(older), *TINY]) == 0
    alone = _newest_run()
    assert main(["train", "--data", str(older), str(newer), *TINY]) == 0
    both = _newest_run()
    assert main(["train", "--data", str(older), "--data", str(newer), *TINY]) == 0  # the repeated form: the same
    repeated = _newest_run()
    assert "50 question id(s) appear in more than one input (newer.parquet, older.parquet)" in caplog.text
    assert both.data.tags["data_digest"] != alone.data.tags["data_digest"]
    assert repeated.data.tags["data_digest"] == both.data.tags["data_digest"]
    assert both.data.tags["data_source"] == f"{older.resolve()}, {newer.resolve()}"
    assert int(both.data.params["n_train"]) + int(both.data.params["n_eval"]) == len(questions)
    report = mlflow.artifacts.load_dict(f"runs:/{both.info.run_id}/data/validation_report.json")
    assert report["dropped_duplicate_id"] == 50 and report["rows_kept"] == len(questions)
    assert report["inputs"] == [str(older), str(newer)] and report["rows_per_input"] == [300, len(questions) - 250]
    names = {i.dataset.name for i in both.inputs.dataset_inputs}
    assert names == {"older.parquet+newer.parquet:training", "older.parquet+newer.parquet:evaluation"}


def test_cli_trains_on_a_folder_of_exports(tracking, questions, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    questions.iloc[:200].to_parquet(folder / "part-1.parquet")
    questions.iloc[200:].to_parquet(folder / "part-2.parquet")
    assert main(["train", "--data", str(folder), *TINY]) == 0
    run = _newest_run()
    report = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/data/validation_report.json")
    assert report["rows_per_input"] == [200, len(questions) - 200] and report["rows_kept"] == len(questions)


@pytest.mark.parametrize("bad", ["missing.parquet", "empty", "notes.txt"])
def test_cli_a_bad_data_path_among_several_exits_2_naming_it(tracking, questions_parquet, tmp_path, capsys, bad):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("no questions here")
    (tmp_path / "notes.txt").write_text("no questions here")
    code = main(["train", "--data", str(questions_parquet), str(tmp_path / bad), *TINY])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(tmp_path / bad) in err and "Traceback" not in err


def test_calibrated_scores_keep_the_ranking_serve_every_question_and_log_their_reliability(
    tracking, questions_parquet, tmp_path
):
    def run(**overrides):
        config = TrainConfig(data=questions_parquet, cache_dir=tmp_path / "cache", register=False, **SMALL | overrides)
        return train(config, use_fluent(tracking, config.experiment))

    raw = run(calibrate=False, min_tags=0)
    calibrated = run(threshold=None)  # the default: calibrated, min_tags 1, the threshold chosen on the slice
    assert raw.result.tagger.config.calibration is None and raw.result.tagger.config.min_tags == 0
    served = calibrated.result.tagger.config
    assert served.calibration is not None and served.min_tags == 1 and served.threshold in GRID
    for key in ("precision_at_1", "recall_at_5", "precision_at_1_all", "recall_at_5_all", "f1_at_3_all"):
        assert calibrated.result.evaluation.metrics[key] == raw.result.evaluation.metrics[key], key
    metrics = MlflowClient().get_run(calibrated.run_id).data.metrics
    assert metrics["no_tag_share"] == 0.0 and metrics["served_threshold"] == served.threshold
    assert 0.0 <= metrics["ece"] <= 1.0 and {"ece_raw", "validation_ece", "validation_served_f1"} <= set(metrics)
    logged = {a.path for a in MlflowClient().list_artifacts(calibrated.run_id, "calibration")}
    assert logged == {"calibration/reliability.json", "calibration/reliability.png"}
    table = json.loads(mlflow.artifacts.load_text(f"runs:/{calibrated.run_id}/calibration/reliability.json"))
    assert {row[table["columns"].index("scores")] for row in table["data"]} == {"raw", "served"}


def test_training_on_a_tiny_file_warns_and_tags_the_run_but_trains(tracking, questions, tmp_path, caplog):
    """20 questions gave a model of one-example tags judged on a handful, and no word said about it."""
    tiny = tmp_path / "tiny.parquet"
    questions.iloc[5::17].head(20).to_parquet(tiny)  # every topic, over the 18 months: 17 before the split, 3 after
    with caplog.at_level(logging.WARNING, logger="sotag.training"):
        assert main(["train", "--data", str(tiny), *TINY]) == 0
    expected = [
        "small data: the training window holds 17 questions and 7 of the model's 8 tags are on fewer than 5 of them "
        "(--min-tag-questions): too few examples to learn those tags",
        "small data: the evaluation window holds 3 questions, fewer than 200 (train.min_eval_questions): too few "
        "for its figures to judge the model",
    ]
    assert [r.getMessage() for r in caplog.records if r.name == "sotag.training.train"] == expected
    tag = _newest_run().data.tags[SMALL_DATA_TAG]
    assert tag == "; ".join(message.removeprefix("small data: ") for message in expected)


def test_a_data_set_large_enough_gets_no_small_data_warning(tracking, questions_parquet, tmp_path, caplog):
    config = TrainConfig(
        data=questions_parquet, cache_dir=tmp_path / "cache", min_tag_questions=5, min_eval_questions=50, **SMALL
    )
    prepared = prepare(config)
    assert len(prepared.split.evaluation) >= 50
    assert small_data_warnings(config, prepared) == []
    n_eval = len(prepared.split.evaluation)
    assert small_data_warnings(replace(config, min_eval_questions=n_eval + 1), prepared) == [
        f"the evaluation window holds {n_eval} questions, fewer than {n_eval + 1} (train.min_eval_questions): "
        "too few for its figures to judge the model"
    ]
