"""Promotion gate, rollback and status against a throwaway embedded registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
from mlflow.tracking import MlflowClient

from sotag.cli import main
from sotag.infra.tracking import MODEL_NAME
from sotag.registry.card import read_card
from sotag.registry.gate import GateConfig, judge, score_models
from sotag.registry.lifecycle import gate_label, promote, rollback, status_text
from sotag.registry.store import CHAMPION, RegistryConflict, RegistryError
from sotag.tagger.metrics import all_tags_metrics, ranked_tags, vocabulary_coverage
from tests.registry.conftest import SMALL

# Five features cannot tell six topics apart: a clearly worse model on the same window.
WEAK = dict(SMALL, max_features=5)


@pytest.fixture()
def gate(questions_parquet):
    return GateConfig(data=questions_parquet, floor=0.5)


def test_first_version_becomes_champion_with_tags_and_history(make_version, registry, gate):
    v1 = make_version()
    result = promote(registry, gate)
    assert result.promoted and result.exit_code == 0
    assert registry.alias(CHAMPION) == v1
    mv = registry.version(v1)
    assert mv.tags == {"gate_decision": "promoted"}  # the one version tag; the card is its run's tag
    assert read_card(registry.client, mv).gate["gate_decision"] == "promoted"
    # The decision in one sentence, as the MLflow UI shows it beside the version.
    assert mv.description.startswith("Champion since ") and "promoted as the first champion" in mv.description
    history = registry.history()
    assert [(e.action, e.version, e.previous) for e in history] == [("promote", v1, None)]
    assert "first champion" in history[0].reason and history[0].metrics["challenger"]["f1_at_3"] > 0.5
    # The event is a FINISHED run of the history experiment, its gate figures run metrics; the model has no tags.
    run = MlflowClient().get_run(history[0].run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == f"promote v{v1} (first champion)"
    assert run.data.params["action"] == "promote" and run.data.params["version"] == v1
    assert run.data.metrics["challenger.f1_at_3"] == history[0].metrics["challenger"]["f1_at_3"]
    assert registry.model().tags == {}


def test_below_floor_is_not_promoted(make_version, registry, gate):
    v1 = make_version()
    result = promote(registry, replace(gate, floor=0.999))
    assert not result.promoted and result.exit_code == 3
    assert registry.alias(CHAMPION) is None
    assert registry.version(v1).tags["gate_decision"] == "rejected"
    assert "below the floor 0.9990" in result.verdict.reason
    assert registry.version(v1).description.startswith("Kept out of @champion (no champion yet): floor: ")


def test_worse_challenger_keeps_champion_then_better_one_wins_and_rollback_restores(make_version, registry, gate):
    v1 = make_version(**WEAK)
    # Forced through (no floor, no behavioural cases) to stand as a weak first champion.
    assert promote(registry, replace(gate, floor=0.0, behaviour_cases=None)).promoted
    v2 = make_version()
    result = promote(registry, gate)
    assert result.promoted, result.verdict.reason
    assert registry.alias(CHAMPION) == v2
    demoted = registry.version(v1).description
    assert demoted.startswith("Champion until ") and f"replaced by v{v2}" in demoted
    assert f"promoted over v{v1}" in registry.version(v2).description
    # Both were re-scored on the same window: the strong model is better on every ranking metric.
    m = result.verdict.metrics
    assert m["challenger"]["f1_at_3"] > m["champion"]["f1_at_3"]

    v3 = make_version(**WEAK)
    # Without the behavioural cases (which the weak model fails first, and cheaper): the comparison decides.
    kept = promote(registry, replace(gate, floor=0.0, behaviour_cases=None))
    assert not kept.promoted and kept.exit_code == 3
    assert registry.alias(CHAMPION) == v2
    assert "not better, champion kept" in kept.verdict.reason
    assert registry.version(v3).tags["gate_decision"] == "rejected"
    assert registry.version(v3).description.startswith(f"Kept out of @champion (champion v{v2} stays): comparison: ")

    assert rollback(registry, "bad tags in prod").version == v1
    assert registry.alias(CHAMPION) == v1
    assert registry.version(v2).description.startswith("Rolled back on ")
    assert "bad tags in prod" in registry.version(v2).description
    assert registry.version(v1).description.startswith("Champion again since ")
    assert [e.action for e in registry.history()] == ["promote", "promote", "rollback"]
    with pytest.raises(RegistryError, match="first champion"):
        rollback(registry)
    assert registry.alias(CHAMPION) == v1

    text = status_text(registry)
    for needle in (f"v{v1}", f"v{v2}", f"v{v3}", "champion", "rejected", "rollback", "bad tags in prod"):
        assert needle in text
    # The rolled-back version's gate decision says it was rolled back, and when.
    rolled_back_at = registry.history()[-1].at
    row = next(line for line in text.splitlines() if line.startswith(f"v{v2} "))
    assert f"promoted, then rolled back (at {rolled_back_at})" in row
    assert gate_label(read_card(registry.client, registry.version(v1)), v1, registry.history()) == "promoted"
    # The all-tags columns, read from each version's model card.
    assert "P@1 all" in text and "F1@3 all" in text and "vocab cov" in text
    card = read_card(registry.client, registry.version(v1))
    assert card.headline("f1_at_3_all") in text and card.headline("vocabulary_coverage") in text


def test_rollback_without_champion_says_so(make_version, registry):
    make_version()
    with pytest.raises(RegistryError, match="no @champion"):
        rollback(registry)


def test_cli_exit_codes_and_messages(make_version, questions_parquet, capsys):
    make_version()
    assert main(["promote", "--data", str(questions_parquet), "--floor", "0.999"]) == 3
    assert "KEPT" in capsys.readouterr().out
    assert main(["promote", "--data", str(questions_parquet), "--floor", "0.5"]) == 0
    assert "PROMOTED" in capsys.readouterr().out
    assert main(["rollback"]) == 2
    assert "no previous champion" in capsys.readouterr().err
    assert main(["promote", "--version", "99", "--data", str(questions_parquet)]) == 2
    assert "version 99: not found" in capsys.readouterr().err
    assert main(["status"]) == 0
    assert "promotion history" in capsys.readouterr().out


def test_alias_move_refused_when_champion_changed_meanwhile(make_version, registry, gate):
    v1 = make_version()
    v2 = make_version()
    promote(registry, gate, v1)
    with pytest.raises(RegistryConflict, match="champion moved"):
        registry.move_champion(v2, expected_current=None, action="promote", reason="stale decision")
    assert registry.alias(CHAMPION) == v1
    assert len(registry.history()) == 1


def test_mirror_stages_sets_production_and_archives_previous(make_version, registry, gate):
    v1 = make_version()
    v2 = make_version()
    promote(registry, replace(gate, mirror_stages=True), v1)
    promote(registry, replace(gate, mirror_stages=True), v2)
    client = MlflowClient()
    assert client.get_model_version(MODEL_NAME, v2).current_stage == "Production"
    assert client.get_model_version(MODEL_NAME, v1).current_stage == "Archived"


@pytest.mark.integration
def test_two_concurrent_promotes_leave_a_consistent_registry(make_version, registry, questions_parquet, tmp_path):
    versions = [make_version(), make_version(), make_version()]
    env = {**os.environ, "SOTAG_LOCK_DIR": str(tmp_path / "locks")}
    registry_lock_env = env  # both processes share the lock directory, as two shells on one machine would
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sotag", "promote", "--version", v, "--data", str(questions_parquet)],
            env=registry_lock_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for v in versions[1:]
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    history = registry.history()
    assert len(history) == 2
    # Serialised: the second promotion was judged against the first one's result.
    assert history[0].previous is None
    assert history[1].previous == history[0].version
    assert registry.alias(CHAMPION) == history[1].version
    assert {e.version for e in history} == set(versions[1:])
    assert registry.lineage() == [history[0].version, history[1].version]


def test_union_vocabulary_scoring_compares_models_with_different_tag_sets(make_version, registry, questions_parquet):
    from sotag.data import load_questions, time_split

    small = registry.load_tagger(make_version(top_n_tags=3))
    full = registry.load_tagger(make_version())
    frame = time_split(load_questions(questions_parquet)[0], "2018-03-01").evaluation
    scored = score_models({"small": small, "full": full}, frame)
    # Same truth for both: the model that knows only 3 tags cannot recall the others.
    assert scored["full"]["recall_at_5"] > scored["small"]["recall_at_5"]
    assert scored["small"]["n_evaluated"] == scored["full"]["n_evaluated"]
    assert 0 < scored["small"]["tag_coverage"] <= 1
    # All tags (the primary metric): each model on every question of the window against its asker's full tag list,
    # with no restriction to either vocabulary; equal to tagger.metrics' all-tags figures of its own suggestions.
    asked = frame["tags"].tolist()
    for label, tagger in (("small", small), ("full", full)):
        own = tagger.scores(frame["title"].tolist(), frame["body"].tolist())
        expected = all_tags_metrics(ranked_tags(own, tagger.vocabulary, 5), asked)
        assert scored[label]["f1_at_3_all"] == pytest.approx(expected["f1_at_3_all"], abs=1e-6)
        assert scored[label]["n_all"] == len(frame)
        assert scored[label]["vocabulary_coverage"] == pytest.approx(vocabulary_coverage(tagger.vocabulary, asked))
    assert scored["small"]["vocabulary_coverage"] < scored["full"]["vocabulary_coverage"] < 1
    assert scored["full"]["f1_at_3_all"] > scored["small"]["f1_at_3_all"]


def test_judge_rules():
    gate = GateConfig(data=None, floor=0.4, min_delta=0.01)
    base = {"f1_at_3": 0.5, "precision_at_1": 0.7, "recall_at_5": 0.8, "tag_coverage": 0.9, "f1_micro": 0.5}
    base |= {"f1_at_3_all": 0.4, "precision_at_1_all": 0.6, "recall_at_5_all": 0.5, "vocabulary_coverage": 0.6}
    assert judge(gate, base, None, None).promote
    assert not judge(gate, {**base, "f1_at_3": 0.3}, None, None).promote  # the floor reads in-vocabulary F1@3
    # The comparison reads all-tags F1@3 by default: a better in-vocabulary figure does not win alone.
    assert not judge(gate, {**base, "f1_at_3": 0.9}, {**base, "f1_at_3_all": 0.395}, "1").promote  # needs +0.01
    decision = judge(gate, {**base, "f1_at_3": 0.45, "f1_at_3_all": 0.42}, base, "1")
    assert decision.promote and "F1@3 all 0.4200 vs champion v1's 0.4000" in decision.reason
    assert decision.metrics["challenger"]["f1_at_3"] == 0.45  # the in-vocabulary figures are kept beside it
    in_vocabulary = GateConfig(data=None, floor=0.4, min_delta=0.01, primary_metric="f1_at_3")
    assert judge(in_vocabulary, {**base, "f1_at_3": 0.51}, base, "1").promote


def test_the_gate_refuses_a_challenger_over_the_latency_budget_and_records_why(make_version, registry, gate):
    v1 = make_version()
    result = promote(registry, replace(gate, max_latency_ms=1e-6))
    assert not result.promoted and result.exit_code == 3
    tags = read_card(registry.client, registry.version(v1)).gate
    assert "over the latency budget of 1e-06 ms" in tags["gate_reason"] and tags["gate_decision"] == "rejected"
    assert 0 < float(tags["latency_p50_ms"]) <= float(tags["latency_p99_ms"]) and tags["latency_budget_ms"] == "1e-06"
    # The same version within the default budget passes.
    assert promote(registry, gate).promoted
    assert float(read_card(registry.client, registry.version(v1)).gate["latency_p50_ms"]) < gate.max_latency_ms


def test_a_challenger_over_the_latency_budget_is_refused_before_the_window_is_scored(
    make_version, registry, gate, monkeypatch, capsys
):
    import sotag.registry.validate as validate_module

    v1 = make_version()
    promote(registry, gate, v1)
    v2 = make_version(C=5.0)
    scored: list[int] = []
    real_score = validate_module.score_models

    def spy(*args, **kwargs):
        scored.append(1)
        return real_score(*args, **kwargs)

    monkeypatch.setattr(validate_module, "score_models", spy)
    capsys.readouterr()  # training's own output
    result = promote(registry, replace(gate, max_latency_ms=1e-6), v2)
    assert not result.promoted and scored == []  # refused on 50 questions; the window was never scored
    verdict = result.verdict
    assert [(c.name, c.status) for c in verdict.checks] == [
        ("latency", "failed"),
        ("behaviour", "skipped"),
        ("floor", "skipped"),
        ("comparison", "skipped"),
    ]
    assert verdict.metrics == {} and verdict.reason.endswith("; the window was not scored")
    assert registry.version(v2).tags["gate_decision"] == "rejected" and registry.alias(CHAMPION) == v1

    # Through the CLI: no table of unscored models, and the skipped checks are named.
    assert (
        main(["promote", "--version", v2, "--data", *map(str, gate.data), "--floor", "0.5", "--max-latency-ms", "1e-6"])
        == 3
    )
    out = capsys.readouterr().out
    assert "latency FAILED, behaviour skipped, floor skipped, comparison skipped" in out
    assert "P@1" not in out and scored == []

    # Within the budget the gate goes on to the whole window.
    assert promote(registry, gate, v2).verdict is not None and scored == [1]


def test_a_failed_required_behavioural_case_refuses_promotion(make_version, registry, gate, tmp_path):
    cases = tmp_path / "cases.json"
    cases.write_text(
        json.dumps(
            {
                "version": 7,
                "cases": [
                    {"id": "ok", "type": "contains", "title": "docker compose volume mount", "tag": "docker"},
                    {
                        "id": "impossible",
                        "type": "contains",
                        "title": "docker compose volume mount",
                        "tag": "css",
                        "within": 1,
                    },
                    {"id": "unknown-tag", "type": "contains", "title": "anything", "tag": "cobol"},
                ],
            }
        )
    )
    v1 = make_version()
    result = promote(registry, replace(gate, behaviour_cases=cases))
    assert not result.promoted and registry.alias(CHAMPION) is None
    tags = read_card(registry.client, registry.version(v1)).gate
    assert "1 required behavioural case(s) failed: impossible (css ranks" in tags["gate_reason"]
    assert json.loads(tags["behaviour_results"]) == {"ok": "pass", "impossible": "fail", "unknown-tag": "skip"}
    assert tags["behaviour_summary"] == "1 passed, 1 failed, 1 skipped (cases v7)"
    assert tags["gate_metrics"] == "{}"  # refused before the window was scored
    assert [c.status for c in result.verdict.checks] == ["passed", "failed", "skipped", "skipped"]
    # The shipped cases: the synthetic model passes every case whose tags it knows.
    assert promote(registry, gate).promoted
    assert ", 0 failed," in read_card(registry.client, registry.version(v1)).gate["behaviour_summary"]


@pytest.mark.integration
def test_exit_codes_through_the_documented_command(make_version, questions_parquet, tracking, tmp_path):
    """What cron and CI run (README): `.venv/bin/sotag promote` from any folder; its exit code is the contract
    (`make promote` cannot carry it: GNU make exits 2 whenever a recipe fails)."""
    sotag = os.path.join(os.path.dirname(sys.executable), "sotag")
    cron_dir = tmp_path / "cron"
    cron_dir.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sotag, "promote", "--data", str(questions_parquet), *args],
            cwd=cron_dir,
            env=dict(os.environ),  # MLFLOW_TRACKING_URI of the test's store, as a crontab would set it
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    v1 = make_version()
    first = run("--floor", "0.5")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "PROMOTED" in first.stdout
    make_version(**WEAK)
    kept = run("--floor", "0.0")
    assert kept.returncode == 3, kept.stderr[-2000:]
    assert "KEPT" in kept.stdout
    assert str(MlflowClient().get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == v1
    bad = run("--version", "99")
    assert bad.returncode == 2
    assert "version 99: not found" in bad.stderr
    assert not (cron_dir / "mlflow.db").exists()


def test_dry_run_prints_the_verdict_and_records_nothing(make_version, registry, questions_parquet, capsys):
    v1 = make_version()
    promote(registry, GateConfig(data=questions_parquet, floor=0.5), v1)
    v2 = make_version()
    before = {v: dict(registry.version(v).tags) for v in (v1, v2)}
    history = registry.history()

    assert main(["promote", "--dry-run", "--version", v2, "--data", str(questions_parquet), "--floor", "0.5"]) == 0
    out = capsys.readouterr().out
    assert f"promote: DRY RUN: would promote v{v2} to @champion" in out
    assert f"challenger v{v2}" in out and f"champion v{v1}" in out  # both models' metrics, in the table
    assert (
        "checks (cheapest first, stopping at the first refusal): latency passed, behaviour passed, floor passed, "
        "comparison passed; nothing recorded" in out
    )
    assert "over the union of both vocabularies (8 tags: challenger 8, champion 8)" in out
    assert "PROMOTED" not in out
    assert registry.alias(CHAMPION) == v1 and registry.history() == history
    assert {v: dict(registry.version(v).tags) for v in (v1, v2)} == before
    assert "gate_decision" not in registry.version(v2).tags

    # A verdict that would keep the champion exits 3, as the real promote would, and still records nothing.
    assert main(["promote", "--dry-run", "--version", v2, "--data", str(questions_parquet), "--floor", "0.999"]) == 3
    out = capsys.readouterr().out
    assert f"promote: DRY RUN: would keep (v{v1} stays @champion)" in out
    assert "latency passed, behaviour passed, floor FAILED, comparison skipped" in out
    assert registry.alias(CHAMPION) == v1 and dict(registry.version(v2).tags) == before[v2]


def test_validation_runs_unlocked_and_the_lock_covers_only_the_compare_and_set_and_history(
    make_version, tracking, questions_parquet, tmp_path, monkeypatch
):
    import threading

    import sotag.registry.validate as validate_module
    from sotag.registry.store import Registry

    v1, v2 = make_version(), make_version()
    registry = Registry(MlflowClient(), MODEL_NAME, tracking.tracking_uri, tmp_path / "locks", lock_timeout_s=5)
    calls: list[tuple[str, bool]] = []

    class Recording:
        """The registry client, noting each call and whether this registry's lock was held during it."""

        def __init__(self, client: MlflowClient):
            self._client = client

        def __getattr__(self, name: str):
            method = getattr(self._client, name)

            def call(*args, **kwargs):
                calls.append((name, registry._lock.is_locked))
                return method(*args, **kwargs)

            return call

    registry.client = Recording(registry.client)
    measured = validate_module.measure_latency
    moved_meanwhile: list[str] = []

    def latency_while_another_writer_moves_the_champion(*args, **kwargs):
        assert not registry._lock.is_locked  # scoring and timing run unlocked
        if not moved_meanwhile:
            # Another writer's deploy, in another thread, while this promote judges: it must not wait.
            other = threading.Thread(
                target=lambda: moved_meanwhile.append(registry.move_champion(v1, None, "promote", "meanwhile").version)
            )
            other.start()
            other.join(timeout=30)
        return measured(*args, **kwargs)

    monkeypatch.setattr(validate_module, "measure_latency", latency_while_another_writer_moves_the_champion)
    result = promote(registry, GateConfig(data=questions_parquet, floor=0.5), v2)

    assert moved_meanwhile == [v1]
    # The compare-and-set refused the first verdict (judged against no champion); v2 was judged again against v1.
    assert result.promoted and result.verdict.champion == v1 and "champion" in result.verdict.metrics
    assert [(e.version, e.previous) for e in registry.history()] == [(v1, None), (v2, v1)]
    under_lock = [name for name, locked in calls if locked]
    # Under the lock only: this promote's recovery check (the registered model, the history experiment: none yet),
    # the other writer's move (recovery check and alias read, the intent run in the history experiment it creates,
    # the alias, the confirmation), this promote's refused compare-and-set (recovery check, now reading the history
    # runs, and the alias read), then its move after judging again.
    first_recover = ["get_registered_model", "get_experiment_by_name"]
    recover = [*first_recover, "search_runs"]
    intent = ["get_experiment_by_name", "create_run", "log_batch"]
    move = ["set_registered_model_alias", "log_batch", "set_terminated"]
    first_move = [*first_recover, "get_registered_model", intent[0], "create_experiment", *intent[1:], *move]
    later_move = [*recover, "get_registered_model", *intent, *move]
    assert under_lock == first_recover + first_move + recover + ["get_registered_model"] + later_move
    assert any(name == "set_model_version_tag" for name, locked in calls if not locked)  # annotations: after it


