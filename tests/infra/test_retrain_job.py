"""sotag.infra.retrain_job: the one way a component starts `sotag retrain` (issue 30 part 2)."""

from __future__ import annotations

from sotag.infra.retrain_job import RetrainProcess, RetrainResult
from sotag.settings import load_settings


def test_the_outcome_is_the_exit_code_and_the_commands_own_last_line():
    failed = RetrainResult(1, "training...\nsotag retrain: failed: tracking server: refused\nTraceback tail\n")
    assert (failed.status, failed.last_line) == ("failed", "sotag retrain: failed: tracking server: refused")
    assert RetrainResult(0, "promote: PROMOTED v3\n").status == "promoted"
    assert RetrainResult(3, "").status == "kept" and RetrainResult(3, "").last_line == ""
    assert RetrainResult(2, "a\n\nb\n").last_line == "b"


def test_a_bad_setting_in_the_child_is_its_exit_2_with_its_line(tmp_path, monkeypatch):
    """A real child process: the parent's settings reach it (here a data path that does not exist, given to the
    parent as a flag), and its own one-line verdict comes back."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"data": (str(tmp_path / "nowhere.parquet"),)}, cwd=tmp_path).settings
    process = RetrainProcess(settings)
    result = process.wait()
    assert result.exit_code == 2 and result.status == "failed"
    assert result.last_line.startswith("sotag retrain: error:") and "nowhere.parquet" in result.last_line
