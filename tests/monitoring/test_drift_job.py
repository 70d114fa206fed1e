"""The drift job on real data (reduced sample): the planted topic shift must be `alert`."""

from __future__ import annotations

import json
from dataclasses import replace

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sotag.data.split import TOPIC_SPECIFIC_SOURCES
from sotag.infra.prediction_log import PredictionLog, PredictionRecord, now
from sotag.infra.tracking import MODEL_NAME, use_fluent
from sotag.monitoring.config import EXIT_ALERT, DriftConfig
from sotag.monitoring.runner import execute, load_frame
from sotag.registry.card import read_card
from sotag.training.config import TrainConfig
from sotag.training.train import train
from tests.support.drift_scenario import CHAMPION_SPLIT, PLANTED_MONTH, REFERENCE, scenario_frame


@pytest.mark.integration
def test_planted_topic_shift_is_alert_with_a_named_or_the_default_reference(shared_data, tracking, tmp_path, capsys):
    config = TrainConfig(
        vectorizer="tfidf",
        data=shared_data, split_date=CHAMPION_SPLIT, exclude_sources=TOPIC_SPECIFIC_SOURCES, top_n_tags=50,
        max_features=20_000, cache_dir=tmp_path / "cache",
    )  # fmt: skip
    outcome = train(config, use_fluent(tracking, config.experiment))
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", outcome.version)
    frame = scenario_frame(shared_data)
    drift = DriftConfig(
        reference=REFERENCE,
        months=("2017-07", "2017-08", PLANTED_MONTH),
        data=shared_data,
        max_per_month=400,  # the planted month: 400 questions, enough tagged ones for the supervised floor (150)
        max_reference=300,
        reports_root=tmp_path / "reports",
        cache_dir=tmp_path / "drift-cache",
    )
    result, code = execute(drift, tracking, frame=frame, publish_to=use_fluent(tracking, drift.experiment))
    severity = {m.month: m.severity for m in result.months}
    assert severity[PLANTED_MONTH] == "alert", result.summary()
    assert code == EXIT_ALERT
    planted = next(m for m in result.months if m.month == PLANTED_MONTH)
    ordinary = [m for m in result.months if m.month != PLANTED_MONTH]
    assert all(planted.values["embedding_drift_auc"] > m.values["embedding_drift_auc"] for m in ordinary)
    assert "precision_at_1" in planted.values  # tags known: supervised metrics too

    summary = json.loads((result.reports_dir / "summary.json").read_text())
    assert [m["month"] for m in summary["months"]] == ["2017-07", "2017-08", PLANTED_MONTH]
    assert (result.reports_dir / f"{PLANTED_MONTH}.html").stat().st_size > 100_000
    assert "ALERT in 2018-06" in capsys.readouterr().out

    run = mlflow.search_runs(experiment_names=["drift-monitoring"], output_format="list")[0]
    history = MlflowClient().get_metric_history(run.info.run_id, "embedding_drift_auc")
    assert [h.step for h in history] == [0, 1, 2]
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "plots")}
    assert "plots/drift_over_time.png" in artifacts

    # Warm: every embedding comes from the cache, same verdicts.
    warm, _ = execute(replace(drift, reports_root=tmp_path / "warm"), tracking, frame=frame)
    assert warm.timings["embed_s"] < result.timings["embed_s"] / 5
    assert [m.severity for m in warm.months] == [m.severity for m in result.months]

    # The default job, as `make drift` runs it: no --reference.
    default = replace(drift, reference=None, months=("2017-07", PLANTED_MONTH), reports_root=tmp_path / "default")
    result, code = execute(default, tracking, frame=frame)
    out = capsys.readouterr().out
    held_out = read_card(MlflowClient(), MlflowClient().get_model_version(MODEL_NAME, outcome.version)).eval_metrics
    # Before, the supervised baseline was the model scored on its own training months: P@1 = 1.000.
    assert result.reference["precision_at_1"] == held_out["precision_at_1"] < 0.99
    assert result.baselines["embeddings"].startswith("2016-07..2016-12, the champion's last 6 training months")
    assert "evaluation window 2017-01-01..end of data" in result.baselines["predictions"]
    assert "  supervised:  the champion's held-out figures" in out
    severity = {m.month: m.severity for m in result.months}
    assert severity == {"2017-07": severity["2017-07"], PLANTED_MONTH: "alert"} and severity["2017-07"] != "alert"
    planted = next(m for m in result.months if m.month == PLANTED_MONTH)
    assert [r for r in planted.reasons if r.startswith("P@1 ") and "vs the champion's held-out 0." in r]

    # A named reference inside the training window: embeddings and text only, and the job says so.
    overlapping = replace(default, reference=("2016-07", "2016-12"), months=("2017-07",))
    result, _ = execute(overlapping, tracking, frame=frame)
    assert "overlaps the champion's training" in capsys.readouterr().out
    assert result.baselines["predictions"].startswith("the champion's evaluation window 2017-01-01")
    assert result.reference["precision_at_1"] == held_out["precision_at_1"]


