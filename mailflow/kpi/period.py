"""A report's period: inclusive local dates in the configured time zone (None: open-ended).

An instant belongs to the local day (and month) it falls on in that zone, not in UTC: 2026-01-31
15:30Z is 2026-02-01 00:30 in Asia/Tokyo, so February there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from mailflow.clock import parse_iso


@dataclass(frozen=True)
class Period:
    start: date | None
    end: date | None
    zone: ZoneInfo

    def day(self, at: str | datetime) -> date:
        """The local date of an ISO 8601 instant (or a plain date, taken as it is)."""
        if isinstance(at, str) and len(at) == 10:
            return date.fromisoformat(at)
        moment = parse_iso(at) if isinstance(at, str) else at
        return moment.astimezone(self.zone).date()

    def holds(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def months_between(first: date, last: date) -> list[str]:
    """Every month from `first`'s to `last`'s, inclusive, as "YYYY-MM"."""
    months: list[str] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months
