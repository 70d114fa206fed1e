"""The plt kind's fused scoring path gives the reference path's answers exactly, on every batch size.

The reference is the step-by-step path as it was before the fused one: the cleaning by the original regexes (copied
here), the compiled vectorizer's per-text dict lookup (`_loop_counts`), `HeadAndTree.scores` (scipy products),
the mentions by str tokens, every column calibrated, `top_k_indices` on the whole matrix. Each shortcut is also
held to the part it replaces (cleaning, counting, label-tree rows, mention matching, calibrated top-k).
"""

from __future__ import annotations

import html
import io
import pickle
import random
import re

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from sotag.data.paths import bundled_sample
from sotag.tagger import text as text_module
from sotag.tagger.calibration import Calibration
from sotag.tagger.kinds.base import ModelKind
from sotag.tagger.label_tree import LabelTree, RowScorer, TreeSettings, tag_indicator
from sotag.tagger.mentions import ByteMentions, TagMentions, byte_tokens, tokens
from sotag.tagger.metrics import top_k_indices
from sotag.tagger.model import Tagger
from sotag.tagger.text import PREPROCESSING_VERSIONS, clean_html, clean_question, question_and_title

# -- the cleaning as it was: every body through the case-insensitive regex, every text through separate_scripts --
_PRE = re.compile(r"<pre[^>]*>(.*?)</pre>", re.S | re.I)


def reference_clean_html(body: str, keep_code: bool = True) -> str:
    if not body:
        return ""
    if keep_code:
        body = _PRE.sub(lambda m: " " + text_module._code_tokens(m.group(1)) + " ", body)
    else:
        body = _PRE.sub(" ", body)
    return text_module.squash_whitespace(html.unescape(text_module._TAG.sub(" ", body)))


def reference_separate(text: str) -> str:
    return text_module._NO_SPACE_RUN.sub(lambda m: f" {m.group(0)} ", text.translate(text_module._FULLWIDTH))


def reference_clean_question(title: str, body: str, keep_code: bool, title_repeat: int, version: str) -> str:
    title_text = html.unescape(title or "")
    body_text = reference_clean_html(body or "", keep_code)
    if version != "1":
        title_text = reference_separate(title_text)
        body_text = text_module.squash_whitespace(reference_separate(body_text))
    title_text = text_module.squash_whitespace(title_text)
    return ((title_text + " . ") * max(title_repeat, 1) + body_text).lower()


def reference_scores(tagger: Tagger, titles: list[str], bodies: list[str]) -> np.ndarray:
    """The plt model's raw scores step by step, by the code paths the fused scorer replaced."""
    model, options = tagger.model, tagger.model.options
    version = model.preprocessing_version
    texts = [
        reference_clean_question(t, b, options.keep_code, options.title_repeat, version)
        for t, b in zip(titles, bodies, strict=True)
    ]
    ptr, idx, counts = model.features._loop_counts(texts)
    scores = model.estimator.scores(model.features.to_csr(model.features.weigh(ptr, idx, counts)))
    mentions = model.estimator.mentions
    if mentions is None:
        return scores
    prefixes = [reference_clean_question(t, "", True, 1, version) for t in titles]
    repeat = max(options.title_repeat, 1)
    cleaned_titles = [p[:-3] for p in prefixes]
    cleaned_bodies = [text[len(p) * repeat :] for p, text in zip(prefixes, texts, strict=True)]
    return mentions.raise_scores(scores, cleaned_titles, cleaned_bodies)


def reference_suggest(tagger: Tagger, titles: list[str], bodies: list[str], top_k: int, threshold: float):
    raw = reference_scores(tagger, titles, bodies)
    calibration = tagger.config.calibration
    scores = raw if calibration is None else calibration.apply(raw)
    min_tags = min(tagger.config.min_tags, top_k)
    return ModelKind.suggest(tagger.model, scores, tagger.vocabulary, top_k, threshold, min_tags)


