"""`make bench-train`: wall time of the default training run and of the compare grid.

Both run against a throwaway embedded MLflow store, everything logged as in normal use
(dataset, plots, model, registry version); the grid starts with an empty SBERT cache.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import default_config, parse_args
from sotag.infra.tracking import TrackingSettings, use_fluent
from sotag.tagger.kinds import trainable_kinds
from sotag.training.compare import compare
from sotag.training.train import train


def main() -> None:
    args = parse_args(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = TrackingSettings(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri())
        config = default_config(args.data, register=True, cache_dir=root / "cache")
        start = time.perf_counter()
        train(config, use_fluent(settings, config.experiment))
        default_s = time.perf_counter() - start
        start = time.perf_counter()
        compare(
            default_config(args.data, cache_dir=root / "cache"),
            use_fluent(settings, "stackoverflow-tagger"),
            trainable_kinds(),
        )
        grid_s = time.perf_counter() - start
    print(f"train_time: default_s={default_s:.1f} grid_s={grid_s:.1f} (sbert cache cold)")


if __name__ == "__main__":
    main()
