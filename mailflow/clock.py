"""The clock is injected: logic asks a Clock, never the system directly."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

CLOCK_FILE_ENV = "MAILFLOW_CLOCK_FILE"


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock for tests: it moves only when told to."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)


class FileClock:
    """A test hook, never for production: the time is the ISO 8601 text in a file, read at every
    call, so a test can move a daemon running in another process across a due time. The daemon
    uses it only when $MAILFLOW_CLOCK_FILE names the file (see `default_clock`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        return parse_iso(self.path.read_text(encoding="utf-8").strip())


def default_clock() -> Clock:
    """The system clock; a `FileClock` when $MAILFLOW_CLOCK_FILE is set (tests only)."""
    path = os.environ.get(CLOCK_FILE_ENV)
    return FileClock(Path(path)) if path else SystemClock()


def iso(at: datetime) -> str:
    """ISO 8601 in UTC with a Z, the one form times are stored in."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
