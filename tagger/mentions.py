"""Tag mentions: a question that names a tag in its title (`pandas`, `ruby on rails`, `c#`) usually carries it.

A bag-of-words model learns that for the tags it has many questions of; a label tree over thousands of tags
learns it poorly for the rare ones, whose leaves share one node classifier with up to 99 other tags. So the
`plt` kind adds the evidence directly: for each tag, how often a training question that names it (in the
title, or in the body, code included) carries it, estimated from the training window alone; at scoring time
a named tag's score is raised by that precision, times a fixed weight, as a noisy-or:

    score' = 1 - (1 - score) (1 - TITLE_WEIGHT * p_title[tag] * in_title) (1 - BODY_WEIGHT * p_body[tag] * in_body)

which stays in [0, 1], leaves unnamed tags alone and is monotone in the model's score. A tag is named when
its tokens (sotag's token pattern, tagger.vectorizers.TOKEN_PATTERN), or those of the tag with each `-` read
as a space (`ruby-on-rails` as `ruby on rails`), appear consecutively in the cleaned text.

Measured on the shared split (docs/benchmarks.md; `python -m bench.candidates`): the default `plt` goes from all-tags
P@1 0.698 / R@5 0.576 / F1@3 0.484 to 0.730 / 0.607 / 0.514 at weights 0.3 (title) and 0.1 (body). Fitted on
the oldest 85% of the training window and scored on its newest 15%, those weights gave F1@3 0.520 (0.483
without mentions; the best pair, 0.3 and 0.2, 0.521); the plateau is wide. Written by hand: no library
matches a vocabulary of multi-word names against token streams, and one pass over each text is what keeps
batch scoring in budget.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sotag.tagger.compiled import ascii_tokens
from sotag.tagger.vectorizers import TOKEN_PATTERN

TITLE_WEIGHT = 0.3
BODY_WEIGHT = 0.1

_TOKEN = re.compile(TOKEN_PATTERN)


def tokens(text: str) -> list[str]:
    """TOKEN_PATTERN's tokens of a lower-cased `text` (ASCII texts by the compiled vectorizer's split: the same
    tokens, faster)."""
    if text.isascii():
        return [t.decode("ascii") for t in ascii_tokens(text)]
    return _TOKEN.findall(text)


def tag_forms(tag: str) -> set[tuple[str, ...]]:
    """The token sequences that name `tag`: its own tokens, and those with each `-` read as a space."""
    return {f for f in (tuple(tokens(tag)), tuple(tokens(tag.replace("-", " ")))) if f}


@dataclass
class TagMentions:
    """Which tags a text names, and how far to trust a mention of each.

    `single`: token -> tag columns named by that one token; `multi`: first token -> [(following tokens,
    tag columns)]; `title_precision`, `body_precision`: (n_tags,) share of the training questions naming the
    tag (in the title; in the body) that carry it, smoothed as (carried + 0.5) / (named + 1).
    """

    n_tags: int
    single: dict[str, list[int]]
    multi: dict[str, list[tuple[tuple[str, ...], list[int]]]]
    title_precision: np.ndarray
    body_precision: np.ndarray
    title_weight: float = TITLE_WEIGHT
    body_weight: float = BODY_WEIGHT

    def __post_init__(self) -> None:
        # Sets, so a text's intersection with them walks the smaller side (a set against a dict walks the dict).
        self.single_words = frozenset(self.single)
        self.first_words = frozenset(self.multi)

    @classmethod
    def for_vocabulary(cls, vocabulary: Sequence[str]) -> TagMentions:
        """The matcher of `vocabulary`'s names, with no precision yet (0: mentions weigh nothing until `fit`)."""
        single: dict[str, list[int]] = {}
        multi: dict[str, list[tuple[tuple[str, ...], list[int]]]] = {}
        for column, tag in enumerate(vocabulary):
            for form in tag_forms(tag):
                if len(form) == 1:
                    single.setdefault(form[0], []).append(column)
                else:
                    rests = multi.setdefault(form[0], [])
                    for rest, columns in rests:
                        if rest == form[1:]:
                            columns.append(column)
                            break
                    else:
                        rests.append((form[1:], [column]))
        zeros = np.zeros(len(vocabulary))
        return cls(len(vocabulary), single, multi, zeros, zeros.copy())

    @classmethod
    def fit(
        cls, vocabulary: Sequence[str], titles: Sequence[str], bodies: Sequence[str], y: sp.spmatrix | np.ndarray
    ) -> TagMentions:
        """Matcher and precisions from the training questions: cleaned, lower-cased `titles` and `bodies`
        (tagger.questions.titles_and_bodies) and their (n, n_tags) 0/1 labels `y`."""
        mentions = cls.for_vocabulary(vocabulary)
        labels = sp.csr_matrix(y, dtype=np.float64)
        for texts, name in ((titles, "title_precision"), (bodies, "body_precision")):
            named = mentions.named(texts)
            carried = np.asarray(named.multiply(labels).sum(axis=0)).ravel()
            count = np.asarray(named.sum(axis=0)).ravel()
            setattr(mentions, name, (carried + 0.5) / (count + 1.0))
        return mentions

    def columns(self, text: str) -> set[int]:
        """The tag columns `text` names."""
        words = tokens(text)
        present = set(words)
        found: set[int] = set()
        for word in present & self.single_words:
            found.update(self.single[word])
        starts = present & self.first_words
        if starts:
            joined = f" {' '.join(words)} "  # a phrase is named when " its tokens " is a substring
            for word in starts:
                for rest, columns in self.multi[word]:
                    if f" {word} {' '.join(rest)} " in joined:
                        found.update(columns)
        return found

    def named_pairs(self, texts: Sequence[str]) -> tuple[list[int], list[int]]:
        """(rows, columns): text `rows[i]` names tag `columns[i]`; rows ascending, each text's columns sorted."""
        rows: list[int] = []
        columns: list[int] = []
        for row, text in enumerate(texts):
            named = sorted(self.columns(text))
            rows.extend([row] * len(named))
            columns.extend(named)
        return rows, columns

    def named(self, texts: Sequence[str]) -> sp.csr_matrix:
        """(n, n_tags) 0/1: which tags each text names."""
        rows, columns = self.named_pairs(texts)
        return sp.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(len(texts), self.n_tags))

    def raise_scores(self, scores: np.ndarray, titles: Sequence[str], bodies: Sequence[str]) -> np.ndarray:
        """`scores` (n, n_tags, in [0, 1]) raised by the named tags' evidence (the noisy-or above); in place.

        Built from index lists, not sparse matrices: for one question scipy's overhead was several times the
        matching's."""
        return self.raise_named(scores, self.named_pairs(titles), self.named_pairs(bodies))

    def raise_named(
        self, scores: np.ndarray, title_pairs: tuple[list[int], list[int]], body_pairs: tuple[list[int], list[int]]
    ) -> np.ndarray:
        """`raise_scores` from the (rows, columns) the titles and the bodies name (`named_pairs`)."""
        for (rows, columns), weight, precision in (
            (title_pairs, self.title_weight, self.title_precision),
            (body_pairs, self.body_weight, self.body_precision),
        ):
            if columns:
                strength = weight * precision[columns]
                scores[rows, columns] = 1.0 - (1.0 - scores[rows, columns]) * (1.0 - strength)
        return scores


