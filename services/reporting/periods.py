"""Reporting periods, all made of whole months so that every view sums monthly buckets.

  2025-07      a month
  2025-Q3      a calendar quarter
  2025-H1      the statistics half-year: 1 Dec 2024 .. 31 May 2025 (data cut-off 31 May)
  2025-SY      the statistics year:      1 Dec 2024 .. 30 Nov 2025 (data cut-off 30 November)
  2025         the calendar year
  2025-01..2025-06   any run of calendar months
(QĐ 1454/QĐ-TLĐ: periodic reports cut off on 31 May and 30 November.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Period:
    code: str
    first: str  # first month, YYYY-MM
    last: str   # last month, YYYY-MM

    @property
    def months(self) -> list[str]:
        return month_range(self.first, self.last)

    @property
    def year(self) -> int:
        """The year a target of this period belongs to (the year of its last month)."""
        return int(self.last[:4])

    @property
    def rating_month(self) -> str | None:
        """The month of the last 30 November cut-off the period contains (YYYY-11), or None: the
        annual figures (CĐCS ratings) of a period are those of that cut-off."""
        year = int(self.last[:4]) if self.last[5:7] >= "11" else int(self.last[:4]) - 1
        month = f"{year:04d}-11"
        return month if month >= self.first else None


def add_months(month: str, n: int) -> str:
    y, m = int(month[:4]), int(month[5:7])
    total = y * 12 + (m - 1) + n
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def month_range(first: str, last: str) -> list[str]:
    out, m = [], first
    while m <= last:
        out.append(m)
        m = add_months(m, 1)
    return out


class BadPeriod(ValueError):
    pass


# Every read is bounded: a period or a series spans at most ten years of months, between 1900 and
# 2100, so one request can never make the views walk thousands of buckets.
MAX_MONTHS = 120
FIRST_YEAR, LAST_YEAR = 1900, 2100


def check_span(first: str, last: str) -> None:
    for month in (first, last):
        if not FIRST_YEAR <= int(month[:4]) <= LAST_YEAR:
            raise BadPeriod(f"months run from {FIRST_YEAR}-01 to {LAST_YEAR}-12")
    if first > last:
        raise BadPeriod("the first month is after the last")
    span = (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7]) + 1
    if span > MAX_MONTHS:
        raise BadPeriod(f"a range spans at most {MAX_MONTHS} months ({MAX_MONTHS // 12} years), not {span}")


def parse(code: str) -> Period:
    period = _parse(code)
    check_span(period.first, period.last)
    return period


def _parse(code: str) -> Period:
    code = code.strip()
    if m := re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])", code):
        return Period(code, code, code)
    if m := re.fullmatch(r"(\d{4})-Q([1-4])", code):
        y, q = int(m[1]), int(m[2])
        first = f"{y:04d}-{3 * q - 2:02d}"
        return Period(code, first, add_months(first, 2))
    if m := re.fullmatch(r"(\d{4})-H([12])", code):
        y, h = int(m[1]), int(m[2])
        return (Period(code, f"{y - 1:04d}-12", f"{y:04d}-05") if h == 1
                else Period(code, f"{y:04d}-06", f"{y:04d}-11"))
    if m := re.fullmatch(r"(\d{4})-SY", code):
        y = int(m[1])
        return Period(code, f"{y - 1:04d}-12", f"{y:04d}-11")
    if m := re.fullmatch(r"(\d{4})", code):
        return Period(code, f"{code}-01", f"{code}-12")
    if m := re.fullmatch(r"(\d{4}-(?:0[1-9]|1[0-2]))\.\.(\d{4}-(?:0[1-9]|1[0-2]))", code):
        if m[1] > m[2]:
            raise BadPeriod("the first month is after the last")
        return Period(code, m[1], m[2])
    raise BadPeriod(f"unknown period {code!r}: use 2025-07, 2025-Q3, 2025-H1, 2025-SY, 2025 or 2025-01..2025-06")


def month_of(iso_date: str) -> str:
    """'2025-07-14' -> '2025-07'."""
    if not re.fullmatch(r"\d{4}-\d{2}(-\d{2}.*)?", iso_date or ""):
        raise ValueError(f"not an ISO date: {iso_date!r}")
    return iso_date[:7]
