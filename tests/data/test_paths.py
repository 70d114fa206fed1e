"""The one data-path resolver: the data setting (--data, sotag.toml, $SOTAG_DATA), then the shared data beside the
state folder, then the sample shipped in the package."""

from __future__ import annotations

import pandas as pd
import pytest

from sotag.data import paths
from sotag.tagger.errors import DataError
from tests.support.settings import settings_from


def test_order_given_then_shared_beside_home_then_the_packaged_sample(tmp_path):
    home = tmp_path / "work"
    home.mkdir()
    own = tmp_path / "own.csv"
    own.write_text("Id\n")
    other = tmp_path / "other.parquet"
    other.write_text("x")
    assert paths.resolve_data_paths([str(own)], home) == (own,)
    assert paths.resolve_data_paths([str(own), str(other)], home) == (own, other)  # several, in the order given
    assert paths.resolve_data_paths(str(own), home) == (own,)
    assert paths.resolve_data_paths([""], home) == (paths.bundled_sample(),)  # MLproject's empty default
    assert paths.resolve_data_paths([], home) == (paths.bundled_sample(),)  # nothing beside home
    shared = tmp_path / "shared" / "data" / "stackoverflow" / "questions.parquet"
    shared.parent.mkdir(parents=True)
    shared.write_text("x")
    assert paths.resolve_data_paths(None, home) == (shared,)


def test_the_data_setting_comes_from_the_environment_the_file_or_the_flag(tmp_path):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    env = {"SOTAG_DATA": f"{first}{__import__('os').pathsep}{second}"}
    assert settings_from(env).data == (first, second)
    assert settings_from(env, data=(str(second),)).data == (second,)


def test_the_sample_is_package_data_not_a_path_off_the_checkout():
    sample = paths.bundled_sample()
    assert sample.is_file() and sample.parent.name == "data"
    import sotag.data

    assert sample.parent == __import__("pathlib").Path(sotag.data.__file__).parent


def test_a_missing_file_is_named_with_how_to_get_data(tmp_path):
    own = tmp_path / "own.csv"
    own.write_text("Id\n")
    with pytest.raises(DataError, match=r"no data file at .*nowhere\.parquet.*--data"):
        paths.resolve_data_paths([str(own), str(tmp_path / "nowhere.parquet")], tmp_path)


def test_the_bundled_sample_is_small_real_and_spans_the_default_split():
    size = paths.bundled_sample().stat().st_size
    assert size < 8 * 1024 * 1024
    frame = pd.read_parquet(paths.bundled_sample())
    assert len(frame) > 10_000 and frame["id"].is_unique
    assert not frame["source"].str.startswith(("carloszimm/", "pankaj90382/")).any()  # general-purpose only
    months = frame["creation_date"].dt.strftime("%Y-%m")
    assert months.min() == "2016-01" and months.max() == "2018-05" and months.nunique() == 29
    # The default split (2018-04-20) leaves thousands of questions on each side.
    assert (frame["creation_date"] >= "2018-04-20").sum() > 2_000
    assert (frame["creation_date"] < "2018-04-20").sum() > 7_000
