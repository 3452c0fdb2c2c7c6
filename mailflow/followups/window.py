"""When a follow-up mail may go: the polite sending window (some weekdays, business hours, no
public holidays) and the limits (`per_hour` mails in any hour, one per candidate per
`per_candidate`). A mail outside them is postponed, never skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from mailflow.clock import iso, parse_iso
from mailflow.settings.config import Config
from mailflow.settings.durations import parse_delay
from mailflow.store.base import Store

if TYPE_CHECKING:
    from holidays import HolidayBase

RATE = "followups-rate"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Window:
    """The polite sending window: some weekdays, business hours, no public holidays."""

    def __init__(self, days: Iterable[str], start: str, end: str, zone: ZoneInfo,
                 country: str = "JP") -> None:
        self.days = {WEEKDAYS.index(day) for day in days}
        self.start, self.end = (int(t[:-3]) * 60 + int(t[-2:]) for t in (start, end))
        self.zone = zone
        self.country = country

    @cached_property
    def holidays(self) -> HolidayBase | None:
        """The country's calendar, made at the first question: `holidays` imports every
        country's module to make one (150–400 ms), off the daemon's way to ready."""
        import holidays

        return holidays.country_holidays(self.country) if self.country else None

    @classmethod
    def from_config(cls, config: Config) -> Window:
        f = config.followups
        return cls(f.days, f.start, f.end, config.zone, f.holidays)

    def open_day(self, day: date) -> bool:
        # `is not None`: a holidays object is empty (falsy) until a year is looked up
        return day.weekday() in self.days and not (self.holidays is not None
                                                   and day in self.holidays)

    def opening(self, at: datetime) -> datetime:
        """`at` when the window is open then, else the next time it opens."""
        local = at.astimezone(self.zone)
        for offset in range(0, 400):
            day = local.date() + timedelta(days=offset)
            if not self.open_day(day):
                continue
            midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
            start = midnight + timedelta(minutes=self.start)
            end = midnight + timedelta(minutes=self.end)
            if offset == 0 and local >= end:
                continue
            return max(start, local) if offset == 0 else start
        raise ValueError("the sending window never opens (check [followups] days)")


@dataclass(frozen=True)
class Postpone:
    at: datetime
    why: str


class Limits:
    """The window and the limits of `[followups]`, over the mails sent (the "settings" entry
    `RATE` keeps the last hour's send times) and the rows already mailed."""

    def __init__(self, store: Store, config: Config, window: Window) -> None:
        self.store = store
        self.config = config
        self.window = window
        self.zone = config.zone

    def wait(self, candidate_id: str, now: datetime) -> Postpone | None:
        """None when a mail to the candidate may go now, else until when it waits, and why."""
        opening = self.window.opening(now)
        if opening > now:
            return Postpone(opening, "outside the sending window")
        full = self.hour_full(now)
        if full is not None:
            return Postpone(full, f"{self.config.followups.per_hour} mails this hour")
        last = self.last_mail(candidate_id)
        period = self.config.followups.per_candidate
        if last is not None:
            free = parse_delay(period).after(last, self.zone)
            if free > now:
                return Postpone(free, f"one follow-up per candidate per {period}")
        return None

    def hour_full(self, now: datetime) -> datetime | None:
        """When the hour is full: the time its oldest minute leaves it. Mails are counted per
        minute (at most 61 counts kept, so a tick's cost does not grow with what it sends), and
        a minute counts while any of it is within the hour: never more than `per_hour` in any
        60 minutes."""
        recent = self._recent(now)
        if sum(recent.values()) < self.config.followups.per_hour:
            return None
        oldest = parse_iso(min(recent) + ":00Z")
        return oldest + timedelta(hours=1, minutes=1)

    def count_mail(self, now: datetime) -> None:
        recent = self._recent(now)
        minute = _minute(now)
        recent[minute] = recent.get(minute, 0) + 1
        self.store.put("settings", RATE, {"minutes": recent})

    def _recent(self, now: datetime) -> dict[str, int]:
        kept = self.store.get("settings", RATE) or {}
        minutes: dict[str, int] = dict(kept.get("minutes", {}))
        for at in kept.get("sent", []):  # the form before per-minute counts
            minutes[at[:16]] = minutes.get(at[:16], 0) + 1
        since = _minute(now - timedelta(hours=1, minutes=1))
        return {minute: n for minute, n in minutes.items() if minute > since}

    def last_mail(self, candidate_id: str) -> datetime | None:
        sent = [r["sent_at"] for r in self.store.find("followups", "candidate_id", candidate_id)
                if r["state"] == "sent" and r.get("mailed")]
        return parse_iso(max(sent)) if sent else None


def _minute(at: datetime) -> str:
    """The minute `at` falls in, as stored: `2025-06-03T01:01` (UTC; text order is time order)."""
    return iso(at)[:16]
