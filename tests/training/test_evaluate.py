"""`sotag evaluate`: any model on a SEDE CSV, a Posts.xml or a parquet file, logged as a run linked to the version."""

from __future__ import annotations

import html
import re
from pathlib import Path

import mlflow.artifacts
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sotag.cli import main
from sotag.data import load_questions
from sotag.infra.tracking import MODEL_NAME, TrackingSettings, use_fluent
from sotag.registry.resolve import resolve
from sotag.tagger.metrics import all_tags_metrics, ranked_tags, vocabulary_coverage
from sotag.training.config import TrainConfig
from sotag.training.train import train

SMALL = dict(
    vectorizer="tfidf", split_date="2018-03-01", top_n_tags=8, max_features=2000, min_df=1, C=10.0, threshold=0.2
)
LINE = re.compile(
    r"^evaluate: P@1=(?P<p1>\d\.\d{4}) R@5=(?P<r5>\d\.\d{4}) P@1_all=(?P<p1_all>\d\.\d{4}) "
    r"R@5_all=(?P<r5_all>\d\.\d{4}) coverage=(?P<coverage>\d\.\d{4}) n=(?P<n>\d+) "
    r"no_tag_share=(?P<no_tag_share>\d\.\d{4}) ece=(?P<ece>\d\.\d{4})$"
)


@pytest.fixture()
def version(tracking, questions_parquet, tmp_path) -> str:
    config = TrainConfig(data=questions_parquet, cache_dir=tmp_path / "cache", **SMALL)
    return train(config, use_fluent(tracking, config.experiment)).version


def _evaluate(capsys, *args: str) -> tuple[int, list[str], str]:
    code = main(["evaluate", *args])
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), out.err


def _expected(
    model_uri: str, data: Path | list[Path], settings: TrackingSettings, start: str | None = None
) -> dict[str, float]:
    """The all-tags figures computed here, straight from tagger.metrics, for the line to agree with."""
    frame, _ = load_questions(data)
    if start:
        frame = frame[frame["creation_date"] >= pd.Timestamp(start)]
    tagger = resolve(model_uri, settings).tagger
    scores = tagger.scores(frame["title"].tolist(), frame["body"].tolist())
    asked = frame["tags"].tolist()
    metrics = all_tags_metrics(ranked_tags(scores, tagger.vocabulary, 5), asked)
    metrics["vocabulary_coverage"] = vocabulary_coverage(tagger.vocabulary, asked)
    metrics["no_tag_share"] = float((scores.max(axis=1) < tagger.config.threshold).mean())
    top5 = [
        list(zip(*sorted(zip(row, tagger.vocabulary, strict=True), reverse=True)[:5], strict=True)) for row in scores
    ]
    pairs = [(s, t in set(a)) for (ss, ts), a in zip(top5, asked, strict=True) for s, t in zip(ss, ts, strict=True)]
    bins = [[p for p in pairs if min(int(p[0] * 10), 9) == b] for b in range(10)]
    metrics["ece"] = sum(
        len(b) / len(pairs) * abs(sum(h for _, h in b) / len(b) - sum(s for s, _ in b) / len(b)) for b in bins if b
    )
    return metrics


def _check_line(lines: list[str], expected: dict[str, float]) -> dict[str, str]:
    match = LINE.match(lines[-1])
    assert match, lines[-1]
    assert match["p1_all"] == f"{expected['precision_at_1_all']:.4f}"
    assert match["r5_all"] == f"{expected['recall_at_5_all']:.4f}"
    assert match["coverage"] == f"{expected['vocabulary_coverage']:.4f}"
    assert int(match["n"]) == int(expected["n_all"])
    assert match["no_tag_share"] == f"{expected['no_tag_share']:.4f}"
    assert match["ece"] == f"{expected['ece']:.4f}" and 0 < expected["ece"] < 1
    # Eleven tags are asked for and the model knows eight: all-tags figures sit below the in-vocabulary ones.
    assert 0 < expected["vocabulary_coverage"] < 1
    assert float(match["r5_all"]) < float(match["r5"])
    return match.groupdict()


