"""A full disk under the store: writes stop safely (the transaction is rolled back, nothing is
half written), the daemon says so once (one error line, `/healthz` unhealthy), and writes resume
by themselves when a later write succeeds.

`disk_full(exc)` recognises the file system's ENOSPC or EDQUOT and SQLite's SQLITE_FULL, also
as the cause of another error; `DiskWatch` holds the state, told by `SerialStore` how each write
ended. Nothing waits in memory meanwhile: mail stays on the server behind its checkpoint, a
callback is answered 503 so the partner sends it again.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
from collections.abc import Callable

from mailflow.errors import StoreFull

log = logging.getLogger("mailflow.store")

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def disk_full(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        if isinstance(exc, sqlite3.Error) and (
                getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                or "database or disk is full" in str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class DiskWatch:
    """Whether the last write found the disk full; `on_change` is called when that changes."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.full: str | None = None  # the health reason while full
        self.on_change: Callable[[], None] | None = None
        self._guard = threading.Lock()

    def failed(self, exc: BaseException) -> StoreFull:
        """A write failed for want of space: the error to raise in its place (said once)."""
        with self._guard:
            first = self.full is None
            self.full = f"store: the disk under {self.where} is full; writes stopped"
        if first:
            log.error("store: the disk under %s is full (%s): writes stopped, nothing is lost; "
                      "new mail waits on the server and callbacks are refused until space "
                      "returns", self.where, exc)
            self._changed()
        return StoreFull(self.full)

    def wrote(self) -> None:
        """A write went through: space is back, if it was gone."""
        if self.full is None:
            return
        with self._guard:
            was, self.full = self.full, None
        if was is not None:
            log.info("store: disk space is back under %s: writes resume", self.where)
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
