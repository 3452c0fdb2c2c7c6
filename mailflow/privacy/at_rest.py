"""Personal data safe at rest: the files mailflow writes are owner-only whatever the umask, and
the daemon refuses a data directory other users can read or write.

Every file comes into being owner-only by itself (the store engines chmod their files, 0600;
attachments, the writer lock, the control socket and exports are created 0600 in 0700
folders), and the processes that write — the daemon and the commands run without it — also set
the umask to 077 first (`owner_only_umask`), so nothing a library creates is readable by others
either. A data directory that already exists with group or other bits (`mkdir data` under umask
022 gives 0755) is refused at start with the fix named: `chmod 700 DIR`; mailflow does not
chmod a directory it did not make (it may be shared on purpose, and then it must not hold
personal data).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mailflow.errors import UsageError

UMASK = 0o077


def owner_only_umask() -> int:
    """Set the process's umask to 077 (files 0600, folders 0700); returns the old one."""
    return os.umask(UMASK)


def data_dir_problem(data_dir: Path) -> str | None:
    """Why `data_dir` may not hold personal data, or None (also when it does not exist yet:
    the store makes it 0700)."""
    try:
        mode = stat.S_IMODE(os.stat(data_dir).st_mode)
    except FileNotFoundError:
        return None
    if mode & 0o077:
        return (f"the data directory is open to other users (mode {mode:04o}); candidates' "
                f"personal data must be owner-only: run `chmod 700 {data_dir}`")
    return None


def check_data_dir(data_dir: Path) -> None:
    """Refuse (exit 2) a data directory others can read or write."""
    problem = data_dir_problem(data_dir)
    if problem:
        raise UsageError(f"{data_dir}: {problem}")


def private_dir(path: Path) -> None:
    """Make `path` (and missing parents, as usual) a 0700 folder, whatever the umask."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def write_private(path: Path, data: bytes) -> None:
    """Write a new 0600 file (never over an existing one), durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