def test_evaluate_a_version_on_parquet_logs_a_run_linked_to_it(tracking, version, questions_parquet, capsys):
    uri = f"models:/{MODEL_NAME}/{version}"
    code, lines, err = _evaluate(capsys, "--data", str(questions_parquet), "--model-uri", uri, "--start", "2018-03-01")
    assert code == 0, err
    line = _check_line(lines, _expected(uri, questions_parquet, tracking, "2018-03-01"))
    assert any(line.startswith("most used tags the model cannot suggest (top 20): ") for line in lines)

    client = MlflowClient(tracking.tracking_uri)
    experiment = client.get_experiment_by_name("evaluation")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["model_name"] == MODEL_NAME and run.data.tags["model_version"] == version
    assert run.data.tags["sotag.stage"] == "evaluate"
    assert f"{run.data.metrics['precision_at_1_all']:.4f}" == line["p1_all"]
    assert run.data.metrics["n_all"] == int(line["n"])
    assert {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")} == {
        "evaluation/per_tag_metrics.csv",
        "evaluation/missing_tags.csv",
    }
    missing = pd.read_csv(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="evaluation/missing_tags.csv")
    )
    vocabulary = resolve(uri, tracking).tagger.vocabulary
    assert len(missing) > 0 and not set(missing["tag"]) & set(vocabulary)
    assert missing["count"].is_monotonic_decreasing and (missing["count"] > 0).all()
    # The MLflow 3 link: the metrics are recorded against the version's logged model and the evaluation dataset.
    registered = client.get_model_version(MODEL_NAME, version)
    model_id = registered.model_id or registered.source.removeprefix("models:/")
    assert model_id.startswith("m-")
    logged = client.get_logged_model(model_id)
    linked = {m.key: m for m in logged.metrics if m.run_id == run.info.run_id}
    assert f"{linked['recall_at_5_all'].value:.4f}" == line["r5_all"]
    assert linked["recall_at_5_all"].dataset_name.endswith(":evaluate")
    assert run.inputs.dataset_inputs[0].dataset.name == linked["recall_at_5_all"].dataset_name


def _sede_csv(frame: pd.DataFrame, path: Path) -> Path:
    pd.DataFrame(
        {
            "Id": frame["id"],
            "CreationDate": frame["creation_date"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "Title": frame["title"],
            "Body": frame["body"],
            "Tags": frame["tags"].map(lambda ts: "".join(f"<{t}>" for t in ts)),
        }
    ).to_csv(path, index=False)
    return path


def _posts_xml(frame: pd.DataFrame, path: Path) -> Path:
    rows = [
        f'  <row Id="{q.id}" PostTypeId="1" CreationDate="{q.creation_date:%Y-%m-%dT%H:%M:%S}" '
        f'Title="{html.escape(q.title)}" Body="{html.escape(q.body)}" Tags="|{"|".join(q.tags)}|" />\n'
        for q in frame.itertuples()
    ]
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + "".join(rows) + "</posts>\n")
    return path


def test_evaluate_an_alias_on_a_sede_csv_and_a_model_folder_on_posts_xml(
    tracking, version, questions, tmp_path, capsys
):
    later = questions[questions["creation_date"] >= pd.Timestamp("2018-03-01")]
    csv = _sede_csv(later, tmp_path / "QueryResults.csv")
    uri = f"models:/{MODEL_NAME}@challenger"
    code, lines, err = _evaluate(capsys, "--data", str(csv), "--model-uri", uri)
    assert code == 0, err
    from_csv = _check_line(lines, _expected(uri, csv, tracking))

    folder = mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{version}", dst_path=str(tmp_path / "model"))
    xml = _posts_xml(later, tmp_path / "Posts.xml")
    code, lines, err = _evaluate(capsys, "--data", str(xml), "--model-uri", folder)
    assert code == 0, err
    from_xml = _check_line(lines, _expected(folder, xml, tracking))
    assert from_xml == from_csv  # the same questions and model, whatever the file format

    runs = MlflowClient(tracking.tracking_uri).search_runs(
        [MlflowClient(tracking.tracking_uri).get_experiment_by_name("evaluation").experiment_id]
    )
    assert sorted(r.data.tags["model_version"] for r in runs) == ["", version]


def test_bad_input_exits_2_naming_the_problem(tracking, version, questions_parquet, tmp_path, capsys):
    code, _, err = _evaluate(capsys, "--data", str(tmp_path / "nowhere.csv"))
    assert code == 2 and "nowhere.csv" in err
    code, _, err = _evaluate(capsys, "--data", str(questions_parquet), "--start", "2030-01-01")
    assert code == 2 and "--start/--end: no questions in 2030-01-01" in err
    code, _, err = _evaluate(capsys, "--data", str(questions_parquet), "--model-uri", f"models:/{MODEL_NAME}/99")
    assert code == 2 and "not in the registry" in err


