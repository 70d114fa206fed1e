"""Issue 30 part 1: rolling-window drift on the gateway's prediction log (seed 004: the 7 days before as-of against
the 30 before those), beside calendar months."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sotag.infra.prediction_log import PredictionLog, PredictionRecord
from sotag.infra.tracking import MODEL_NAME, use_fluent
from sotag.monitoring import stats
from sotag.monitoring.months import parse_as_of, rolling_windows
from sotag.registry.resolve import resolve
from sotag.training.config import TrainConfig
from sotag.training.train import train

AS_OF = "2026-12-07"
DAY = pd.Timedelta(days=1)


def test_the_windows_are_the_days_before_as_of_and_the_days_before_those():
    reference, current = rolling_windows(parse_as_of(AS_OF), 7, 30)
    assert (current.start, current.end) == (pd.Timestamp("2026-11-30"), pd.Timestamp("2026-12-07"))
    assert (reference.start, reference.end) == (pd.Timestamp("2026-10-31"), pd.Timestamp("2026-11-30"))
    assert (current.label, reference.label) == ("2026-11-30..2026-12-06", "2026-10-31..2026-11-29")
    assert (current.days, reference.days) == (7, 30)
    dates = pd.Series(pd.to_datetime(["2026-11-29 23:59", "2026-11-30 00:00", "2026-12-06 23:59", "2026-12-07 00:00"]))
    assert current.mask(dates).tolist() == [False, True, True, False]
    assert reference.mask(dates).tolist() == [True, False, False, False]
    # An instant (the default: now) keeps its minutes, in UTC.
    _, now = rolling_windows(parse_as_of("2026-12-07T06:30:00+01:00"), 7, 30)
    assert now.end == pd.Timestamp("2026-12-07 05:30") and now.label == "2026-11-30T0530..2026-12-07T0530"
    # The default, now, ends the current window after every prediction logged so far (this minute's included).
    before = pd.Timestamp.now(tz="UTC").tz_localize(None)
    assert parse_as_of(None) > before and parse_as_of(None) - before <= pd.Timedelta(minutes=1)


def test_ks_matches_scipy_and_reads_zero_on_equal_samples():
    from scipy.stats import ks_2samp

    a, b = [0.1, 0.2, 0.3, 0.4, 0.5], [0.3, 0.5, 0.7, 0.9, 0.95]
    assert stats.ks(a, b) == pytest.approx((ks_2samp(a, b).statistic, ks_2samp(a, b).pvalue))
    assert stats.ks(a, a)[0] == 0.0


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--current-days", "7"], "--reference-days"),
        (["--reference-days", "30"], "--current-days"),
        (["--as-of", AS_OF], "--as-of"),
        (["--current-days", "7", "--reference-days", "30", "--months", "2018-05"], "--months"),
        (["--current-days", "7", "--reference-days", "30", "--as-of", "next tuesday"], "--as-of"),
    ],
)
def test_half_given_or_mixed_window_flags_are_exit_2_naming_the_flag(flags, named, tmp_path, capsys, monkeypatch):
    from sotag.cli import main as sotag_main

    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    code = sotag_main(["drift", "--predictions", url, *flags, "--no-mlflow"])
    err = capsys.readouterr().err
    assert code == 2 and f"sotag drift: error: {named}" in err and "Traceback" not in err


def test_a_zero_day_window_is_refused_by_the_parser(capsys):
    from sotag.cli import main as sotag_main

    with pytest.raises(SystemExit) as exit_:
        sotag_main(["drift", "--current-days", "0", "--reference-days", "30"])
    assert exit_.value.code == 2 and "--current-days" in capsys.readouterr().err


def _champion(questions, tracking, tmp_path):
    path = tmp_path / "questions.parquet"
    questions.to_parquet(path)
    outcome = train(
        TrainConfig(vectorizer="tfidf", data=path, split_date="2018-03-01", top_n_tags=8, max_features=2000,
                    min_df=1, C=10.0, threshold=0.3, cache_dir=tmp_path / "cache"),
        use_fluent(tracking, "stackoverflow-tagger"),
    )  # fmt: skip
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", outcome.version)
    return resolve(f"models:/{MODEL_NAME}@champion", tracking)


def _log(url: str, served, rows: pd.DataFrame, start: pd.Timestamp, days: float) -> None:
    """`rows` served by the champion and logged through the gateway's writer, spread evenly over `days` from
    `start`."""
    plog = PredictionLog(url, log_text=True, flush_s=0.05)
    suggestions = served.tagger.suggest(rows["title"].tolist(), rows["body"].tolist())
    step = days * DAY / len(rows)
    for i, (row, s) in enumerate(zip(rows.itertuples(), suggestions, strict=True)):
        ts = (start + i * step).tz_localize("UTC").to_pydatetime()
        plog.append(
            PredictionRecord(ts, MODEL_NAME, served.version, "/predict", row.title, row.body, s.tags, s.scores, 2.0)
        )
    plog.close()
    assert plog.written == len(rows) and plog.dropped == 0


@pytest.mark.integration
def test_seven_days_against_the_thirty_before_on_a_real_prediction_log(
    questions, tracking, tmp_path, capsys, monkeypatch
):
    """40 days of logged predictions: the 3 oldest days fall outside both windows; a week like the month before is
    not alert, a week of one topic is, through the CLI, with the windows named in the output, the reports folder,
    summary.json and the MLflow run."""
    from sotag.cli import main as sotag_main

    monkeypatch.chdir(tmp_path)
    served = _champion(questions, tracking, tmp_path)
    as_of = pd.Timestamp(AS_OF)
    pool = questions.sample(n=900, replace=True, random_state=1).reset_index(drop=True)
    ordinary = f"sqlite:///{tmp_path / 'ordinary.db'}"
    _log(ordinary, served, pool.iloc[:60], as_of - 40 * DAY, 3)  # outside both windows
    _log(ordinary, served, pool.iloc[60:660], as_of - 37 * DAY, 30)  # the reference: 600 over 30 days
    _log(ordinary, served, pool.iloc[660:800], as_of - 7 * DAY, 7)  # the current week: 140, the same mix
    shifted = f"sqlite:///{tmp_path / 'shifted.db'}"
    _log(shifted, served, pool.iloc[:660], as_of - 40 * DAY, 33)
    docker = questions[questions["tags"].map(lambda t: t[0] == "docker")]
    _log(shifted, served, docker.sample(n=140, replace=True, random_state=2), as_of - 7 * DAY, 7)

    window = ["--current-days", "7", "--reference-days", "30", "--as-of", AS_OF]
    code = sotag_main(["drift", "--predictions", ordinary, *window, "--reports-dir", str(tmp_path / "ordinary")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "drift: current window 2026-11-30..2026-12-06 (7 days, 2026-11-30 00:00..2026-12-07 00:00 UTC) against " \
        "the reference window 2026-10-31..2026-11-29 (30 days" in out  # fmt: skip
    [folder] = (tmp_path / "ordinary").iterdir()
    assert folder.name.endswith("_7d-2026-11-30..2026-12-06_vs_30d-2026-10-31..2026-11-29")
    summary = json.loads((folder / "summary.json").read_text())
    [week] = summary["months"]
    assert week["month"] == "2026-11-30..2026-12-06" and week["n"] == 140  # the 60 oldest rows read by neither
    assert summary["windows"]["reference"] == "2026-10-31..2026-11-29" and summary["windows"]["current_days"] == "7"
    assert week["severity"] != "alert"
    assert week["n_served_questions"] == 140 and week["served_top_score_ks"] < 0.2
    assert 0 <= week["served_tag_psi"] < 0.5 and week["served_tag_chi2_pvalue"] > 0.001
    assert summary["baselines"]["predictions"].startswith("the reference window 2026-10-31..2026-11-29 (the 30 days")
    assert "supervised" not in summary["baselines"]  # the log carries no labels
    run = mlflow.search_runs(experiment_names=["drift-monitoring"], output_format="list")[0]
    assert run.info.run_name == "drift 7d 2026-11-30..2026-12-06 vs 30d 2026-10-31..2026-11-29"
    assert run.data.params["current_days"] == "7" and run.data.params["reference"] == "2026-10-31..2026-11-29"

    code = sotag_main(["drift", "--predictions", shifted, *window, "--reports-dir", str(tmp_path / "shifted")])
    out = capsys.readouterr().out
    assert code == 4, out
    assert "drift: ALERT in the current window 2026-11-30..2026-12-06 vs 2026-10-31..2026-11-29 (exit 4)" in out
    [folder] = (tmp_path / "shifted").iterdir()
    [week] = json.loads((folder / "summary.json").read_text())["months"]
    assert week["severity"] == "alert" and week["embedding_drift_auc"] > 0.75
    assert week["served_tag_psi"] > 3.0 and week["served_tag_chi2_pvalue"] < 1e-6
    assert 0 <= week["served_top_score_ks"] <= 1  # one topic, served as confidently as the mix
    assert any(r.startswith("served tag PSI ") and r.endswith("alert)") for r in week["reasons"]), week["reasons"]

    # Too few: a current week of 20 questions is reported, not judged; a reference of 20 is no verdict (exit 2).
    sparse = f"sqlite:///{tmp_path / 'sparse.db'}"
    _log(sparse, served, pool.iloc[:600], as_of - 37 * DAY, 30)
    _log(sparse, served, pool.iloc[600:620], as_of - 7 * DAY, 7)
    code = sotag_main(["drift", "--predictions", sparse, *window, "--no-mlflow", "--reports-dir", str(tmp_path / "s")])
    out = capsys.readouterr().out
    line = (
        "  2026-11-30..2026-12-06: 20 questions, under every family's minimum (embeddings: 75, text: 75, predictions: "
    )
    assert code == 0 and f"{line}100): not judged\n" in out, out
    # A current week with no prediction at all: reported as not judged, its plots drawn, not a traceback.
    quiet = f"sqlite:///{tmp_path / 'quiet.db'}"
    _log(quiet, served, pool.iloc[:600], as_of - 37 * DAY, 30)
    code = sotag_main(["drift", "--predictions", quiet, *window, "--reports-dir", str(tmp_path / "q")])
    out = capsys.readouterr().out
    assert code == 0 and "the current window 2026-11-30..2026-12-06 holds no questions: nothing to judge" in out, out
    quiet_run = mlflow.search_runs(experiment_names=["drift-monitoring"], output_format="list")[0]
    assert quiet_run.info.status == "FINISHED" and quiet_run.info.run_name.startswith("drift 7d 2026-11-30")
    code = sotag_main(["drift", "--predictions", sparse, "--current-days", "30", "--reference-days", "3",
                       "--as-of", AS_OF, "--no-mlflow", "--reports-dir", str(tmp_path / "s")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "reference window 2026-11-04..2026-11-06: not enough questions (n=" in err, err


@pytest.mark.integration
def test_feedback_on_live_traffic_gives_the_supervised_family_its_labels(questions, tracking, tmp_path, monkeypatch):
    """Predictions logged with their ids, the askers' kept tags posted back (the gateway's /feedback rows): the
    drift job on the prediction log judges precision and recall on live traffic, from those rows only."""
    from sotag.cli import main as sotag_main
    from sotag.infra.prediction_log import insert_feedback, new_prediction_id
    from sotag.serving.feedback import precision_at_1, recall_at_5

    monkeypatch.chdir(tmp_path)
    served = _champion(questions, tracking, tmp_path)
    as_of = pd.Timestamp(AS_OF)
    pool = questions.sample(n=800, replace=True, random_state=3).reset_index(drop=True)
    url = f"sqlite:///{tmp_path / 'live.db'}"
    plog = PredictionLog(url, log_text=True, flush_s=0.05)
    suggestions = served.tagger.suggest(pool["title"].tolist(), pool["body"].tolist())
    feedback = []
    for i, (row, s) in enumerate(zip(pool.itertuples(), suggestions, strict=True)):
        current = i >= 600  # 600 over the 30 reference days, 200 in the current week
        start, days, n, k = (as_of - 7 * DAY, 7, 200, i - 600) if current else (as_of - 37 * DAY, 30, 600, i)
        ts = (start + k * days * DAY / n).tz_localize("UTC").to_pydatetime()
        pid = new_prediction_id()
        plog.append(
            PredictionRecord(
                ts, MODEL_NAME, served.version, "/predict", row.title, row.body, s.tags, s.scores, 2.0, pid
            )
        )
        if i % 2 == 0:  # half the askers said which tags they kept
            kept = set(row.tags)
            feedback.append({
                "prediction_id": pid, "ts": ts, "tags": json.dumps(list(row.tags)), "model_name": MODEL_NAME,
                "model_version": served.version, "precision_at_1": precision_at_1(s.tags, kept),
                "recall_at_5": recall_at_5(s.tags, kept), "shadow_version": None, "shadow_precision_at_1": None,
                "shadow_recall_at_5": None,
            })  # fmt: skip
    plog.close()
    for row in feedback:
        assert insert_feedback(plog.engine, row) is None
    window = ["--current-days", "7", "--reference-days", "30", "--as-of", AS_OF]
    code = sotag_main(["drift", "--predictions", url, *window, "--no-mlflow", "--reports-dir", str(tmp_path / "r")])
    assert code in (0, 4)
    [folder] = (tmp_path / "r").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    [week] = summary["months"]
    assert week["n"] == 200 and week["n_tagged_questions"] == 100  # the current week's labelled half
    assert 0 < week["precision_at_1"] <= 1 and 0 < week["recall_at_5"] <= 1
