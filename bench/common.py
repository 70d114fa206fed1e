"""What every benchmark shares: the data path argument and a fitted default model."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

from tagger.data import default_data_path
from training.config import TrainConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=None, help="questions file (default: $SOTAG_DATA or shared data)")
    args = parser.parse_args()
    args.data = args.data or default_data_path()
    if not args.data.is_file():
        parser.exit(2, f"error: no data file at {args.data} (set DATA=path or SOTAG_DATA)\n")
    return args


def default_config(data: Path, **overrides: object) -> TrainConfig:
    return replace(TrainConfig(data=data, register=False), **overrides)
