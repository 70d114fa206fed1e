"""The label-tree kind (plt) end to end: train, save, load, serve through the pyfunc, explain, pickle."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import joblib
import numpy as np
import pandas as pd
import pytest

from sotag.tagger.explain import explain
from sotag.tagger.kinds.plt import TREES, HeadAndTree, TreeKind
from sotag.tagger.model import Tagger
from sotag.tagger.pyfunc import MODEL_DIR_KEY, TaggerPyfunc


@pytest.fixture(scope="module")
def trained(questions_parquet):
    from sotag.training.config import TrainConfig
    from sotag.training.fit import fit_and_evaluate, prepare

    config = TrainConfig(
        data=questions_parquet,
        split_date="2018-03-01",
        top_n_tags=3,
        min_tag_questions=5,
        max_features=2000,
        min_df=1,
        C=10.0,
        threshold=0.1,
        register=False,
    ).for_vectorizer("plt")
    prepared = prepare(config)
    return config, prepared, fit_and_evaluate(config, prepared)


def test_the_vocabulary_is_the_head_then_every_tag_with_enough_questions(trained):
    _, prepared, result = trained
    counts = pd.Series([t for row in prepared.split.train["tags"] for t in set(row)]).value_counts()
    head = counts.sort_values(ascending=False).index[:3].tolist()
    assert prepared.vocabulary[:3] == sorted(head, key=lambda t: (-counts[t], t))
    assert set(prepared.vocabulary) == set(counts[counts >= 5].index)
    assert len(prepared.vocabulary) > 3  # more than the head: the tree covers the rest
    assert result.tagger.config.kind == "plt" and result.tagger.config.vocabulary == prepared.vocabulary
    assert result.evaluation.metrics["precision_at_1"] > 0.7  # titles name their topic


def test_head_tags_combine_head_and_trees_and_the_rest_are_the_trees(trained):
    _, _, result = trained
    model = result.tagger.model
    assert isinstance(model, TreeKind) and isinstance(model.estimator, HeadAndTree)
    estimator = model.estimator
    assert estimator.combine == "geometric" and estimator.tree.settings.n_trees == TREES == 2
    assert estimator.tree.settings.loss == "squared_hinge" and estimator.tree.leaves.shape[0] == 2
    features = model.features.transform(model.texts(["docker compose volume mount"], [""]))
    scores = estimator.scores(features)
    trees = estimator.tree.scores(features)
    np.testing.assert_allclose(scores[:, :3], np.sqrt(estimator.head.predict_proba(features) * trees[:, :3]))
    np.testing.assert_allclose(scores[:, 3:], trees[:, 3:])
    np.testing.assert_allclose(trees, estimator.tree.brute_force_scores(features), rtol=1e-5)


def test_a_model_saved_before_combine_existed_still_replaces_the_head_columns(trained):
    """An estimator pickled by the first plt (no `combine` field) must score as it did: head columns = head."""
    _, _, result = trained
    estimator = result.tagger.model.estimator
    old = HeadAndTree(estimator.head, estimator.tree, combine="geometric")
    del old.__dict__["combine"]  # what an older pickle holds: the field's class default shows
    buffer = io.BytesIO()
    joblib.dump(old, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    features = result.tagger.model.features.transform(result.tagger.model.texts(["docker compose volume"], [""]))
    assert loaded.combine == "replace"
    np.testing.assert_allclose(loaded.scores(features)[:, :3], estimator.head.predict_proba(features))
    with pytest.raises(ValueError, match="combine: 'mean'"):
        HeadAndTree(estimator.head, estimator.tree, combine="mean")


def test_saved_loaded_served_and_pickled_identically(trained, tmp_path):
    _, _, result = trained
    directory = result.tagger.save(tmp_path / "model", result.mlb)
    saved = json.loads((directory / "config.json").read_text())
    assert saved["kind"] == "plt" and saved["options"]["head_tags"] == 3
    assert saved["options"]["min_tag_questions"] == 5
    loaded = Tagger.from_directory(directory)
    titles = ["docker compose volume mount", "pandas dataframe groupby in python", "flexbox layout margin"]
    bodies = ["", "", ""]
    np.testing.assert_array_equal(loaded.scores(titles, bodies), result.tagger.scores(titles, bodies))

    buffer = io.BytesIO()
    joblib.dump(loaded.model.estimator, buffer)
    buffer.seek(0)
    features = loaded.model.features.transform(loaded.model.texts(titles, bodies))
    np.testing.assert_array_equal(joblib.load(buffer).scores(features), loaded.model.estimator.scores(features))

    pyfunc = TaggerPyfunc()
    pyfunc.load_context(SimpleNamespace(artifacts={MODEL_DIR_KEY: str(directory)}))
    answers = pyfunc.predict(None, pd.DataFrame({"title": titles}), {"top_k": 2, "threshold": 0.0})
    assert answers[0]["tags"][0] == "docker"
    expected = loaded.suggest(titles, bodies, 2, 0.0)
    assert answers == [{"tags": s.tags, "scores": s.scores} for s in expected]


def test_head_tags_are_broken_down_and_tree_tags_say_why_not(trained):
    _, prepared, result = trained
    head_tag, tree_tag = prepared.vocabulary[0], prepared.vocabulary[-1]
    [head, tree] = explain(result.tagger, f"{head_tag} question", "", [head_tag, tree_tag])
    assert head.terms and "geometric mean of this logit's probability" in head.note
    # The title names the head tag, so the score it ranks by is the combined one raised by the mention.
    combined = float(head.note.split("raised the score from ")[1].split(" ")[0])
    trees = float(head.note.split("label trees' score (")[1].split(")")[0])
    assert combined == pytest.approx(np.sqrt(1 / (1 + np.exp(-head.logit)) * trees), rel=1e-3)
    assert head.score > combined
    assert head.logit == pytest.approx(head.intercept + sum(t.contribution for t in head.terms) + head.other_terms)
    assert not tree.terms and "label-tree tag" in tree.note and "names the tag" not in tree.note
    assert 0.0 <= tree.score <= 1.0


def test_tags_the_question_names_are_raised_and_only_those(trained):
    _, prepared, result = trained
    model = result.tagger.model
    mentions = model.estimator.mentions
    assert mentions is not None and mentions.n_tags == len(prepared.vocabulary)
    assert ((mentions.title_precision > 0) & (mentions.title_precision < 1)).all()
    tree_tag = prepared.vocabulary[-1]
    titles = [f"a question about {tree_tag}", "a question about nothing in particular"]
    bodies = ["", f"<p>see {tree_tag}</p>"]
    plain = model.estimator.scores(model.features.transform(model.texts(titles, bodies)))
    raised = model.scores(titles, bodies)
    column = prepared.vocabulary.index(tree_tag)
    named = np.zeros_like(plain, dtype=bool)
    named[:, column] = True
    assert (raised[named] > plain[named]).all()
    np.testing.assert_array_equal(raised[~named], plain[~named])
    title_share = mentions.title_weight * mentions.title_precision[column]
    assert raised[0, column] == pytest.approx(1 - (1 - plain[0, column]) * (1 - title_share))
    assert result.record.params["mention_title_weight"] == mentions.title_weight


def test_a_model_saved_before_mentions_existed_scores_as_it_did(trained):
    _, _, result = trained
    model = result.tagger.model
    old = HeadAndTree(model.estimator.head, model.estimator.tree, combine="geometric", mentions=None)
    del old.__dict__["mentions"]  # what an older pickle holds: the field's class default shows
    buffer = io.BytesIO()
    joblib.dump(old, buffer)
    buffer.seek(0)
    loaded = TreeKind(model.vectorizer, joblib.load(buffer), model.options)
    assert loaded.estimator.mentions is None
    titles, bodies = [f"{result.tagger.config.vocabulary[-1]} question"], [""]
    expected = loaded.estimator.scores(loaded.features.transform(loaded.texts(titles, bodies)))
    np.testing.assert_array_equal(loaded.scores(titles, bodies), expected)
