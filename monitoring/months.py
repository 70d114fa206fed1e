"""Month arithmetic: ranges, the newest complete month, the champion's training window."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Window:
    """A span of time the drift job reads: `start` inclusive, `end` exclusive (naive UTC, as the job's dates).

    A calendar month is one (`month_window`), a rolling window too (`rolling_windows`): the job selects questions
    by window, never by month string, so both run the same code."""

    label: str  # what the reports, the summary and the MLflow run call it: "2018-05", "2026-11-30..2026-12-06"
    start: pd.Timestamp
    end: pd.Timestamp

    def mask(self, dates: pd.Series) -> pd.Series:
        return (dates >= self.start) & (dates < self.end)

    @property
    def days(self) -> float:
        return (self.end - self.start) / pd.Timedelta(days=1)

    def describe(self) -> str:
        """`2026-11-30 00:00..2026-12-07 00:00 UTC` (end excluded)."""
        return f"{self.start:%Y-%m-%d %H:%M}..{self.end:%Y-%m-%d %H:%M} UTC"


def month_window(first: str, last: str | None = None) -> Window:
    """The calendar months `first`..`last` (inclusive) as one window, labelled as the job always named them."""
    last = last or first
    start = pd.Period(first, freq="M").start_time
    end = (pd.Period(last, freq="M") + 1).start_time
    return Window(first if last == first else f"{first}..{last}", start, end)


def _day_label(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """The days a window covers, both inclusive: [2026-11-30, 2026-12-07) is `2026-11-30..2026-12-06`; a window
    that does not start at midnight names its minutes (`2026-11-30T0552..2026-12-07T0552`, end excluded)."""
    if start == start.normalize() and end == end.normalize():
        return f"{start:%Y-%m-%d}..{end - pd.Timedelta(days=1):%Y-%m-%d}"
    return f"{start:%Y-%m-%dT%H%M}..{end:%Y-%m-%dT%H%M}"


def parse_as_of(text: str | None, field: str = "--as-of") -> pd.Timestamp:
    """`--as-of YYYY-MM-DD` (midnight UTC, that day excluded) or an ISO instant; None: now (UTC), rounded up to the
    next minute, so the current window holds every prediction logged so far (the window's end is excluded)."""
    if text is None:
        return pd.Timestamp.now(tz="UTC").tz_localize(None).floor("min") + pd.Timedelta(minutes=1)
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise InputError(field, f"{text!r} is not a date (YYYY-MM-DD) or an ISO time") from exc
    if stamp is pd.NaT:
        raise InputError(field, f"{text!r} is not a date (YYYY-MM-DD) or an ISO time")
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def rolling_windows(as_of: pd.Timestamp, current_days: int, reference_days: int) -> tuple[Window, Window]:
    """(reference, current): the current window is the `current_days` days before `as_of`, the reference the
    `reference_days` days before that (seed 004: 7 days against the 30 before)."""
    current_start = as_of - pd.Timedelta(days=current_days)
    reference_start = current_start - pd.Timedelta(days=reference_days)
    current = Window(_day_label(current_start, as_of), current_start, as_of)
    reference = Window(_day_label(reference_start, current_start), reference_start, current_start)
    return reference, current
