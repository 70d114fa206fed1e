"""Tag mentions (tagger.mentions): which tags a text names, how far a mention is trusted, how scores are raised."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sotag.tagger.mentions import TagMentions, tag_forms, tokens
from sotag.tagger.questions import question_texts, titles_and_bodies
from sotag.tagger.vectorizers import TOKEN_PATTERN

VOCABULARY = ["python", "ruby-on-rails", "c#", "python-3.x", "java", "node.js", "sql-server"]


def test_a_tag_is_named_by_its_tokens_or_with_its_dashes_read_as_spaces():
    assert tag_forms("ruby-on-rails") == {("ruby-on-rails",), ("ruby", "on", "rails")}
    assert tag_forms("python-3.x") == {("python-3.x",), ("python", "3.x")}
    assert tag_forms("c#") == {("c#",)}
    text = "how do i use node.js, c# and python-3.x? -x- .net ..."
    assert tokens(text) == ["how", "do", "i", "use", "node.js", "c#", "and", "python-3.x", "x", "net"]


@pytest.mark.parametrize("text", ["a -b- c.d. e#f+ .net -", "python と json ファイル", "naïve café", "", "--- ..."])
def test_tokens_are_the_token_pattern_s_on_ascii_and_other_texts(text):
    assert tokens(text) == re.findall(TOKEN_PATTERN, text)


def test_names_are_whole_tokens_and_whole_phrases():
    mentions = TagMentions.for_vocabulary(VOCABULARY)
    named = lambda text: sorted(VOCABULARY[c] for c in mentions.columns(text))  # noqa: E731
    assert named("deploying ruby on rails with sql server 2019") == ["ruby-on-rails", "sql-server"]
    assert named("ruby-on-rails routes in c#") == ["c#", "ruby-on-rails"]
    assert named("javascript, pythonic code and ruby on railsy things") == []  # no partial tokens or phrases
    assert named("upgrading from python 3.x to java.") == ["java", "python", "python-3.x"]
    assert named("") == []


def test_precision_is_the_smoothed_share_of_naming_questions_that_carry_the_tag():
    titles = ["python lists", "python dicts", "python sets", "python in java", "java streams"]
    bodies = ["", "", "", "", "python is mentioned here"]
    y = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 1]])  # columns: python, java
    mentions = TagMentions.fit(["python", "java"], titles, bodies, y)
    assert mentions.title_precision == pytest.approx([(3 + 0.5) / (4 + 1), (2 + 0.5) / (2 + 1)])
    assert mentions.body_precision == pytest.approx([(0 + 0.5) / (1 + 1), (0 + 0.5) / (0 + 1)])


def test_named_tags_are_raised_by_a_noisy_or_and_the_others_are_left_alone():
    mentions = TagMentions.for_vocabulary(["python", "java", "c#"])
    mentions.title_precision = np.array([0.8, 0.5, 0.9])
    mentions.body_precision = np.array([0.6, 0.4, 0.9])
    mentions.title_weight, mentions.body_weight = 0.3, 0.1
    scores = np.array([[0.2, 0.5, 0.1], [0.99, 0.0, 0.3]])
    raised = mentions.raise_scores(scores.copy(), ["python and java", "nothing"], ["python again", "c# code"])
    assert raised[0, 0] == pytest.approx(1 - (1 - 0.2) * (1 - 0.3 * 0.8) * (1 - 0.1 * 0.6))
    assert raised[0, 1] == pytest.approx(1 - (1 - 0.5) * (1 - 0.3 * 0.5))
    assert raised[0, 2] == 0.1  # not named: unchanged
    assert raised[1, :2].tolist() == [0.99, 0.0] and raised[1, 2] == pytest.approx(1 - 0.7 * (1 - 0.09))
    assert (raised >= scores).all() and (raised <= 1.0).all()


@pytest.mark.parametrize("title_repeat", [1, 2, 3])
def test_title_and_body_split_back_out_of_the_cleaned_text(title_repeat):
    titles = ["Pandas . groupby?", "", "PythonでJSONファイル", "A &amp; B", "  spaced   title  "]
    bodies = ["<p>Body with <code>x . y</code></p><pre>import pandas as pd</pre>", "<p>only body</p>", "", "b", ""]
    texts = question_texts(titles, bodies, title_repeat=title_repeat)
    title_texts, body_texts = titles_and_bodies(titles, texts, title_repeat)
    assert [(t + " . ") * title_repeat + b for t, b in zip(title_texts, body_texts, strict=True)] == texts
    assert title_texts == [question_texts([t], [""])[0][:-3] for t in titles]
    assert body_texts[0].startswith("body with") and "import pandas as pd" in body_texts[0]
    assert title_texts[0] == "pandas . groupby?" and body_texts[2] == ""
