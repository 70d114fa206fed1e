"""Spark session settings: what an embedded session gets, and what the user's --conf overrides."""

from __future__ import annotations

from sotag.infra.spark import SparkSettings


def test_no_progress_turns_sparks_console_progress_bar_off():
    # `sotag score --engine spark --no-progress` printed Spark's own [Stage N:> ...] bars regardless.
    assert SparkSettings().merged_conf()["spark.ui.showConsoleProgress"] == "true"
    assert SparkSettings(progress=False).merged_conf()["spark.ui.showConsoleProgress"] == "false"


def test_the_users_conf_wins_over_every_default():
    conf = {"spark.ui.showConsoleProgress": "true", "spark.driver.host": "10.0.0.5"}
    merged = SparkSettings(progress=False, conf=conf).merged_conf()
    assert merged["spark.ui.showConsoleProgress"] == "true"
    assert merged["spark.driver.host"] == "10.0.0.5"


def test_an_embedded_session_stays_on_the_loopback_and_a_cluster_gets_none_of_that():
    assert SparkSettings(master="local[2]").merged_conf()["spark.driver.bindAddress"] == "127.0.0.1"
    assert "spark.driver.bindAddress" not in SparkSettings(master="spark://cluster:7077").merged_conf()
