"""Month arithmetic: ranges, the newest complete month, the champion's training window."""

from __future__ import annotations

import pandas as pd

from sotag.tagger.errors import InputError


def parse_month(text: str, field: str) -> pd.Period:
    try:
        return pd.Period(text, freq="M")
    except (ValueError, TypeError) as exc:
        raise InputError(field, f"{text!r} is not a month (YYYY-MM)") from exc


def month_range(text: str, field: str) -> tuple[str, ...]:
    """`2017-07..2018-05` (inclusive) or a single `2018-05`."""
    first, _, last = text.partition("..")
    start = parse_month(first, field)
    end = parse_month(last, field) if last else start
    if end < start:
        raise InputError(field, f"{text!r} ends before it starts")
    return tuple(str(p) for p in pd.period_range(start, end, freq="M"))


def newest_complete_month(dates: pd.Series, today: pd.Timestamp | None = None) -> str:
    """The last month that is over in the calendar and covered by the data.

    A month is covered when the data reaches its last day (a dump cut on May 31 covers May;
    one cut on May 14 does not).
    """
    today = today or pd.Timestamp.now(tz="UTC").tz_localize(None)
    newest = pd.Timestamp(dates.max())
    month = newest.to_period("M")
    if newest.normalize() < month.end_time.normalize():
        month -= 1
    return str(min(month, today.to_period("M") - 1))


def champion_window(split_date: str, months: int = 6) -> tuple[str, str]:
    """The last `months` whole months the champion was trained on (it trained before `split_date`)."""
    last = pd.Timestamp(split_date).to_period("M") - 1
    return str(last - (months - 1)), str(last)
