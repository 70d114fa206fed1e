"""The one data-path resolver: --data, then $SOTAG_DATA, then the shared data, then the bundled sample."""

from __future__ import annotations

import pandas as pd
import pytest

from tagger.data import paths
from tagger.errors import DataError


@pytest.fixture()
def shared(tmp_path, monkeypatch):
    path = tmp_path / "shared" / "questions.parquet"
    monkeypatch.setattr(paths, "SHARED_DATA", path)
    return path


def test_order_explicit_then_environment_then_shared_then_sample(shared, tmp_path):
    own = tmp_path / "own.csv"
    own.write_text("Id\n")
    env = tmp_path / "env.parquet"
    env.write_text("x")
    assert paths.resolve_data_paths([str(own)], {"SOTAG_DATA": str(env)}) == (own,)
    assert paths.resolve_data_paths([str(own), str(env)], {}) == (own, env)  # several, in the order given
    assert paths.resolve_data_paths(str(own), {}) == (own,)
    assert paths.resolve_data_paths([""], {"SOTAG_DATA": str(env)}) == (env,)  # MLproject's empty default
    assert paths.resolve_data_paths([], {"SOTAG_DATA": str(env)}) == (env,)
    assert paths.resolve_data_paths([], {}) == (paths.BUNDLED_SAMPLE,)  # no shared data beside the checkout
    shared.parent.mkdir()
    shared.write_text("x")
    assert paths.resolve_data_paths(None, {}) == (shared,)


def test_a_missing_file_is_named_with_how_to_get_data(tmp_path):
    own = tmp_path / "own.csv"
    own.write_text("Id\n")
    with pytest.raises(DataError, match=r"no data file at .*nowhere\.parquet.*--data"):
        paths.resolve_data_paths([str(own), str(tmp_path / "nowhere.parquet")], {})


def test_the_bundled_sample_is_small_real_and_spans_the_default_split():
    size = paths.BUNDLED_SAMPLE.stat().st_size
    assert size < 8 * 1024 * 1024
    frame = pd.read_parquet(paths.BUNDLED_SAMPLE)
    assert len(frame) > 10_000 and frame["id"].is_unique
    assert not frame["source"].str.startswith(("carloszimm/", "pankaj90382/")).any()  # general-purpose only
    months = frame["creation_date"].dt.strftime("%Y-%m")
    assert months.min() == "2016-01" and months.max() == "2018-05" and months.nunique() == 29
    # The default split (2018-04-20) leaves thousands of questions on each side.
    assert (frame["creation_date"] >= "2018-04-20").sum() > 2_000
    assert (frame["creation_date"] < "2018-04-20").sum() > 7_000
