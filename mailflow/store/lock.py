"""The writer lock: one process writes a store, a second writer is refused.

`WriterLock` takes an exclusive `fcntl.flock` on `data_dir/writer.lock` and writes the holder's pid
and command into the file, so that the refusal can name who holds it: the program and its command
words only (`mailflow erase`), never its arguments, which may name a person
(`mailflow erase taro@example.jp`) and would stay in the data directory after a `kill -9`. The
kernel releases a flock when the last descriptor of its open file goes away, so a writer that
dies — even by `kill -9` — leaves no stale lock behind; the file itself stays (it is never
unlinked: removing a lock file lets two processes lock two different inodes).

flock locks belong to an open file description: a second `WriterLock` on the same directory is
refused even inside the same process. The descriptor is close-on-exec, so programs the daemon
starts do not inherit the lock (a bare `os.fork` without exec would share it).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import re
import sys
from pathlib import Path
from types import TracebackType

from mailflow.errors import StoreLocked

LOCK_NAME = "writer.lock"


_WORD = re.compile(r"^[a-z][a-z-]*$")


def _command_line() -> str:
    """The running command, as a user would recognise it (`mailflow run`): the program and the
    command words before the first option or argument."""
    argv = list(sys.argv) or ["python"]
    program = Path(argv[0]).name or argv[0]
    if program == "__main__.py":  # python -m mailflow
        program = "mailflow"
    words = list(itertools.takewhile(_WORD.match, argv[1:]))
    return " ".join([program, *words])[:200]


class WriterLock:
    """An exclusive, process-lifetime lock on a data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise `StoreLocked` naming the process that holds it."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(fd)
            os.close(fd)
            raise StoreLocked(
                f"store {self.data_dir} is being written by {holder}; "
                "stop it or send the command through the running daemon"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n{_command_line()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # still locked here: nobody reads a stale pid after us
        os.close(fd)  # closing the last descriptor drops the flock

    @staticmethod
    def _read_holder(fd: int) -> str:
        try:
            text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        except OSError:
            text = ""
        lines = text.splitlines()
        if not lines or not lines[0].strip().isdigit():
            return "another process (pid unknown)"
        command = lines[1].strip() if len(lines) > 1 else ""
        return f"pid {lines[0].strip()}" + (f" ({command})" if command else "")

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
