import pytest

from sotag.tagger.text import clean_html, clean_question, code_share


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

    from sotag.tagger.text import squash_whitespace

    spaces = [chr(c) for c in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(c))]
    assert len(spaces) > 20  # Unicode whitespace, not only ASCII
    assert all(c.isspace() for c in spaces)
    text = "a" + "".join(spaces) + "b " + " c\u00a0d\u2028e\x1cf\u200bg  "
    assert squash_whitespace(text) == re.sub(r"\s+", " ", text).strip()
    for probe in ["", "   ", "\t\nx\r\n", "x\u3000y"]:
        assert squash_whitespace(probe) == re.sub(r"\s+", " ", probe).strip()


# Issue 20 kind 1: every line ending is "\n" once text comes in.
@pytest.mark.parametrize(
    "blank",
    [
        *("\r\n\r\n", "\r\r", "\u2028\u2028", "\u2029\u2029", "\x85\x85", "\r\n\n", "\n\r\n"),
        # A line of spaces or tabs is blank too (an HTML form, a client that indents).
        *("\n  \n", "\r\n  \r\n", "\n\t\n", "\n\u00a0\n"),
    ],
)
def test_split_text_splits_a_blank_line_in_any_line_ending(blank):
    from sotag.serving.original_api import split_text

    assert split_text(f"Azure CLI query{blank}<p>line one\r\nline two</p>") == (
        "Azure CLI query",
        "<p>line one\nline two</p>",
    )


def test_normalize_newlines_maps_each_break_to_one_newline():
    from sotag.tagger.text import normalize_newlines

    assert normalize_newlines("a\r\nb\rc\u2028d\u2029e\x85f\x0bg\x0ch\ni") == "a\nb\nc\nd\ne\nf\ng\nh\ni"
    assert normalize_newlines("\r\n\r\n") == "\n\n"
    assert normalize_newlines("") == ""
    assert normalize_newlines("no break\u00a0here") == "no break\u00a0here"


def test_pyfunc_titles_and_bodies_are_normalised():
    import pandas as pd

    from sotag.tagger.pyfunc import validate_request

    frame = pd.DataFrame({"title": ["t\r\nx"], "body": ["a\u2028b\rc"]})
    titles, bodies, _, _ = validate_request(frame, None, (5, 0.3))
    assert (titles, bodies) == (["t\nx"], ["a\nb\nc"])


# Issue 20 kind 4: scripts written without spaces.
@pytest.mark.parametrize(
    ("joined", "spaced"),
    [
        ("PythonでJSONファイルを読み込む方法", "Python で JSON ファイルを読み込む方法"),
        ("Dockerコンテナが起動しない", "Docker コンテナが起動しない"),
        ("如何在Java中将String转换为int", "如何在 Java 中将 String 转换为 int"),
        ("C#でLINQを使う", "C# で LINQ を使う"),
        ("node.jsとC++と.NETの違い", "node.js と C++ と .NET の違い"),
        ("Python으로pandas사용하기", "Python 으로 pandas 사용하기"),
        ("วิธีใช้Pythonอ่านไฟล์JSON", "วิธีใช้ Python อ่านไฟล์ JSON"),
        ("ＰｙｔｈｏｎでＪＳＯＮを読む", "Python で JSON を読む"),
    ],
)
def test_latin_runs_inside_cjk_and_thai_become_tokens(joined, spaced):
    from sklearn.feature_extraction.text import CountVectorizer

    from sotag.tagger.vectorizers import TOKEN_PATTERN

    analyzer = CountVectorizer(token_pattern=TOKEN_PATTERN).build_analyzer()
    assert clean_question(joined, "") == clean_question(spaced, "")
    tokens = analyzer(clean_question(joined, ""))
    latin = [t for t in analyzer(spaced.lower()) if t.isascii()]
    assert latin and set(latin) <= set(tokens)


def test_version_1_rules_are_kept_for_models_trained_under_them():
    from sotag.tagger.text import PREPROCESSING_VERSION, PREPROCESSING_VERSIONS

    assert PREPROCESSING_VERSION == "2" and PREPROCESSING_VERSIONS == ("1", "2")
    assert clean_question("PythonでJSON", "<p>読むＸ</p>", version="1") == "pythonでjson . 読むｘ"
    assert clean_question("PythonでJSON", "<p>読むＸ</p>", version="2") == "python で json . 読む x"
    # Text without those scripts is cleaned the same under both.
    for title, body in [("C# &amp; LINQ", "<p>Body</p>"), ("Как pandas?", "<pre>df.merge()</pre>"), ("🐍 Python", "")]:
        assert clean_question(title, body, version="1") == clean_question(title, body, version="2")
    with pytest.raises(ValueError, match="preprocessing version '0'"):
        clean_question("t", "", version="0")
