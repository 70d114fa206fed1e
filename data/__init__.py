"""The questions: loading every supported format, validating, the time split, and the bundled sample.

Installed as `sotag.data`; the one data loader (`load_questions`) and the one data-path resolver
(`resolve_data_paths`). The sample (`questions-sample.parquet`, SOURCES.md) is package data.
"""

from sotag.data.loaders import QUESTION_COLUMNS, load_questions
from sotag.data.paths import bundled_sample, default_data_path, describe_data, resolve_data_paths
from sotag.data.split import Split, filter_sources, time_split
from sotag.data.validate import ValidationReport, validate_questions

__all__ = [
    "QUESTION_COLUMNS",
    "Split",
    "ValidationReport",
    "bundled_sample",
    "default_data_path",
    "describe_data",
    "filter_sources",
    "load_questions",
    "resolve_data_paths",
    "time_split",
    "validate_questions",
]