def test_a_champion_that_keeps_moving_ends_in_a_conflict_with_nothing_recorded(monkeypatch):
    import sotag.registry.lifecycle as lifecycle

    class Moving:
        """A registry whose champion another writer moves after every judgement."""

        name = MODEL_NAME

        def __init__(self):
            self.champion, self.tagged = 0, []

        def alias(self, alias):
            return str(self.champion) if alias == CHAMPION else "9"

        def recover(self, by):
            return []

        def version(self, version):
            return version

        def tag_version(self, version, tags):
            self.tagged.append(version)

    judged: list[str | None] = []

    def judge_promote(registry, config, version, champion, questions=None):
        judged.append(champion)
        return type("V", (), {"promote": True, "version": version, "champion": champion})()

    def refused(registry, verdict, mirror_stages=False):
        registry.champion += 1
        raise RegistryConflict(f"champion moved to v{registry.champion}")

    monkeypatch.setattr(lifecycle, "validate", judge_promote)
    monkeypatch.setattr(lifecycle, "deploy", refused)
    registry = Moving()
    with pytest.raises(RegistryConflict, match=r"conflict: @champion moved while v9 was judged, 3 times in a row"):
        promote(registry, GateConfig(data=None))
    assert judged == ["0", "1", "2"]  # judged again against each new champion
    assert registry.tagged == []  # no verdict recorded for a move that never happened


