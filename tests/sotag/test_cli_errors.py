"""An error ends the command on a line of its own: every progress bar is closed by the code that opened it (a
context manager), however its work ends; the CLI closes none of them itself."""

from __future__ import annotations

import sotag.cli
from sotag.cli import main


def _posts_xml_broken_after(rows: int) -> str:
    good = "".join(
        f'<row Id="{i}" PostTypeId="1" CreationDate="2018-01-0{i}T10:00:00" Title="question {i}" Body="" '
        'Tags="&lt;python&gt;"/>\n'
        for i in range(1, rows + 1)
    )
    return f"<posts>\n{good}<row Id=oops\n"


def test_a_file_that_breaks_mid_way_prints_its_error_on_its_own_line_after_the_reading_bar(tracking, tmp_path, capsys):
    """`sotag train` reads a Posts.xml with its bar drawn; the XML breaks after three questions."""
    path = tmp_path / "Posts.xml"
    path.write_text(_posts_xml_broken_after(3))
    assert main(["train", "--data", str(path), "--no-register"]) == 2
    err = capsys.readouterr().err
    assert "reading Posts.xml: " in err and " questions" in err, err  # the bar was drawn
    said = f"sotag train: error: {path}: malformed XML at line 5"
    line = next(line for line in err.splitlines() if said in line)
    assert line.startswith(said), repr(err)  # not glued onto the bar's line
    assert err.endswith("\n") and "Traceback" not in err


def test_the_cli_no_longer_closes_bars_itself():
    """tqdm's private list of open bars is no business of the CLI's (the helper that walked it is gone)."""
    assert not hasattr(sotag.cli, "end_progress_lines")
