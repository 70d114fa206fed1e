"""Loading, validating and splitting StackOverflow questions: the one data loader."""

from tagger.data.loaders import QUESTION_COLUMNS, load_questions
from tagger.data.split import Split, filter_sources, tag_vocabulary, time_split
from tagger.data.validate import ValidationReport, validate_questions

__all__ = [
    "QUESTION_COLUMNS",
    "Split",
    "ValidationReport",
    "filter_sources",
    "load_questions",
    "tag_vocabulary",
    "time_split",
    "validate_questions",
]
