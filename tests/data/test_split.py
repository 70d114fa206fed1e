import pandas as pd
import pytest

from sotag.data import filter_sources, time_split
from sotag.tagger.errors import DataError
from sotag.tagger.vocabulary import restrict_tags, tag_vocabulary


def test_time_split_is_by_date(questions):
    split = time_split(questions, "2018-01-01")
    assert split.train["creation_date"].max() < pd.Timestamp("2018-01-01")
    assert split.evaluation["creation_date"].min() >= pd.Timestamp("2018-01-01")
    assert len(split.train) + len(split.evaluation) == len(questions)


def test_time_split_eval_end_and_empty_side(questions):
    split = time_split(questions, "2018-01-01", eval_end="2018-02-01")
    assert split.evaluation["creation_date"].max() < pd.Timestamp("2018-02-01")
    with pytest.raises(DataError, match="no evaluation rows"):
        time_split(questions, "2030-01-01")


def test_a_split_date_outside_the_data_names_the_option_and_a_date_that_works(questions):
    """An export of recent questions under the default split date: the error says which option to set, and to
    what; that date splits."""
    with pytest.raises(DataError, match=r"--split-date 2000-01-01: leaves no training rows") as refused:
        time_split(questions, "2000-01-01")
    suggested = str(refused.value).split("e.g. --split-date ")[1].split()[0]
    split = time_split(questions, suggested)
    assert 0.1 < len(split.evaluation) / len(questions) < 0.3
    with pytest.raises(DataError, match=r"--eval-start 2000-01-01: .* e\.g\. --eval-start "):
        time_split(questions, "2000-01-01", flag="--eval-start")


def test_vocabulary_top_n_with_reproducible_ties():
    tags = pd.Series([["b", "a"], ["a"], ["c", "b"], ["d"]])
    assert tag_vocabulary(tags, 2) == ["a", "b"]
    assert tag_vocabulary(tags, 10) == ["a", "b", "c", "d"]
    assert restrict_tags(tags, ["a", "c"]) == [["a"], ["a"], ["c"], []]


def test_filter_sources_drops_prefixes():
    frame = pd.DataFrame({"source": ["carloszimm/so-mining-msr22:x", "glouwa/a", "pankaj90382/END-1.0:y"]})
    from sotag.data.split import TOPIC_SPECIFIC_SOURCES

    assert filter_sources(frame, TOPIC_SPECIFIC_SOURCES)["source"].tolist() == ["glouwa/a"]
    assert len(filter_sources(frame, ())) == 3
