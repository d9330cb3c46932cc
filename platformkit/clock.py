"""The platform's day: Vietnam's (Asia/Ho_Chi_Minh, UTC+7, no daylight saving), whatever the
server's time zone, so that every service agrees what "today" is between 17:00 and 24:00 UTC."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

VIETNAM = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")


def today() -> date:
    return datetime.now(VIETNAM).date()
