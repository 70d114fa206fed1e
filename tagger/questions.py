"""The question text every model kind and monitoring read: the one place a (title, body) pair becomes text.

`tagger.text.clean_question` holds the cleaning rules; this module applies them to batches: with the title
repeated for a bag of words, once for a sentence encoder, or both from one cleaning (the ensemble).
"""

from __future__ import annotations

from collections.abc import Sequence

from tqdm import tqdm

from sotag.tagger.text import PREPROCESSING_VERSION, clean_question, question_and_title


def question_texts(
    titles: Sequence[str],
    bodies: Sequence[str],
    keep_code: bool = True,
    title_repeat: int = 1,
    progress: bool = False,
    version: str = PREPROCESSING_VERSION,
) -> list[str]:
    """One cleaned, lower-cased text per question: the title `title_repeat` times, then the body.

    `progress` shows a transient bar on a terminal only (never interleaved into logs), for training's batches;
    `version` is the preprocessing version whose cleaning rules apply (a model's own, tagger.text).
    """
    pairs = zip(titles, bodies, strict=True)
    if not progress:
        return [clean_question(t, b, keep_code=keep_code, title_repeat=title_repeat, version=version) for t, b in pairs]
    # A context manager: the bar is closed (its line cleared) however the loop ends, so an error prints on a clean line.
    with tqdm(pairs, total=len(titles), desc="cleaning", mininterval=1, leave=False, disable=None) as bar:
        return [clean_question(t, b, keep_code=keep_code, title_repeat=title_repeat, version=version) for t, b in bar]


def texts_and_title_prefixes(
    titles: Sequence[str],
    bodies: Sequence[str],
    keep_code: bool = True,
    title_repeat: int = 1,
    version: str = PREPROCESSING_VERSION,
) -> tuple[list[str], list[str]]:
    """(`question_texts(...)`, each title's prefix `clean_question(title, "", version=version)`) from one cleaning
    of each title: `titles_and_bodies` splits the texts with the prefixes."""
    pairs = [question_and_title(t, b, keep_code, title_repeat, version) for t, b in zip(titles, bodies, strict=True)]
    return [text for text, _ in pairs], [prefix for _, prefix in pairs]


def repeated_and_natural(
    titles: Sequence[str],
    bodies: Sequence[str],
    keep_code: bool,
    title_repeat: int,
    version: str = PREPROCESSING_VERSION,
) -> tuple[list[str], list[str]]:
    """(texts with the title repeated, natural texts with the title once), from one cleaning of each question.

    `clean_question` with a repeated title is the title's prefix in front of the natural text, so the first
    list equals `question_texts(..., title_repeat)` and the second `question_texts(..., 1)`.
    """
    natural = question_texts(titles, bodies, keep_code=keep_code, title_repeat=1, version=version)
    if title_repeat <= 1:
        return natural, natural
    prefixes = [clean_question(t, "", title_repeat=title_repeat - 1, version=version) for t in titles]
    return [p + n for p, n in zip(prefixes, natural, strict=True)], natural


def titles_and_bodies(
    titles: Sequence[str], texts: Sequence[str], title_repeat: int, version: str = PREPROCESSING_VERSION
) -> tuple[list[str], list[str]]:
    """The cleaned, lower-cased title and body of each question, split out of its `question_texts` text.

    The body is what follows the title's `title_repeat` prefixes (see `repeated_and_natural`), so only the
    titles are cleaned again: the bodies, the expensive part, are not.
    """
    prefixes = [clean_question(t, "", title_repeat=1, version=version) for t in titles]
    repeat = max(title_repeat, 1)
    return (
        [p[:-3] for p in prefixes],  # clean_question ends the title with " . "
        [text[len(p) * repeat :] for p, text in zip(prefixes, texts, strict=True)],
    )
