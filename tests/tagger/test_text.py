from tagger.text import clean_html, clean_question, code_share


def test_clean_html_strips_tags_unescapes_and_keeps_code_identifiers():
    body = (
        "<p>Use <code>df.merge</code> &amp; friends</p>"
        "<pre><code>import pandas as pd\nx = pd.read_csv(&quot;a&quot;)</code></pre>"
    )
    text = clean_html(body)
    assert "<" not in text and "&amp;" not in text
    assert "df.merge & friends" in text
    assert "import pandas as pd x pd.read_csv a" in text


def test_clean_html_can_drop_code_blocks():
    body = "<p>Question</p><pre><code>secret_identifier()</code></pre>"
    assert clean_html(body, keep_code=False) == "Question"


def test_clean_question_repeats_title_and_lowercases():
    assert clean_question("C# &amp; LINQ", "<p>Body</p>", title_repeat=2) == "c# & linq . c# & linq . body"
    assert clean_question("T", "") == "t . "


def test_code_share():
    assert code_share("") == 0.0
    body = "<p>ab</p><pre>12345678</pre>"
    assert code_share(body) == 8 / len(body)


def test_squash_whitespace_equals_the_regex_it_replaced():
    """PREPROCESSING_VERSION did not change: the split-based squash gives the regex's output on any whitespace."""
    import re
    import sys

    from tagger.text import squash_whitespace

    spaces = [chr(c) for c in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(c))]
    assert len(spaces) > 20  # Unicode whitespace, not only ASCII
    assert all(c.isspace() for c in spaces)
    text = "a" + "".join(spaces) + "b " + " c\u00a0d\u2028e\x1cf\u200bg  "
    assert squash_whitespace(text) == re.sub(r"\s+", " ", text).strip()
    for probe in ["", "   ", "\t\nx\r\n", "x\u3000y"]:
        assert squash_whitespace(probe) == re.sub(r"\s+", " ", probe).strip()
