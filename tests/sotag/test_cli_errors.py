"""An error ends the command on a line of its own: a progress bar the failing code left open is closed first."""

from __future__ import annotations

import pytest
from tqdm import tqdm

from sotag.cli import main
from sotag.tagger.errors import DataError


def _fails_mid_way(error: BaseException):
    def run_score(config, tracking):
        # A bar closed after the loop, as sotag score's was: the error's traceback keeps the frame, and the bar, open.
        bar = tqdm(total=4, desc="score", disable=False)
        for row in range(4):
            if row == 2:
                raise error
            bar.update(1)
        bar.close()

    return run_score


@pytest.mark.parametrize(
    ("error", "code", "said"),
    [
        (DataError("q.csv: malformed CSV at line 3: 6 fields where the header has 5"), 2, "sotag score: error: q.csv"),
        (OSError(28, "No space left on device"), 1, "sotag score: failed: file system or network"),
    ],
)
def test_an_error_met_mid_way_starts_on_its_own_line_after_the_progress_bar(
    tmp_path, capsys, monkeypatch, error, code, said
):
    import sotag.serving.batch

    monkeypatch.setattr(sotag.serving.batch, "run_score", _fails_mid_way(error))
    source = tmp_path / "q.csv"
    source.write_text("Id,CreationDate,Title\n1,2018-01-01,a\n")
    assert main(["score", str(source), "--out", str(tmp_path / "out"), "--engine", "local"]) == code
    err = capsys.readouterr().err
    assert "score:" in err and "2/4" in err, err  # the bar was drawn, and got as far as the error
    line = next(line for line in err.splitlines() if said in line)
    assert line.startswith(said), repr(err)  # not glued onto the bar's line
    assert err.endswith("\n") and not tqdm._instances
