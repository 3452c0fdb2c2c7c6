"""Fetching one message again, for the replay of a mail quarantined as too large (its body was
never kept): a connection of its own, the folder's UIDVALIDITY checked, the size limit in force
now applied (still over it, only the header block comes)."""

from __future__ import annotations

from collections.abc import Callable

from imapclient.exceptions import IMAPClientError

from mailflow.errors import MailflowError
from mailflow.mailbox.imap import Mailbox
from mailflow.mailbox.oauth import TokenSource
from mailflow.mailbox.pipeline import Incoming
from mailflow.settings.config import Mailbox as MailboxSettings


class Refetcher:
    """`Intake.refetch` in the daemon: `password` is read when a replay needs it."""

    def __init__(self, settings: MailboxSettings, password: Callable[[], str],
                 tokens: TokenSource | None = None) -> None:
        self.settings = settings
        self.password = password
        self.tokens = tokens

    def __call__(self, folder: str, role: str, uidvalidity: int, uid: int) -> Incoming:
        mailbox = Mailbox(self.settings, self.password(), self.tokens)
        mailbox.connect()
        try:
            return self._fetch(mailbox, folder, role, uidvalidity, uid)
        except (OSError, IMAPClientError) as exc:
            raise MailflowError(f"IMAP: {exc}") from exc
        finally:
            mailbox.close()

    def _fetch(self, mailbox: Mailbox, folder: str, role: str, uidvalidity: int,
               uid: int) -> Incoming:
        state = mailbox.select(folder)
        if state.uidvalidity != uidvalidity:
            raise MailflowError(f"{folder}'s UIDVALIDITY changed ({uidvalidity} -> "
                                f"{state.uidvalidity}) since; `mailflow backfill {folder}` "
                                "takes the mail in under the limit now")
        limit = self.settings.max_message_bytes
        fetched = next(iter(mailbox.fetch([uid], limit)), None)
        if fetched is None:
            raise MailflowError(f"UID {uid} is no longer in {folder}")
        return Incoming.fetched(folder, role, uidvalidity, fetched, limit)
