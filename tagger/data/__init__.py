"""Loading, validating and splitting StackOverflow questions: the one data loader."""

from tagger.data.loaders import QUESTION_COLUMNS, load_questions
from tagger.data.paths import BUNDLED_SAMPLE, SHARED_DATA, default_data_path, describe_data, resolve_data_paths
from tagger.data.split import Split, filter_sources, tag_vocabulary, time_split
from tagger.data.validate import ValidationReport, validate_questions

__all__ = [
    "BUNDLED_SAMPLE",
    "QUESTION_COLUMNS",
    "SHARED_DATA",
    "Split",
    "ValidationReport",
    "default_data_path",
    "describe_data",
    "filter_sources",
    "load_questions",
    "resolve_data_paths",
    "tag_vocabulary",
    "time_split",
    "validate_questions",
]
