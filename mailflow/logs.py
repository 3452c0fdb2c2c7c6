"""Logging to stderr, plain or JSON lines, or journal lines under systemd. Lines name the message
or event they are about (`inbox:1712345:42:ab12cd34ef56`), never a person: no names, addresses or
subjects.

Journal lines (`fmt="journal"`, and "plain" whenever stderr is connected to the journal, which
systemd tells through $JOURNAL_STREAM) carry no time of their own, since journald stamps each
line, and start with the syslog priority, `<3>` error … `<7>` debug (sd-daemon(3)), so that
`journalctl -p warning` sees the levels; every line of a traceback carries its record's.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TextIO

# logging's levels as syslog priorities; a level in between gets the one of the level below it
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
              (logging.INFO, 6), (logging.DEBUG, 7))


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class JournalLines(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def priority(level: int) -> int:
    return next((number for floor, number in PRIORITIES if level >= floor), 7)


def to_journal(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `stream` is the journal stream systemd connected: $JOURNAL_STREAM is
    "DEVICE:INODE" of it (a child whose stderr was redirected elsewhere inherits the
    variable, so the numbers are compared, as systemd.exec(5) says)."""
    device, _sep, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        status = os.fstat(stream.fileno())
        return (status.st_dev, status.st_ino) == (int(device), int(inode))
    except (OSError, ValueError, AttributeError):
        return False


def not_said_again(record: logging.LogRecord) -> bool:
    """False for a record carrying an error that has its own one line already (`logged_once`,
    e.g. a full disk): a catch-all's traceback of it would flood the log."""
    error = record.exc_info[1] if record.exc_info else None
    while error is not None:
        if getattr(error, "logged_once", False):
            return False
        error = error.__cause__ or error.__context__
    return True


def setup(fmt: str = "plain", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(not_said_again)
    if fmt == "json":
        handler.setFormatter(JsonLines())
    elif fmt == "journal" or to_journal(sys.stderr):
        handler.setFormatter(JournalLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("imapclient", "aiosmtpd", "mail.log", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
