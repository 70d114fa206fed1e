"""Rebuild `questions-sample.parquet` from the shared data set (run once by a maintainer, not at run time).

    .venv/bin/python scripts/make_sample.py ../shared/data/stackoverflow/questions.parquet

General-purpose questions only (the Rx* and PyTorch sources are dropped), 2016-01 → 2018-05:
every question of 2016-01 .. 2018-03, and a seeded random share of 2018-04 and 2018-05 (the
shared data's two huge months), so the default time split (2018-04-20) has a real evaluation
window and the drift job has ~29 months to compare. Sorted by creation date, zstd-compressed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

TOPIC_SPECIFIC = ("carloszimm/", "pankaj90382/")
START, FULL_UNTIL, END = "2016-01-01", "2018-04-01", "2018-06-01"
PER_LATE_MONTH = {"2018-04": 3_000, "2018-05": 2_000}
SEED = 20180420
OUT = Path(__file__).resolve().parents[1] / "data" / "questions-sample.parquet"


def sample(frame: pd.DataFrame) -> pd.DataFrame:
    general = frame[~frame["source"].str.startswith(TOPIC_SPECIFIC)]
    window = general[(general["creation_date"] >= START) & (general["creation_date"] < END)]
    parts = [window[window["creation_date"] < FULL_UNTIL]]
    month = window["creation_date"].dt.strftime("%Y-%m")
    for name, n in PER_LATE_MONTH.items():
        rows = window[month == name]
        parts.append(rows.sample(n=min(n, len(rows)), random_state=SEED))
    return pd.concat(parts).sort_values(["creation_date", "id"]).reset_index(drop=True)


def main(source: str) -> None:
    out = sample(pd.read_parquet(source))
    out.to_parquet(OUT, index=False, compression="zstd", compression_level=19)
    months = out["creation_date"].dt.strftime("%Y-%m")
    print(f"{OUT.name}: {len(out)} questions, {months.min()} .. {months.max()}, {OUT.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/stackoverflow/questions.parquet")
