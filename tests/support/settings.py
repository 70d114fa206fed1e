"""The settings as the tests build them: through `sotag.settings.load_settings`, as a command does at its edge.

Also where the tests find the checkout's own files (the tests run from a checkout; the product never does)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sotag.infra.tracking import TrackingSettings
from sotag.serving.config import GatewayConfig
from sotag.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "questions-sample.parquet"
SHARED_DATA = REPO.parent / "shared" / "data" / "stackoverflow" / "questions.parquet"


def settings_from(environ: Mapping[str, str] | None = None, **flags: Any) -> Settings:
    """The settings a command would build here from `environ` (default: this process's) and `flags`
    ({"train.top_n_tags": 5} is given as train__top_n_tags=5)."""
    given = {name.replace("__", "."): value for name, value in flags.items()}
    return load_settings(given, environ=os.environ if environ is None else environ).settings


def tracking_settings(environ: Mapping[str, str] | None = None) -> TrackingSettings:
    return TrackingSettings.from_settings(settings_from(environ))


def gateway_config(environ: Mapping[str, str] | None = None, **overrides: object) -> GatewayConfig:
    return GatewayConfig.from_settings(settings_from(environ), **overrides)