def test_prediction_log_is_a_monitoring_source(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    plog = PredictionLog(url, log_text=True)
    for i in range(5):
        plog.append(
            PredictionRecord(now(), MODEL_NAME, "1", "/predict", f"title {i}", "<p>b</p>", ["python"], [0.9], 1.0)
        )
    plog.close()
    frame = load_frame(DriftConfig(reference=("2017-01", "2017-06"), months=("2017-07",), predictions_url=url))
    assert list(frame.columns) == ["creation_date", "title", "body", "served_tags", "served_top_score"]
    assert len(frame) == 5 and frame["served_tags"].tolist() == [["python"]] * 5
    assert frame["served_top_score"].tolist() == [0.9] * 5
    assert frame["creation_date"].dt.year.eq(pd.Timestamp.now().year).all()

    digests_only = f"sqlite:///{tmp_path / 'q.db'}"
    plog = PredictionLog(digests_only, log_text=False)
    plog.append(PredictionRecord(now(), MODEL_NAME, "1", "/predict", "t", "b", ["python"], [0.9], 1.0))
    plog.close()
    with pytest.raises(Exception, match="SOTAG_LOG_TEXT=1"):
        load_frame(DriftConfig(reference=("2017-01", "2017-06"), months=("2017-07",), predictions_url=digests_only))


@pytest.mark.integration
def test_a_month_of_three_questions_is_not_enough_and_triggers_nothing(questions, tracking, tmp_path, capsys):
    """Issue 20 kind 3 (case drift-tiny-month): an export cut just after a month began, three questions copied
    from the reference period: no family is judged, no ALERT, no exit 4, no --on-alert. One line says so (not one
    per family, then again "prediction and supervised statistics skipped"), no new tag is listed from 3 questions,
    and the report opens with what it compares and sotag's verdict."""
    from sotag.monitoring.severity import DEFAULT_THRESHOLDS, load_floors

    path, outcome = _small_champion(questions, tracking, tmp_path)
    months = questions["creation_date"].dt.strftime("%Y-%m")
    copies = questions[months == "2017-12"].head(3)
    copies = copies.assign(
        id=copies["id"] + 100_000,
        creation_date=pd.to_datetime(["2018-07-01 08:00", "2018-07-01 17:00", "2018-07-02 09:00"]),
        source="export-cut-2018-07-02",
        tags=[["python", "rust"], ["java", "rust"], ["sql", "polars"]],  # two tags outside the champion's 8
    )
    frame = pd.concat([questions, copies], ignore_index=True)
    drift = DriftConfig(
        reference=None,
        months=("2018-07",),
        data=path,
        reports_root=tmp_path / "reports",
        cache_dir=tmp_path / "drift-cache",
        on_alert="retrain",
    )
    result, code = execute(drift, tracking, frame=frame)
    out = capsys.readouterr().out
    floors = load_floors(DEFAULT_THRESHOLDS)
    [month] = result.months
    # No family had enough questions: the month is "unjudged", never "ok" (nor warn or alert), and exit 0.
    assert (month.n, month.severity, code) == (3, "unjudged", 0)
    assert floors == {"embeddings": 75, "text": 75, "predictions": 100, "supervised": 150, "vocabulary": 50}
    line = (
        "3 questions, under every family's minimum (embeddings: 75, text: 75, predictions: 100, supervised: 150, "
        "vocabulary: 50): not judged"
    )
    assert month.reasons == [line]
    assert [row for row in out.splitlines() if row.startswith("  2018-07: ")] == [f"  2018-07: {line}"]
    assert "statistics skipped" not in out
    assert "ALERT" not in out and "running retrain" not in out
    summary = json.loads((result.reports_dir / "summary.json").read_text())
    assert summary["min_questions"] == floors and summary["worst"] == "unjudged"
    assert " unjudged " in out  # the table says so
    # The vocabulary family's floor is also the sample new tags are read from: none listed from 3 questions.
    assert month.new_tags == () and summary["months"][0]["new_tags"] == []
    [vocabulary] = [row for row in out.splitlines() if row.startswith("vocabulary: 2018-07: ")]
    assert vocabulary.endswith(
        "; 2 new tags not listed: 3 tagged questions, under the vocabulary family's minimum of 50"
    )
    # The report, opened alone, says what it compares and sotag's verdict.
    report = (result.reports_dir / "2018-07.html").read_text()
    header = [
        "## sotag drift: embeddings and text, month 2018-07",
        "",
        "- **Month**: 2018-07 (2018-07-01 00:00..2018-08-01 00:00 UTC), 3 questions",
        f"- **Model**: stackoverflow-tagger v{outcome.version} (@champion), MLflow run {outcome.run_id}",
        "- **Baseline**: 2017-09..2018-02, the champion's last 6 training months (these statistics do not depend "
        "on the model)",
        "- **sotag's verdict**: embeddings: not judged (3 questions, under its minimum of 75); text: not judged (3 "
        "questions, under its minimum of 75); the whole month: unjudged",
    ]
    assert json.dumps("\n".join(header))[1:-1] in report  # the text widget's Markdown, as Evidently embeds it


@pytest.mark.integration
def test_a_month_full_of_new_tags_alerts_on_vocabulary_and_a_month_like_the_reference_does_not(
    questions, tracking, tmp_path, capsys
):
    """Issue 23 item 5: the share of tag occurrences the champion cannot suggest, against its evaluation window."""
    from sotag.monitoring.severity import DEFAULT_THRESHOLDS, load_floors

    path, outcome = _small_champion(questions, tracking, tmp_path)
    baseline = 1.0 - outcome.result.evaluation.metrics["vocabulary_coverage"]
    window = questions[questions["creation_date"] >= pd.Timestamp("2018-03-01")]
    floor = load_floors(DEFAULT_THRESHOLDS)["vocabulary"]
    n = max(120, floor)

    def month(start: str, offset: int, extra_tags: list[str]) -> pd.DataFrame:
        rows = window.sample(n=n, replace=True, random_state=offset).reset_index(drop=True)
        return rows.assign(
            id=range(offset, offset + n),
            creation_date=pd.Timestamp(start) + pd.to_timedelta(range(n), unit="h"),
            tags=[[*tags, *extra_tags] for tags in rows["tags"]],
        )

    like = month("2018-07-01", 200_000, [])  # the evaluation window's questions, resampled
    shifted = month("2018-08-01", 300_000, ["rust", "polars"])  # every question also carries two new tags
    frame = pd.concat([questions, like, shifted], ignore_index=True)
    drift = DriftConfig(
        reference=None,
        months=("2018-07", "2018-08"),
        data=path,
        reports_root=tmp_path / "reports",
        cache_dir=tmp_path / "drift-cache",
    )
    result, _ = execute(drift, tracking, frame=frame)
    out = capsys.readouterr().out
    ordinary, planted = result.months
    assert result.reference["oov_share"] == pytest.approx(baseline, abs=1e-4)  # from the model card (4 decimals)
    assert 0 < baseline < 0.5
    assert not [r for r in ordinary.reasons if "vocabulary" in r]
    assert abs(ordinary.values["oov_share"] - baseline) < 0.1
    vocabulary_reasons = [r for r in planted.reasons if r.startswith("out-of-vocabulary share")]
    assert len(vocabulary_reasons) == 1 and vocabulary_reasons[0].endswith("alert)"), planted.reasons
    assert planted.severity == "alert"
    assert planted.values["oov_share"] > 0.5 and planted.values["n_tagged_questions"] == n
    assert planted.new_tags[:2] == (("polars", n), ("rust", n))  # most used first, ties by name
    assert f"vocabulary: 2018-08: {planted.values['oov_share']:.3f} of tag occurrences outside" in out
    summary = json.loads((result.reports_dir / "summary.json").read_text())
    assert summary["min_questions"]["vocabulary"] == floor
    assert summary["months"][1]["new_tags"][:2] == [["polars", n], ["rust", n]]
    assert summary["months"][1]["oov_share"] == planted.values["oov_share"]
    assert "vocabulary" in summary["baselines"]
    # The predicted-tags report opens with what it compares (the month's questions after the champion's training,
    # its evaluation window) and sotag's verdict on the family and the month.
    report = (result.reports_dir / "2018-08-predictions.html").read_text()
    level = planted.family_severity["predictions"]
    assert level in ("ok", "warn", "alert")
    header = [
        "## sotag drift: predictions, month 2018-08",
        "",
        f"- **Month**: 2018-08 (2018-08-01 00:00..2018-09-01 00:00 UTC), {n} questions after the champion's training",
        f"- **Model**: stackoverflow-tagger v{outcome.version} (@champion), MLflow run {outcome.run_id}",
        f"- **Baseline**: {result.baselines['predictions']}",
        f"- **sotag's verdict**: predictions: {level}",
    ]
    assert json.dumps("\n".join(header))[1:-1] in report
    assert result.baselines["predictions"].startswith("the champion's evaluation window 2018-03-01..")
    assert json.dumps("; the whole month: alert\n")[1:-1] in report


def _small_champion(questions, tracking, tmp_path):
    """A top-8 tfidf model on the synthetic questions (trained up to 2018-03-01), made @champion: (data path, outcome).
    The tfidf kind with 8 tags leaves tags out of the vocabulary, as the drift families need."""
    path = tmp_path / "questions.parquet"
    questions.to_parquet(path)
    outcome = train(
        TrainConfig(vectorizer="tfidf", data=path, split_date="2018-03-01", top_n_tags=8, max_features=2000,
                    min_df=1, C=10.0, cache_dir=tmp_path / "cache"),
        use_fluent(tracking, "stackoverflow-tagger"),
    )  # fmt: skip
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", outcome.version)
    return path, outcome


def test_drift_reads_several_data_paths_and_names_a_bad_one(questions, tmp_path, capsys):
    """Issue 23: `sotag drift --data A B` (or `--data A --data B`) reads both, each question id once; a retrain on
    alert gets the same paths; a path that does not exist is exit 2 naming it."""
    from sotag.cli import build_parser
    from sotag.cli import main as sotag_main
    from sotag.infra.argtypes import settings_flags
    from sotag.monitoring import runner
    from sotag.monitoring.cli import config_from_settings
    from sotag.settings import load_settings

    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    questions.iloc[:300].to_parquet(first)
    questions.iloc[250:].to_parquet(second)
    for flags in (["--data", str(first), str(second)], ["--data", str(first), "--data", str(second)]):
        args = build_parser().parse_args(["drift", *flags, "--months", "2018-03"])
        config = config_from_settings(args, load_settings(settings_flags(args), environ={}, cwd=tmp_path).settings)
        assert config.data == (first, second)
        frame = load_frame(config)
        assert frame["id"].is_unique and len(frame) == len(questions)
    assert runner.retrain_args(config) == ["--data", str(first), str(second)]
    code = sotag_main(["drift", "--data", str(first), str(tmp_path / "nope.parquet"), "--no-mlflow"])
    err = capsys.readouterr().err
    assert code == 2 and str(tmp_path / "nope.parquet") in err and "Traceback" not in err


def test_a_retrain_on_alert_gets_the_settings_file_the_drift_job_was_given(questions_parquet, tmp_path):
    from sotag.cli import build_parser
    from sotag.infra.argtypes import settings_flags
    from sotag.monitoring import runner
    from sotag.monitoring.cli import config_from_settings
    from sotag.settings import load_settings

    team = tmp_path / "team.toml"
    team.write_text("[promote]\nfloor = 0.5\n")
    args = build_parser().parse_args(["drift", "--data", str(questions_parquet), "--config", str(team)])
    settings = load_settings(settings_flags(args), config=args.config_file, environ={}, cwd=tmp_path).settings
    assert settings.promote.floor == 0.5
    config = config_from_settings(args, settings)
    assert runner.retrain_args(config) == ["--data", str(questions_parquet), "--config", str(team)]
