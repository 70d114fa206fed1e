"""The verification scenario on the shared data (used by `make bench-drift` and its test).

General-purpose sources only; reference 2017-01..2017-06; every month 2017-07..2018-05 checked;
plus a planted month made of the topic-specific questions (the Rx and PyTorch sources of
SOURCES.md), re-dated into 2018-06 where the data has no question. A working monitor flags the
planted month `alert` and leaves most ordinary months `ok`.
"""

from __future__ import annotations

import pandas as pd

from sotag.data import filter_sources, load_questions
from sotag.data.split import TOPIC_SPECIFIC_SOURCES

REFERENCE = ("2017-01", "2017-06")
ORDINARY_MONTHS = tuple(str(p) for p in pd.period_range("2017-07", "2018-05", freq="M"))
PLANTED_MONTH = "2018-06"
# The champion trains on questions before the reference window: reference and checked months are
# then all unseen, so prediction statistics compare like with like (in-sample predictions are
# more confident, which alone would move the tag distribution and the no-tag share).
CHAMPION_SPLIT = "2017-01-01"


def scenario_frame(data_path) -> pd.DataFrame:
    frame, _ = load_questions(data_path)
    general = filter_sources(frame, TOPIC_SPECIFIC_SOURCES)
    topic = frame[frame["source"].str.startswith(TOPIC_SPECIFIC_SOURCES)].copy()
    # Spread over the planted month, keeping each question's time of day.
    days = pd.to_timedelta(pd.RangeIndex(len(topic)) % 28, unit="D")
    topic["creation_date"] = (
        pd.Timestamp(f"{PLANTED_MONTH}-01")
        + days
        + (topic["creation_date"] - topic["creation_date"].dt.normalize()).to_numpy()
    )
    return pd.concat([general, topic], ignore_index=True).sort_values("creation_date", ignore_index=True)
