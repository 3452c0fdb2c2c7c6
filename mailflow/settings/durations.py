"""Durations as admins write them in rule files and the config: `12h`, `7d`, `2w`, `6mo`, `1y`
(also `7 days`, `3ヶ月`); days, months and years are counted on the local calendar."""

from __future__ import annotations

import calendar
import difflib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator

UNITS = ("h", "d", "w", "mo", "y")
_UNIT_WORDS = {
    "hour": "h", "hours": "h", "hr": "h", "hrs": "h", "day": "d", "days": "d", "week": "w",
    "weeks": "w", "wk": "w", "m": "mo", "mon": "mo", "mons": "mo", "month": "mo",
    "months": "mo", "mth": "mo", "year": "y", "years": "y", "yr": "y", "yrs": "y",
    "時間": "h", "日": "d", "週": "w", "週間": "w", "ヶ月": "mo", "か月": "mo", "カ月": "mo",
    "月": "mo", "年": "y",
}
_DELAY = re.compile(r"^\s*(\d+)\s*(\S+?)\s*$")


@dataclass(frozen=True)
class Delay:
    """A whole number of hours, days, weeks, calendar months or years (`12h 7d 2w 6mo 1y`)."""

    amount: int
    unit: str

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    def after(self, at: datetime, zone: ZoneInfo) -> datetime:
        return self._shift(at, self.amount, zone)

    def before(self, at: datetime, zone: ZoneInfo) -> datetime:
        return self._shift(at, -self.amount, zone)

    def _shift(self, at: datetime, amount: int, zone: ZoneInfo) -> datetime:
        if self.unit == "h":
            return at + timedelta(hours=amount)
        local = at.astimezone(zone)  # days, months and years are counted on the local calendar
        if self.unit in ("d", "w"):
            return local + timedelta(days=amount * (7 if self.unit == "w" else 1))
        months = local.year * 12 + local.month - 1 + amount * (12 if self.unit == "y" else 1)
        year, month = divmod(months, 12)
        day = min(local.day, calendar.monthrange(year, month + 1)[1])
        return local.replace(year=year, month=month + 1, day=day)


def parse_delay(text: str) -> Delay:
    """`7d` → Delay(7, "d"); a ValueError with a did-you-mean otherwise."""
    found = _DELAY.match(text)
    if found is None:
        raise ValueError("bad delay: expected a number and a unit, e.g. 12h, 7d, 2w, 6mo, 1y")
    amount, unit = int(found.group(1)), found.group(2)
    if unit in UNITS:
        return Delay(amount, unit)
    word = _UNIT_WORDS.get(unit.lower().rstrip("."))
    if word is None:
        close = difflib.get_close_matches(unit.lower(), [*UNITS, *_UNIT_WORDS], n=1, cutoff=0.5)
        word = (close[0] if close[0] in UNITS else _UNIT_WORDS[close[0]]) if close else None
    hint = f"did you mean '{amount}{word}'?" if word else "units: h, d, w, mo, y"
    raise ValueError(f"bad delay; {hint} (write 12h, 7d, 2w, 6mo or 1y)")


def _checked(text: str) -> str:
    parse_delay(text)
    return text


# A delay as written in a config or rule file, validated where it is read (a did-you-mean when
# it is not one).
DelayText = Annotated[str, AfterValidator(_checked)]