def test_evaluate_on_several_files_scores_them_together(tracking, version, questions, tmp_path, capsys):
    """Issue 23: `--data A B` reads both (a question id once); the run's source names both."""
    first, second = tmp_path / "first.parquet", tmp_path / "second.csv"
    questions.iloc[:300].to_parquet(first)
    _sede_csv(questions.iloc[250:], second)  # 50 ids in both files
    uri = f"models:/{MODEL_NAME}/{version}"
    code, lines, err = _evaluate(capsys, "--data", str(first), str(second), "--model-uri", uri, "--start", "2018-03-01")
    assert code == 0, err
    frame, _ = load_questions([first, second])
    assert frame["id"].is_unique and len(frame) == len(questions)
    expected = _expected(uri, [first, second], tracking, "2018-03-01")
    assert int(expected["n_all"]) == int((questions["creation_date"] >= "2018-03-01").sum())
    _check_line(lines, expected)
    assert f"on {first}, {second} 2018-03-01" in lines[0]
    [run] = MlflowClient().search_runs([mlflow.get_experiment_by_name("evaluation").experiment_id], max_results=1)
    assert run.data.tags["data_source"] == f"{first.resolve()}, {second.resolve()}"
    code, _, err = _evaluate(capsys, "--data", str(first), str(tmp_path / "nowhere.csv"), "--model-uri", uri)
    assert code == 2 and "nowhere.csv" in err


def test_questions_inside_the_training_window_are_counted_and_said(tracking, version, questions_parquet, capsys):
    """The README's own command evaluates the demo's champion on the file it was trained on: the figures are
    optimistic, and evaluate must say so (the promotion gate already did). From the split date on, nothing is said."""
    uri = f"models:/{MODEL_NAME}/{version}"
    code, lines, err = _evaluate(capsys, "--data", str(questions_parquet), "--model-uri", uri)
    assert code == 0, err
    frame, _ = load_questions(questions_parquet)
    tagged = frame[frame["tags"].map(len) > 0]
    seen = int((tagged["creation_date"] < pd.Timestamp(SMALL["split_date"])).sum())
    assert 0 < seen < len(tagged)
    (note,) = [line for line in lines if line.startswith("note: ")]
    assert note.startswith(f"note: {seen} of these {len(tagged)} questions were asked before 2018-03-01")
    assert "optimistic" in note and "--start 2018-03-01" in note
    assert LINE.match(lines[-1])  # the interface line stays last
    client = MlflowClient(tracking.tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("evaluation").experiment_id])
    assert run.data.metrics["n_before_split_date"] == seen and run.data.tags["model_split_date"] == "2018-03-01"

    code, lines, err = _evaluate(capsys, "--data", str(questions_parquet), "--model-uri", uri, "--start", "2018-03-01")
    assert code == 0, err
    assert not [line for line in lines if line.startswith("note: ")]


def test_the_printed_per_tag_table_lists_only_tags_asked_or_served(tracking, version, questions, tmp_path, capsys):
    """On three questions most of the model's tags are neither asked nor served: no rows of zeros are printed;
    the run's CSV still has every tag."""
    few = tmp_path / "few.parquet"
    questions[questions["creation_date"] >= pd.Timestamp("2018-03-01")].head(3).to_parquet(few)
    code, lines, err = _evaluate(capsys, "--data", str(few), "--model-uri", f"models:/{MODEL_NAME}/{version}")
    assert code == 0, err
    start = next(i for i, line in enumerate(lines) if line.startswith("per tag ("))
    end = next(i for i, line in enumerate(lines) if line.startswith("most used tags"))
    header, *rows = lines[start + 1 : end]
    assert header.split() == ["tag", "support", "predicted", "precision", "recall", "f1"]
    assert 0 < len(rows) < SMALL["top_n_tags"]
    assert all(int(row.split()[1]) > 0 or int(row.split()[2]) > 0 for row in rows)
    assert lines[start].startswith(f"per tag (the {len(rows)} most asked of the {len(rows)} asked or served")
    client = MlflowClient(tracking.tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("evaluation").experiment_id])
    table = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="evaluation/per_tag_metrics.csv", tracking_uri=tracking.tracking_uri
        )
    )
    assert len(table) == SMALL["top_n_tags"]