# -- a default-kind model (calibrated) and a few hundred questions, with HTML, code, entities and other scripts ----
EXTRA = [
    (
        "PythonでJSONファイルを読み込む方法",
        "<p>ＪＳＯＮ を pandas で</p><PRE class='x'><code>json.load(f)</code></PRE>",
    ),
    ("Ruby on Rails &amp; SQL Server", "<p>deploying ruby on rails with sql server</p><pre>unclosed <b>block"),
    ("c# linq group by", "<Pre><code>var x = list.GroupBy(y =&gt; y.Id);</code></pRe> and <prefix>text</prefix>"),
    ("", ""),
    ("naïve café in java", "<p>ünïcode ßtraße İstanbul ΣΑΣ</p><pre>a</pre><pre>b</pre><pre"),
    ("node.js express -- app", "<pre></pre><pre><code></code></pre> ... --- .net"),
]


@pytest.fixture(scope="module")
def trained(questions_parquet):
    from sotag.training.config import TrainConfig
    from sotag.training.fit import fit_and_evaluate, prepare

    config = TrainConfig(
        data=questions_parquet, split_date="2018-03-01", top_n_tags=3, min_tag_questions=5, max_features=2000, min_df=1
    ).for_vectorizer("plt")
    prepared = prepare(config)
    return prepared, fit_and_evaluate(config, prepared)


@pytest.fixture(scope="module")
def asked(trained) -> tuple[list[str], list[str]]:
    """The synthetic questions, 300 real ones (the bundled sample: HTML, code, entities), and EXTRA."""
    prepared, _ = trained
    real = pd.read_parquet(bundled_sample(), columns=["title", "body"]).sample(300, random_state=0)
    frame = pd.concat([prepared.split.evaluation, prepared.split.train, real])
    titles, bodies = frame["title"].tolist(), frame["body"].tolist()
    rng = random.Random(3)
    for i in range(0, len(titles), 7):  # the tags' names where the mentions look for them, in both cases
        tag = rng.choice(prepared.vocabulary)
        titles[i] = f"{titles[i]} {tag.replace('-', ' ') if i % 2 else tag.upper()}"
        bodies[i] = f"{bodies[i]}<p>see {tag}</p>"
    titles += [t for t, _ in EXTRA]
    bodies += [b for _, b in EXTRA]
    return titles, bodies


def test_the_model_is_the_default_kind_calibrated_and_served_by_the_fused_scorer(trained, asked):
    _, result = trained
    tagger = result.tagger
    assert tagger.config.kind == "plt" and tagger.config.calibration is not None
    assert tagger.model.fused_scorer() is not None and tagger.estimator.mentions is not None
    assert len(asked[0]) >= 600


@pytest.mark.parametrize("batch", [1, 2, 8, 16, 64, 200, 1000])
def test_suggestions_equal_the_reference_path_on_every_batch_size(trained, asked, batch):
    """Batch by batch (one question's head logits come from a BLAS product, a batch's from scipy's: the reference's
    answers depend on the batch in the last float32 bit, and the fused path's are the reference's)."""
    tagger = trained[1].tagger
    titles, bodies = asked
    step = 1 if batch > 16 else 5  # a few questions at a time: every fifth (synthetic and real), and the extras
    picked = sorted({*range(0, len(titles), step), *range(len(titles) - len(EXTRA), len(titles))})
    batches = [(lo, lo + batch) for lo in range(0, len(picked), batch)]
    titles, bodies = [titles[i] for i in picked], [bodies[i] for i in picked]
    for top_k, threshold in ((tagger.config.top_k, tagger.config.threshold), (3, 0.0), (50, 0.0)):
        got, expected = [], []
        for lo, hi in batches:
            got += tagger.suggest(titles[lo:hi], bodies[lo:hi], top_k, threshold)
            expected += reference_suggest(tagger, titles[lo:hi], bodies[lo:hi], top_k, threshold)
        assert [s.tags for s in got] == [s.tags for s in expected]
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g.scores, e.scores, rtol=0, atol=1e-9)
    for lo, hi in batches[:40]:
        raw = tagger.model.scores(titles[lo:hi], bodies[lo:hi])
        np.testing.assert_allclose(raw, reference_scores(tagger, titles[lo:hi], bodies[lo:hi]), rtol=0, atol=1e-9)


