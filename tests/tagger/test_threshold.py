import numpy as np
import pytest

from sotag.tagger.threshold import choose_threshold, served_table

VOCAB = ["a", "b", "c", "d"]


def test_served_f1_counts_only_what_is_served_against_all_the_askers_tags():
    scores = np.array([[0.9, 0.4, 0.1, 0.0], [0.2, 0.1, 0.05, 0.0]])
    truth = [["a", "zzz"], ["c"]]  # "zzz": outside the vocabulary, still the asker's
    table = served_table(scores, VOCAB, truth, top_k=2, thresholds=[0.0, 0.3, 0.5, 0.95])
    rows = table.set_index("threshold")
    # t=0.5: q0 served [a] -> P 1, R 1/2 -> F1 2/3; q1 served nothing -> 0
    assert rows.loc[0.5, "served_f1"] == pytest.approx((2 / 3 + 0) / 2)
    assert rows.loc[0.5, "no_tag_share"] == 0.5 and rows.loc[0.5, "tags_per_question"] == 0.5
    # t=0: q0 served [a, b] -> P 1/2 R 1/2 -> 1/2; q1 served [a, b] (c is third) -> 0
    assert rows.loc[0.0, "served_f1"] == pytest.approx(0.25)
    assert rows.loc[0.95, "no_tag_share"] == 1.0 and rows.loc[0.95, "served_f1"] == 0.0


def test_the_chosen_threshold_is_the_best_and_the_lowest_of_ties():
    rng = np.random.default_rng(0)
    truth = [[VOCAB[i % 4]] for i in range(200)]
    scores = rng.random((200, 4)) * 0.3
    for i in range(200):
        scores[i, i % 4] = 0.35 + 0.6 * rng.random()  # the right tag scores above 0.35, the others below 0.3
    choice = choose_threshold(scores, VOCAB, truth, top_k=3)
    assert 0.3 <= choice.threshold <= 0.35 and choice.served_f1 == pytest.approx(1.0)
    assert choice.no_tag_share == 0.0
    assert choice.served_f1 == choice.table["served_f1"].max()


def test_mismatched_rows_and_no_tags_are_refused():
    with pytest.raises(ValueError, match="rows for"):
        served_table(np.zeros((2, 4)), VOCAB, [["a"]], 2)
    with pytest.raises(ValueError, match="no question has a tag"):
        served_table(np.zeros((1, 4)), VOCAB, [[]], 2)
