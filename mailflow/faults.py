"""Named crash points for the crash tests: with MAILFLOW_CRASH_AT=<name> in the environment the
process kills itself with SIGKILL when it reaches that point, exactly as `kill -9` would there.
Unset (always, in production), a point costs one dictionary lookup.

A full disk for tests that cannot mount a small file system: with MAILFLOW_FAULT_DISK_FULL=<file>
set and that file present, every store write fails with ENOSPC, as on a full disk."""

from __future__ import annotations

import errno
import os
import signal

DISK_FULL_ENV = "MAILFLOW_FAULT_DISK_FULL"


def point(name: str) -> None:
    if os.environ.get("MAILFLOW_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def disk_space() -> None:
    """Raise ENOSPC while the test's flag file exists (see the module's docstring)."""
    flag = os.environ.get(DISK_FULL_ENV)
    if flag and os.path.exists(flag):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), flag)
