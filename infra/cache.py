"""Where sotag caches SBERT embeddings between runs: `$SOTAG_CACHE`, read once by the command that runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tagger.data.paths import PROJECT_ROOT

DEFAULT_CACHE_DIR = PROJECT_ROOT / ".cache"


def cache_dir(environ: Mapping[str, str]) -> Path:
    """`$SOTAG_CACHE` in `environ`, else `.cache` in the checkout (git-ignored)."""
    return Path(environ.get("SOTAG_CACHE") or DEFAULT_CACHE_DIR)
