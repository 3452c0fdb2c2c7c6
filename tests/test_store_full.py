"""A full disk under the store (issue 21, found by tests/chaos/test_disk_full.py): a write is
rolled back and raises StoreFull, the first one logs one error line and the rest none, a
read-only transaction proves nothing, the next write that goes through says space is back; a
catch-all's traceback of a StoreFull is not logged again."""

from __future__ import annotations

import errno
import logging
import sqlite3
import sys
from pathlib import Path

import pytest

from mailflow.errors import StoreFull
from mailflow.faults import DISK_FULL_ENV
from mailflow.logs import not_said_again
from mailflow.store import open_store
from mailflow.store.full import DiskWatch, disk_full
from mailflow.store.serial import SerialStore


def test_the_full_disk_errors_are_recognised_also_as_a_cause() -> None:
    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert disk_full(sqlite3.OperationalError("database or disk is full"))
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as exc:
            raise RuntimeError("writing the journal") from exc
    except RuntimeError as wrapped:
        assert disk_full(wrapped)
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(sqlite3.OperationalError("database is locked"))


def test_writes_stop_with_one_error_line_and_resume_when_space_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    flag = tmp_path / "full"
    monkeypatch.setenv(DISK_FULL_ENV, str(flag))
    changes: list[str | None] = []
    disk = DiskWatch("the test's data")
    store = SerialStore(open_store(tmp_path / "data"), disk)
    disk.on_change = lambda: changes.append(disk.full)
    try:
        store.put("settings", "before", {"n": 0})
        flag.touch()
        caplog.set_level(logging.INFO, "mailflow.store")
        for n in range(3):
            with pytest.raises(StoreFull), store.transaction():
                store.put("settings", f"in-{n}", {"n": n})
            with pytest.raises(StoreFull):
                store.append("events", {"type": "x"})
        with store.transaction():  # reads only: the disk is not proven free
            assert store.get("settings", "before") == {"n": 0}
        assert disk.full and "full" in disk.full
        assert [r.levelname for r in caplog.records] == ["ERROR"]
        assert store.get("settings", "in-0") is None and store.count("events") == 0
        flag.unlink()
        store.put("settings", "after", {"n": 1})
    finally:
        store.close()
    assert disk.full is None
    assert [r.levelname for r in caplog.records] == ["ERROR", "INFO"]
    assert "writes resume" in caplog.records[-1].getMessage()
    assert [bool(change) for change in changes] == [True, False]


def test_a_catch_all_traceback_of_a_full_disk_is_not_logged_again() -> None:
    def record(error: BaseException | None) -> logging.LogRecord:
        info = (type(error), error, None) if error else None
        return logging.LogRecord("mailflow.web", logging.ERROR, __file__, 1, "batch not recorded",
                                 None, info)

    try:
        raise RuntimeError("the batch") from StoreFull("the disk is full")
    except RuntimeError:
        wrapped = sys.exc_info()[1]
    assert not not_said_again(record(StoreFull("the disk is full")))
    assert not not_said_again(record(wrapped))
    assert not_said_again(record(ValueError("something else")))
    assert not_said_again(record(None))
