"""Retention of hires (定着): of the hires made at least N months before `today`, the share that
had not left before N months had passed. None when no hire is that old yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

MONTHS = (3, 6, 12)


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it has no such day)."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    month += 1
    for candidate_day in range(day.day, 27, -1):
        try:
            return date(year, month, candidate_day)
        except ValueError:
            continue
    return date(year, month, min(day.day, 28))


def retention(hires: Iterable[tuple[date, date | None]], months: int, today: date) -> float | None:
    """`hires`: (hired on, left on or None). The share still there `months` after the hire."""
    old_enough = [(on, left) for on, left in hires if add_months(on, months) <= today]
    if not old_enough:
        return None
    stayed = sum(1 for on, left in old_enough if left is None or left >= add_months(on, months))
    return round(stayed / len(old_enough), 4)


def retentions(hires: Iterable[tuple[date, date | None]], today: date) -> dict[str, float | None]:
    listed = list(hires)
    return {f"retention_{m}m": retention(listed, m, today) for m in MONTHS}
