"""Question dates as people's files write them: ISO strings, epoch numbers, and `dd/mm/yyyy` or `mm/dd/yyyy`.

* Epoch timestamps (what the Stack Exchange API's JSON carries, written as-is to a CSV or parquet file) are dates:
  9-10 digits are seconds, 12-13 milliseconds; a numeric column is read the same way by its magnitude. pandas'
  own parser would read such a number as nanoseconds (1970) or not at all.
* A slash or dot date (`14/01/2016 16:27`, as a French-locale Excel re-saves a SEDE export) is read day-first when
  the file's values say so: a first field above 12 anywhere decides day-first, a second field above 12 decides
  month-first (`DateOrder`, one per file, so no chunk reads its months differently). A file where neither occurs
  is ambiguous and read month-first (Excel's en-US default), and the choice is reported; a file that holds both
  orders is refused, naming a value of each.
* A column whose every value fails to parse is an error naming the column and a sample value (`check_parsed`):
  never a run that succeeds with nothing done, never a date in 1970.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sotag.tagger.errors import DataError

log = logging.getLogger(__name__)

_EPOCH_SECONDS = re.compile(r"^\s*\d{9,10}(\.\d+)?\s*$")
_EPOCH_MILLIS = re.compile(r"^\s*\d{12,13}\s*$")
_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})[/.](\d{1,2})[/.](\d{4})(.*)$", re.DOTALL)
# 2001-09-09 in seconds is 1e9: plausible question dates, as seconds or milliseconds.
_SECONDS_RANGE = (1e8, 1e10)
_MILLIS_RANGE = (1e11, 1e13)


@dataclass
class DateOrder:
    """The order of a file's `a/b/yyyy` dates, decided by the first value that settles it."""

    dayfirst: bool | None = None
    evidence: str = ""
    assumed: bool = False  # read month-first with nothing to settle it (reported once)

    def settle(self, values: pd.Series, where: str) -> None:
        parts = values.str.extract(_NUMERIC_DATE.pattern, flags=re.DOTALL)
        known = parts[0].notna()
        if not known.any():
            return
        first = parts.loc[known, 0].astype(int)
        second = parts.loc[known, 1].astype(int)
        day_first = values[known][first > 12]
        month_first = values[known][second > 12]
        if len(day_first) and len(month_first):
            raise DataError(
                f"{where}: creation dates in both orders: {day_first.iloc[0]!r} is day-first, "
                f"{month_first.iloc[0]!r} month-first; write them as YYYY-MM-DD"
            )
        for seen, dayfirst in ((day_first, True), (month_first, False)):
            if len(seen):
                if self.dayfirst is not None and self.dayfirst != dayfirst:
                    earlier = "earlier ambiguous ones were read month-first" if self.assumed else repr(self.evidence)
                    raise DataError(
                        f"{where}: creation dates in both orders: {earlier} and {seen.iloc[0]!r}; write them as "
                        "YYYY-MM-DD"
                    )
                self.dayfirst, self.evidence, self.assumed = dayfirst, str(seen.iloc[0]), False
                return
        if self.dayfirst is None:
            self.dayfirst, self.assumed = False, True
            log.warning(
                "%s: creation dates such as %r could be day-first or month-first and none has a field above 12: "
                "read month-first (write them as YYYY-MM-DD to be sure)",
                where,
                str(values[known].iloc[0]),
            )

    def to_iso(self, values: pd.Series) -> pd.Series:
        """`a/b/yyyy[ time]` values rewritten `yyyy-mm-dd[ time]` in the settled order; other values as they are."""
        if self.dayfirst is None:
            return values
        parts = values.str.extract(_NUMERIC_DATE.pattern, flags=re.DOTALL)
        known = parts[0].notna()
        if not known.any():
            return values
        day, month = (parts[0], parts[1]) if self.dayfirst else (parts[1], parts[0])
        iso = parts[2] + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + parts[3].fillna("")
        return values.where(~known, iso)


def parse_dates(values: pd.Series) -> pd.Series:
    """Dates (UTC-aware; NaT where a value is not one) from strings, epoch numbers or datetimes."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return _from_epoch(values.astype("float64"))
    text = values.astype("string")
    seconds = text.str.match(_EPOCH_SECONDS.pattern).fillna(False).astype(bool)
    millis = text.str.match(_EPOCH_MILLIS.pattern).fillna(False).astype(bool)
    out = pd.to_datetime(values.where(~(seconds | millis)), errors="coerce", utc=True, format="mixed")
    if seconds.any() or millis.any():
        numbers = pd.to_numeric(text.where(seconds | millis), errors="coerce")
        out = out.where(~(seconds | millis), _from_epoch(numbers))
    return out


def _from_epoch(numbers: pd.Series) -> pd.Series:
    values = numbers.astype("float64").to_numpy(na_value=np.nan)
    seconds = (values >= _SECONDS_RANGE[0]) & (values <= _SECONDS_RANGE[1])
    millis = (values >= _MILLIS_RANGE[0]) & (values <= _MILLIS_RANGE[1])
    scaled = np.where(millis, values / 1000.0, np.where(seconds, values, np.nan))
    return pd.to_datetime(pd.Series(scaled, index=numbers.index), unit="s", utc=True, errors="coerce")


def check_parsed(raw: pd.Series, parsed: pd.Series, column: str = "creation_date") -> None:
    """DataError naming `column` and a sample value when it holds values and none of them is a date."""
    present = raw.notna() & (raw.astype("string").str.strip() != "")
    if present.any() and parsed[present].isna().all():
        sample = raw[present].iloc[0]
        raise DataError(
            f"{column}: no value is a date (e.g. {sample!r}); sotag reads ISO dates (2016-01-14 16:27), "
            "epoch seconds or milliseconds, and dd/mm/yyyy or mm/dd/yyyy"
        )
