"""One rooted error hierarchy: everything mailflow raises for a user derives from MailflowError."""

from __future__ import annotations

from dataclasses import dataclass


class MailflowError(Exception):
    """Base of every error mailflow reports to a user (one line, no traceback)."""

    exit_code = 1


class UnreadableMail(MailflowError):
    """A mail that cannot be read at all (nested too deep, …): quarantined at once with the
    reason, never taken for something else; `quarantine replay` tries it again."""


class UsageError(MailflowError):
    """Bad command line or configuration (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: where it stands and what is expected."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class ProblemsError(UsageError):
    """A file (config, rules, templates) has problems; all of them are listed at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class MissingSecret(UsageError):
    """A secret's environment variable is not set when it is needed."""


class StoreLocked(MailflowError):
    """Another process already writes the store."""


class StoreError(MailflowError):
    """The store cannot be opened or is damaged."""


class StoreFull(StoreError):
    """The disk under the store is full: the write was rolled back. Said once, by the store
    (`logged_once`): a catch-all that logs it again drops it (mailflow/logs.py)."""

    logged_once = True


class NoStore(StoreError):
    """No store yet: the daemon (or an import) has not created it. Read commands show an empty
    pool."""