def byte_tokens(text: str) -> list[bytes]:
    """`tokens(text)` as UTF-8 bytes."""
    if text.isascii():
        return ascii_tokens(text)
    return [t.encode("utf-8") for t in _TOKEN.findall(text)]


class ByteMentions:
    """A TagMentions' matcher over tokens as UTF-8 bytes, the compiled vectorizer's (tagger.compiled): the fused
    plt scorer matches the tokens it has already split for the features instead of splitting every text again.
    Derived when a model loads, never saved; `columns` equals TagMentions.columns on the tokens' text (a test
    holds them equal). UTF-8 is self-synchronising, so a phrase's bytes between spaces are found in the joined
    tokens' bytes exactly where its text is found in their text."""

    def __init__(self, mentions: TagMentions) -> None:
        self.mentions = mentions
        self.single = {word.encode("utf-8"): columns for word, columns in mentions.single.items()}
        self.multi = {
            word.encode("utf-8"): [
                (frozenset(t.encode("utf-8") for t in rest), f" {word} {' '.join(rest)} ".encode(), columns)
                for rest, columns in rests
            ]
            for word, rests in mentions.multi.items()
        }
        self.single_words = frozenset(self.single)
        self.first_words = frozenset(self.multi)

    def columns(self, words: list[bytes]) -> list[int]:
        """The tag columns the text of tokens `words` names, sorted."""
        present = set(words)
        found: set[int] = set()
        for word in present & self.single_words:
            found.update(self.single[word])
        joined = None
        for word in present & self.first_words:
            for rest, phrase, columns in self.multi[word]:
                if rest <= present:  # every token of the phrase is in the text: then look for the phrase
                    joined = joined or b" " + b" ".join(words) + b" "
                    if phrase in joined:
                        found.update(columns)
        return sorted(found)

    def named_pairs(self, per_text: Sequence[list[bytes]]) -> tuple[list[int], list[int]]:
        """TagMentions.named_pairs of tokenised texts."""
        rows: list[int] = []
        columns: list[int] = []
        for row, words in enumerate(per_text):
            named = self.columns(words)
            if named:
                rows += [row] * len(named)
                columns += named
        return rows, columns

    def raise_scores(
        self, scores: np.ndarray, title_tokens: Sequence[list[bytes]], body_tokens: Sequence[list[bytes]]
    ) -> np.ndarray:
        """TagMentions.raise_scores of tokenised titles and bodies."""
        return self.mentions.raise_named(scores, self.named_pairs(title_tokens), self.named_pairs(body_tokens))