def test_status_counts_the_tags_a_label_tree_model_can_suggest_not_its_head(make_version, registry):
    """The plt kind's --top-n-tags is the one-vs-rest head's size; its vocabulary also holds the tree's tags."""
    version = make_version(vectorizer="plt", top_n_tags=3, min_tag_questions=5)
    n_tags = len(registry.load_tagger(version).vocabulary)
    card = read_card(registry.client, registry.version(version))
    assert card.top_n_tags == 3 and card.n_tags == n_tags > 3
    assert f"suggesting {n_tags} tags" in registry.version(version).description
    row = next(line for line in status_text(registry).splitlines() if line.startswith(f"v{version} "))
    assert row.split()[2:4] == ["plt", str(n_tags)]


def test_a_promotion_through_a_negative_min_delta_says_so_and_the_floor_line_names_its_figure():
    """`--min-delta -0.01` let a worse challenger through with `PROMOTED … 0.4559 vs champion v1's 0.4587` and
    nothing more; the floor was checked on in-vocabulary F1@3, printed beside the all-tags figure without a name."""
    gate = GateConfig(data=None, floor=0.4, min_delta=-0.01)
    base = {"f1_at_3": 0.5, "precision_at_1": 0.7, "recall_at_5": 0.8, "tag_coverage": 0.9, "f1_micro": 0.5}
    base |= {"f1_at_3_all": 0.4587, "precision_at_1_all": 0.6, "recall_at_5_all": 0.5, "vocabulary_coverage": 0.6}
    decision = judge(gate, {**base, "f1_at_3_all": 0.4559}, base, "1")
    assert decision.promote
    assert "worse than the champion by 0.0028, within the --min-delta -0.0100 allowed" in decision.reason
    assert "F1@3 0.5000 passes the floor 0.4000" in decision.reason
    better = judge(gate, {**base, "f1_at_3_all": 0.47}, base, "1")
    assert better.promote and "worse" not in better.reason and "F1@3 0.5000 passes the floor" in better.reason


