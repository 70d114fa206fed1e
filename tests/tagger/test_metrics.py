import numpy as np
import pytest
from sklearn.metrics import f1_score

from tagger.metrics import decide, evaluate, quality_line, ranking_metrics, top_k_indices

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
    from tagger.errors import DataError
    from tagger.metrics import evaluate

    with pytest.raises(DataError, match="none of its 2 questions carries one of the 3 vocabulary tags"):
        evaluate(np.full((2, 3), 0.5), np.zeros((2, 3), dtype=int), ["a", "b", "c"], 2, 0.3)
