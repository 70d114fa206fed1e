import numpy as np
import pytest
from sklearn.metrics import f1_score

from sotag.tagger.metrics import (
    all_tags_evaluation,
    all_tags_metrics,
    decide,
    evaluate,
    quality_all_line,
    quality_line,
    ranked_tags,
    ranking_metrics,
    top_k_indices,
    vocabulary_coverage,
)

SCORES = np.array([[0.9, 0.8, 0.1, 0.05], [0.2, 0.1, 0.7, 0.6], [0.5, 0.4, 0.3, 0.2]])
TRUTH = np.array([[1, 0, 1, 0], [0, 0, 1, 1], [0, 0, 0, 0]])


def test_top_k_indices_best_first():
    assert top_k_indices(SCORES, 2).tolist() == [[0, 1], [2, 3], [0, 1]]
    assert top_k_indices(SCORES, 10).shape == (3, 4)


def test_ranking_metrics_by_hand():
    m = ranking_metrics(SCORES, TRUTH, ks=(1, 3))
    # Row 3 has no true tag and is excluded. Row 1: top1 hit; top3 {0,1,2} has 2 hits of 2.
    # Row 2: top1 hit; top3 {2,3,0} has 2 hits of 2.
    assert m["precision_at_1"] == 1.0
    assert m["recall_at_1"] == 1.0  # denominator min(1, 2) = 1
    assert m["precision_at_3"] == pytest.approx(2 / 3)
    assert m["recall_at_3"] == 1.0
    assert m["f1_at_3"] == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))


def test_decide_applies_top_k_and_threshold():
    d = decide(SCORES, top_k=2, threshold=0.75)
    assert d.tolist() == [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_evaluate_matches_sklearn_and_counts_coverage():
    e = evaluate(SCORES, TRUTH, ["a", "b", "c", "d"], top_k=2, threshold=0.5)
    predicted = decide(SCORES[:2], 2, 0.5)
    assert e.metrics["f1_micro"] == pytest.approx(f1_score(TRUTH[:2], predicted, average="micro"))
    assert e.metrics["n_evaluated"] == 2
    assert e.metrics["tag_coverage"] == 1.0  # a, b predicted for row 1; c, d for row 2
    assert e.metrics["hamming_loss"] == pytest.approx(2 / 8)
    row = e.per_tag.set_index("tag").loc["b"]
    assert (row["support"], row["predicted"], row["precision"]) == (0, 1, 0.0)


def test_quality_line_format():
    m = {
        k: 0.5
        for k in (
            "precision_at_1",
            "precision_at_3",
            "recall_at_3",
            "precision_at_5",
            "recall_at_5",
            "f1_at_3",
            "f1_at_5",
            "tag_coverage",
        )
    }
    assert quality_line(m).startswith("quality: P@1=0.5000 P@3=0.5000 R@3=0.5000 P@5=")
    assert quality_line(m).endswith("coverage=0.5000")


def test_an_evaluation_set_without_a_vocabulary_tag_is_bad_input_not_a_crash():
    """Found with the StackSample field case: 8 questions, a split leaving one untagged evaluation question."""
    from sotag.tagger.errors import DataError
    from sotag.tagger.metrics import evaluate

    with pytest.raises(DataError, match="none of its 2 questions carries one of the 3 vocabulary tags"):
        evaluate(np.full((2, 3), 0.5), np.zeros((2, 3), dtype=int), ["a", "b", "c"], 2, 0.3)


# --- all-tags metrics ----------------------------------------------------------------------------------------------

SUGGESTED = [["python", "django", "flask", "sql", "css"], ["java", "spring"], ["c#", "linq", ".net", "wpf", "xaml"]]
ASKED = [["python", "flask"], ["kotlin", "android", "gradle"], ["c#"]]


def test_all_tags_metrics_by_hand():
    m = all_tags_metrics(SUGGESTED, ASKED)
    # Q1: hits at ranks 1 and 3, 2 tags. Q2: no hit (a question outside the vocabulary counts, with 0 hits),
    # its list is 2 long. Q3: hit at rank 1, 1 tag.
    assert m["precision_at_1_all"] == pytest.approx((1 + 0 + 1) / 3)
    assert m["recall_at_1_all"] == pytest.approx((1 + 0 + 1) / 3)
    assert m["precision_at_3_all"] == pytest.approx((2 / 3 + 0 + 1 / 3) / 3)
    assert m["recall_at_3_all"] == pytest.approx((2 / 2 + 0 + 1 / 1) / 3)  # denominators min(3, 2), min(3, 3), 1
    assert m["recall_at_5_all"] == pytest.approx((1 + 0 + 1) / 3)
    assert m["precision_at_5_all"] == pytest.approx((2 / 5 + 0 + 1 / 5) / 3)
    f1_q1 = 2 * (2 / 3) * 1 / (2 / 3 + 1)
    f1_q3 = 2 * (1 / 3) * 1 / (1 / 3 + 1)
    assert m["f1_at_3_all"] == pytest.approx((f1_q1 + 0 + f1_q3) / 3)
    assert m["n_all"] == 3


def test_all_tags_metrics_recall_denominator_is_capped_at_k():
    # Five asked tags, all five suggested: R@1 = R@3 = R@5 = 1 (denominator min(k, 5)).
    tags = ["a", "b", "c", "d", "e"]
    m = all_tags_metrics([tags], [tags])
    assert [m[f"recall_at_{k}_all"] for k in (1, 3, 5)] == [1.0, 1.0, 1.0]
    assert m["precision_at_5_all"] == 1.0


def test_all_tags_metrics_leaves_out_untagged_questions_and_checks_lengths():
    m = all_tags_metrics([["a"], ["b"]], [["a"], []])
    assert m["n_all"] == 1
    assert m["precision_at_1_all"] == 1.0
    with pytest.raises(ValueError, match="suggested: 1 lists for 2 questions"):
        all_tags_metrics([["a"]], [["a"], ["b"]])
    with pytest.raises(ValueError, match="no question has a tag"):
        all_tags_metrics([["a"]], [[]])


def test_all_tags_metrics_equal_in_vocabulary_metrics_when_every_tag_is_known():
    # Every true tag in the vocabulary and every question tagged: both families agree.
    rng = np.random.default_rng(3)
    scores = rng.random((40, 8))
    truth = (rng.random((40, 8)) < 0.3).astype(int)
    truth[truth.sum(axis=1) == 0, 0] = 1
    vocabulary = [f"t{i}" for i in range(8)]
    asked = [[vocabulary[j] for j in np.flatnonzero(row)] for row in truth]
    m = all_tags_metrics(ranked_tags(scores, vocabulary, 5), asked)
    expected = ranking_metrics(scores, truth)
    for key, value in expected.items():
        assert m[f"{key}_all"] == pytest.approx(value)


def test_vocabulary_coverage_counts_occurrences():
    # 6 occurrences, 4 of them (python twice, flask, c#) in the vocabulary.
    assert vocabulary_coverage(["python", "flask", "c#"], [["python", "flask"], ["kotlin", "python"], ["c#", "x"]]) == (
        pytest.approx(4 / 6)
    )
    assert vocabulary_coverage(["a"], [[]]) == 0.0


def test_quality_all_line_format():
    m = all_tags_evaluation(SUGGESTED, ASKED, ["python", "flask", "c#"])
    assert m["vocabulary_coverage"] == pytest.approx(3 / 6)
    assert quality_all_line(m) == (
        f"quality-all: P@1={2 / 3:.4f} R@3=0.6667 R@5=0.6667 F1@3={m['f1_at_3_all']:.4f} coverage=0.5000"
    )
