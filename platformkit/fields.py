"""Marshmallow fields shared by every service's schemas: dates and months inside a plausible
range, so that `0000-01` or `9999-12-31` is a 400 naming the field, never a 500 or a fact stored
for the year 9999."""
from __future__ import annotations

import re
from datetime import date

from marshmallow import ValidationError, fields, validate

from . import paging
from .clock import today

EARLIEST = date(1900, 1, 1)   # older than any member's birth or any union record kept here
LATEST = date(2100, 12, 31)   # plans and targets run at most this far ahead
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class PlausibleDate(fields.Date):
    """An ISO date between 1900-01-01 and 2100-12-31 (`not_after_today`: and not in the future)."""

    def __init__(self, *args, not_after_today: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.not_after_today = not_after_today
        latest = "today" if not_after_today else LATEST.isoformat()
        self.metadata.setdefault("description", f"ISO date, {EARLIEST.isoformat()} .. {latest}")

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST <= day <= LATEST:
            raise ValidationError(f"must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
        if self.not_after_today and day > today():
            raise ValidationError("must not be in the future")
        return day


def check_month(value: str) -> str:
    """'2025-07' between 1900-01 and 2100-12, else ValidationError."""
    m = MONTH.match(value or "")
    if not m:
        raise ValidationError("must be a month as YYYY-MM")
    if not EARLIEST.year <= int(m[1]) <= LATEST.year:
        raise ValidationError(f"must be between {EARLIEST.year}-01 and {LATEST.year}-12")
    return value


class Month(fields.String):
    """A calendar month, YYYY-MM, between 1900-01 and 2100-12."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("metadata", {}).setdefault("example", "2025-07")
        super().__init__(*args, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return check_month(super()._deserialize(value, attr, data, **kwargs))


class Cursor(fields.String):
    """`after`: the `next_cursor` of the previous page (platformkit.paging), decoded to its sort key;
    anything else is a 400 naming `after`."""

    def __init__(self, *args, **kwargs):
        metadata = kwargs.setdefault("metadata", {})
        metadata.setdefault("description", "the next_cursor of the previous page; absent for the first page")
        metadata.setdefault("maxLength", paging.MAX_CURSOR_CHARS)
        super().__init__(*args, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return paging.decode(text)
        except paging.BadCursor as exc:
            raise ValidationError(str(exc)) from exc


def page_limit(default: int, maximum: int, what: str = "items") -> fields.Integer:
    """`limit`: how many items a page holds, bounded."""
    return fields.Integer(load_default=default, validate=validate.Range(min=1, max=maximum),
                          metadata={"description": f"{what} per page, 1 .. {maximum}"})