def test_an_empty_batch_scores_no_row(trained):
    tagger = trained[1].tagger
    assert tagger.model.scores([], []).shape == (0, len(tagger.vocabulary)) and tagger.suggest([], []) == []


def test_a_saved_model_loads_and_answers_the_same_and_scoring_adds_nothing_to_its_artifacts(trained, asked, tmp_path):
    _, result = trained
    titles, bodies = asked
    directory = result.tagger.save(tmp_path / "model", result.mlb)
    unpickled = joblib.load(directory / "estimator.joblib")
    before = pickle.dumps(unpickled)
    loaded = Tagger.from_directory(directory)
    loaded.model.estimator = unpickled  # scored through the fused scorer derived from it
    top_k, threshold = loaded.config.top_k, loaded.config.threshold
    assert loaded.suggest(titles, bodies) == reference_suggest(result.tagger, titles, bodies, top_k, threshold)
    assert loaded.model.fused_scorer().estimator is unpickled
    assert pickle.dumps(unpickled) == before  # nothing derived was left on what estimator.joblib holds
    for name in ("RowScorer", "ByteMentions", "FusedScorer", "_knots", "token_ids"):
        assert name.encode() not in before


def test_a_model_whose_estimator_is_replaced_scores_by_the_new_one(trained, asked):
    model = trained[1].tagger.model
    titles, bodies = asked[0][:5], asked[1][:5]
    old = model.estimator
    buffer = io.BytesIO()
    joblib.dump(old, buffer)
    buffer.seek(0)
    model.estimator = joblib.load(buffer)
    try:
        model.estimator.mentions = None
        assert model.fused_scorer().mentions is None
        np.testing.assert_array_equal(model.scores(titles, bodies), model.reference_scores(titles, bodies))
    finally:
        model.estimator = old


# -- the shortcuts, each against what it replaces ---------------------------------------------------------------
def _html_bodies(n: int, seed: int, ascii_only: bool = False) -> list[str]:
    rng = random.Random(seed)
    pieces = [
        "<pre>",
        "<PRE>",
        "<pre class='a'>",
        "</pre>",
        "</PRE>",
        "<pre",
        ">",
        "<p>",
        "</p>",
        "<code>",
        "x = 1",
        "&amp;",
        "&lt;",
        "a_b.c",
        " ",
        "\n",
        "<prefix>",
        "--",
        ".",
        "pre",
        "</pr",
        "e>",
        "<Pre>",
        "</pRE>",
    ]
    pieces += [] if ascii_only else ["é", "日本", "ｆｕｌｌ", "İ"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 25))) for _ in range(n)]


def test_the_cleaning_equals_the_regexes_it_replaced(asked):
    titles, bodies = asked
    for body in [*bodies, *_html_bodies(3000, seed=1), *_html_bodies(3000, seed=4, ascii_only=True)]:
        for keep_code in (True, False):
            assert clean_html(body, keep_code) == reference_clean_html(body, keep_code), body
    for title, body in zip([*titles, *_html_bodies(500, 2)], [*bodies, *_html_bodies(500, 3)], strict=False):
        for version in PREPROCESSING_VERSIONS:
            expected = reference_clean_question(title, body, True, 2, version)
            assert clean_question(title, body, True, 2, version) == expected
            assert question_and_title(title, body, True, 2, version) == (
                expected,
                reference_clean_question(title, "", True, 1, version),
            )


def test_the_dict_lookup_counts_equal_the_per_text_loop(trained, asked):
    features = trained[1].tagger.model.features
    texts = [*trained[1].tagger.model.texts(*asked), "", "zzzz qqqq", "c# c# c#"]
    for lo, size in ((0, 1), (1, 3), (10, 15), (0, len(texts))):
        batch = texts[lo : lo + size]
        expected = features._loop_counts(batch)
        for got in (features._dict_counts([features.tokens(t) for t in batch]), features._batch_counts(batch)):
            assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