def test_floor_mode_champion_never_puts_the_floor_above_the_champions_own_on_the_same_window():
    """A window of harder questions lowers both models: with `floor_mode="champion"` a challenger better than the
    champion there passes, one worse does not, a first champion needs the configured floor, and a champion above
    the configured floor does not raise it. The default ("fixed") keeps the configured floor."""
    hard = {"f1_at_3": 0.36, "precision_at_1": 0.5, "recall_at_5": 0.5, "tag_coverage": 0.9, "f1_micro": 0.4}
    hard |= {"f1_at_3_all": 0.30, "precision_at_1_all": 0.45, "recall_at_5_all": 0.4, "vocabulary_coverage": 0.6}
    champion = {**hard, "f1_at_3": 0.34, "f1_at_3_all": 0.28}
    fixed = judge(GateConfig(data=None, floor=0.45), hard, champion, "1")
    assert not fixed.promote and "F1@3 0.3600 is below the floor 0.4500" in fixed.reason
    gate = GateConfig(data=None, floor=0.45, floor_mode="champion")
    decision = judge(gate, hard, champion, "1")
    assert decision.promote, decision.reason
    assert "passes the floor 0.3400 (the champion's own on this window, under the configured 0.4500)" in decision.reason
    worse = judge(gate, {**hard, "f1_at_3": 0.33}, champion, "1")
    assert not worse.promote and "0.3300 is below the floor 0.3400 (the champion's own" in worse.reason
    assert not judge(gate, hard, None, None).promote
    above = judge(gate, {**hard, "f1_at_3": 0.46}, {**champion, "f1_at_3": 0.6}, "1")
    assert above.promote and "passes the floor 0.4500)" in above.reason
