"""The real-mail corpus the tests read (see SOURCES.md here).

`mail/` here holds the permissively licensed files (MIT, BSD, Apache-2.0, PSF), so a fresh clone
has them. The GPL/AGPL ones live only in ../shared/corpus/mail beside the project; they are read
from there when that folder exists, and a test that needs one skips when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

DIR = Path(__file__).resolve().parent
LOCAL = DIR / "mail"
SHARED = DIR.parents[2] / "shared" / "corpus" / "mail"

# The files left in ../shared/corpus/mail because of their license.
SHARED_ONLY = frozenset(
    {
        "joruri__euc-jp.eml",  # GPL-3.0
        "joruri__invalid_charset_utf-8.eml",  # GPL-3.0
        "joruri__invalid_semicolon.eml",  # GPL-3.0
        "joruri__rfc2047.eml",  # GPL-3.0
        "joruri__rfc2231.eml",  # GPL-3.0
        "joruri__unicode-1-1-utf-7.eml",  # GPL-3.0
        "kopano__kc-138-1.eml",  # AGPL-3.0
        "kopano__unknown-text-charset.eml",  # AGPL-3.0
    }
)


def local_names() -> list[str]:
    return sorted(p.name for p in LOCAL.glob("*.eml"))


def shared_names() -> list[str]:
    return sorted(p.name for p in SHARED.glob("*.eml")) if SHARED.is_dir() else []


def names() -> list[str]:
    """Every corpus file name, whether or not its file is here: the local ones, the shared-only
    ones (which skip without ../shared) and whatever ../shared holds besides."""
    return sorted({*local_names(), *SHARED_ONLY, *shared_names()})


def files() -> list[Path]:
    """Every corpus file that can be read now, by name: tests/corpus/mail first, then the files of
    ../shared/corpus/mail (when it exists) that are not copied here."""
    found = {p.name: p for p in SHARED.glob("*.eml")} if SHARED.is_dir() else {}
    found.update((p.name, p) for p in LOCAL.glob("*.eml"))
    return [found[name] for name in sorted(found)]


def path(name: str) -> Path:
    """The corpus file `name`, local first; skips the test if it is a shared-only file and
    ../shared/corpus/mail is absent (any other missing file fails)."""
    local = LOCAL / name
    if local.is_file():
        return local
    if SHARED.is_dir():
        return SHARED / name
    if name in SHARED_ONLY:
        pytest.skip(f"{name} (GPL/AGPL) is only in ../shared/corpus/mail, which is absent")
    return local


def read(name: str) -> bytes:
    return path(name).read_bytes()