@pytest.mark.parametrize("settings", [dict(max_leaves=4, prune=0.0, loss="log", C=10.0), dict(max_leaves=6, n_trees=3)])
def test_row_scorer_equals_label_tree_scores_bit_for_bit(settings):
    rng = np.random.default_rng(0)
    x = sp.random(700, 90, density=0.08, format="csr", dtype=np.float32, random_state=1)
    x = sp.vstack([x[:5], sp.csr_matrix((1, 90), dtype=np.float32), x[6:]], format="csr")  # a row with no feature
    tags = [sorted(set(rng.integers(0, 30, size=2).tolist())) for _ in range(700)]
    tree = LabelTree(TreeSettings(threads=1, **settings)).fit(x, tag_indicator(tags, 30))
    rows = RowScorer(tree)
    assert rows.direct  # scipy's kernels, called directly
    for lo, hi in ((0, 0), (0, 1), (5, 6), (3, 12), (0, 700)):
        chunk = x[lo:hi]
        np.testing.assert_array_equal(rows.scores(chunk.data, chunk.indices, chunk.indptr), tree.scores(chunk))


def test_row_scorer_takes_scipy_s_public_product_where_its_kernels_do_not_answer(monkeypatch):
    import sotag.tagger.label_tree as label_tree

    x = sp.random(200, 40, density=0.1, format="csr", dtype=np.float32, random_state=2)
    tree = LabelTree(TreeSettings(threads=1, max_leaves=4)).fit(x, tag_indicator([[i % 10] for i in range(200)], 10))
    monkeypatch.setattr(label_tree, "_sparsetools", type("Changed", (), {"csr_matmat": None})())
    rows = RowScorer(tree)
    assert not rows.direct
    np.testing.assert_array_equal(rows.scores(x.data, x.indices, x.indptr), tree.scores(x))


def test_byte_mentions_name_what_the_mentions_name():
    vocabulary = [
        "python",
        "ruby-on-rails",
        "c#",
        "python-3.x",
        "java",
        "node.js",
        "sql-server",
        "日本語",
        "naïve-bayes",
    ]
    mentions = TagMentions.for_vocabulary(vocabulary)
    matcher = ByteMentions(mentions)
    texts = [
        "deploying ruby on rails with sql server 2019",
        "ruby-on-rails routes in c#",
        "naïve bayes in 日本語",
        "upgrading from python 3.x to java.",
        "",
        "ruby on",
        "on rails ruby",
        "sql server sql-server node.js",
    ]
    for text in texts + [t.lower() for t, _ in EXTRA]:
        assert byte_tokens(text) == [t.encode() for t in tokens(text)]
        assert matcher.columns(byte_tokens(text)) == sorted(mentions.columns(text)), text


def test_calibrated_top_k_equals_ranking_every_calibrated_column():
    rng = np.random.default_rng(0)
    calibration = Calibration(x=(0.0, 0.1, 0.3, 0.3000001, 0.7, 1.0), y=(0.0, 0.2, 0.2, 0.5, 0.5, 0.95), pairs=10)
    raw = rng.random((300, 40)) ** 3
    raw[::7, 3] = raw[::7, 4] = raw[::7].max(axis=1)  # ties at the top
    raw[::11] = np.round(raw[::11], 1)  # many ties, flat stretches of the map
    raw[5, 9] = np.nan
    raw[6] = 0.25  # every score equal
    for k in (1, 2, 5, 10, 39, 40, 60):
        for rows in (raw, raw[:1], raw[5:6], raw[6:7], raw[11:12], raw[:0]):
            scores = calibration.apply(rows)
            ranked, top = calibration.top_k(rows, k)
            np.testing.assert_array_equal(ranked, top_k_indices(scores, k))
            np.testing.assert_array_equal(top, np.take_along_axis(scores, ranked, axis=1))


def test_a_model_of_an_older_preprocessing_version_scores_as_the_reference(trained, asked):
    model = trained[1].tagger.model
    titles, bodies = asked[0][-40:], asked[1][-40:]
    model.use_preprocessing("1")
    try:
        np.testing.assert_array_equal(model.scores(titles, bodies), reference_scores(trained[1].tagger, titles, bodies))
    finally:
        model.use_preprocessing(trained[1].tagger.config.preprocessing_version)
