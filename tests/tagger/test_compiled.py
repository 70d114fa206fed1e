import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from sotag.tagger.compiled import CompiledVectorizer, compile_vectorizer
from sotag.tagger.vectorizers import TOKEN_PATTERN, count_vectorizer, tfidf_vectorizer

DOCS = [
    "how to merge two pandas dataframes . how to merge two pandas dataframes . df.merge(a, b) in python",
    "c# linq group by . c# linq group by . var x = list.groupby(y => y.id);",
    "",
    "node.js express app crashes . node.js express app crashes . npm start fails with err_require_esm",
    "unknownword only",
]


@pytest.mark.parametrize("kind", ["tfidf", "bow"])
def test_compiled_transform_equals_sklearn(kind):
    vec = words_vectorizer(kind, ngram_max=2).fit(DOCS * 3)
    compiled = CompiledVectorizer(vec)
    expected = vec.transform(DOCS).toarray()
    got = compiled.transform(DOCS)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.toarray(), expected, atol=1e-6, rtol=0)


def words_vectorizer(kind: str, ngram_max: int):
    """A fresh bag-of-words or TF-IDF vectorizer, as the linear kinds build them."""
    build = {"bow": count_vectorizer, "tfidf": tfidf_vectorizer}[kind]
    return build(max_features=None, ngram_max=ngram_max, min_df=1)


def test_compiled_plain_tfidf_without_sublinear_and_unigrams():
    vec = TfidfVectorizer(token_pattern=TOKEN_PATTERN).fit(DOCS)
    np.testing.assert_allclose(
        CompiledVectorizer(vec).transform(DOCS).toarray(), vec.transform(DOCS).toarray(), atol=1e-6
    )


def test_unsupported_vectorizers_fall_back():
    vec = CountVectorizer(analyzer="char").fit(DOCS)
    assert compile_vectorizer(vec) is vec


def test_trailing_rows_without_known_tokens():
    """Empty rows at the end of a batch (all words unknown) once broke the l2 normalisation."""
    vec = tfidf_vectorizer(max_features=None, ngram_max=2, min_df=1).fit(DOCS * 3)
    batch = [DOCS[0], "zzz qqq", ""]
    got = CompiledVectorizer(vec).transform(batch).toarray()
    np.testing.assert_allclose(got, vec.transform(batch).toarray(), atol=1e-6)
    assert not got[1:].any()


@pytest.mark.parametrize("kind", ["tfidf", "bow"])
@pytest.mark.parametrize("ngram_max", [1, 2, 3])
def test_vectorised_and_per_text_lookups_agree_with_sklearn(kind, ngram_max):
    """Batches of 16 or more take the vectorised path; fewer the per-text one; both equal sklearn."""
    vec = words_vectorizer(kind, ngram_max=ngram_max).fit(DOCS * 3)
    compiled = CompiledVectorizer(vec)
    batch = ([*DOCS, "zzz", "c# c# linq linq c#", "merge . merge"]) * 3
    expected = vec.transform(batch).toarray()
    np.testing.assert_allclose(compiled.transform(batch).toarray(), expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(compiled.transform(batch[:3]).toarray(), expected[:3], atol=1e-6, rtol=0)
    if ngram_max <= 2:
        assert all(
            np.array_equal(a, b)
            for a, b in zip(compiled._batch_counts(batch), compiled._loop_counts(batch), strict=True)
        )


def test_vectorised_lookup_with_a_unigram_only_vocabulary_and_no_known_token():
    vec = TfidfVectorizer(token_pattern=TOKEN_PATTERN, ngram_range=(2, 2)).fit(DOCS)
    compiled = CompiledVectorizer(vec)
    batch = ["qqq www"] * 20 + DOCS
    np.testing.assert_allclose(compiled.transform(batch).toarray(), vec.transform(batch).toarray(), atol=1e-6)


def test_ascii_tokens_equal_the_token_pattern_on_random_text():
    """The bytes fast path is only used for lower-cased ASCII: there it must give the regex's tokens exactly."""
    import random
    import re

    from sotag.tagger.compiled import ascii_tokens

    pattern = re.compile(TOKEN_PATTERN)
    rng = random.Random(0)
    alphabet = "abcxyz019_#+.-- ..\t\n()[]{}<>/\\'\"!?,;:=*&^%$@~`|"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert [t.decode() for t in ascii_tokens(text)] == pattern.findall(text), text
    for text in ["node.js .net c# c++ -flag- ...x... a-b-c. _x_ #+", "", "-", ".-.", "x"]:
        assert [t.decode() for t in ascii_tokens(text)] == pattern.findall(text), text


def test_non_ascii_and_mixed_batches_still_equal_sklearn():
    vec = tfidf_vectorizer(max_features=None, ngram_max=2, min_df=1).fit(
        [*DOCS, "café crème brûlée . naïve ünïcode", "ｆｕｌｌ width"] * 3
    )
    batch = ["café crème . brûlée node.js", "Upper Case Node.JS", "naïve ünïcode c#", *DOCS] * 4
    np.testing.assert_allclose(
        CompiledVectorizer(vec).transform(batch).toarray(), vec.transform(batch).toarray(), atol=1e-6
    )
