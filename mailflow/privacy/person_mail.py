"""The person's own messages in the mailbox, on erasure (`[privacy] erase_mailbox`): "leave" them
(the default: the mailbox is the company's mail system, kept under its own policy), "move" them
to `erase_folder` (created when missing; a folder mailflow never watches) or "delete" them (UID
EXPUNGE, never a plain EXPUNGE; Gmail files them in Trash). A message is theirs when its From,
To or Cc names one of their addresses (the server's SEARCH), in every selectable folder but the
erase folder itself. The IMAP edge of erasure: the store is erased first, this comes after.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from imapclient.exceptions import IMAPClientError

from mailflow.errors import MailflowError
from mailflow.mailbox.imap import Mailbox
from mailflow.privacy.person import Person
from mailflow.settings.config import Config

log = logging.getLogger("mailflow.privacy")

_UNSELECTABLE = (b"\\Noselect", b"\\NonExistent")


def criteria(emails: Sequence[str]) -> list[str | bytes]:
    """SEARCH criteria: From, To or Cc carries any of `emails`."""
    terms: list[list[str | bytes]] = [[field, e] for e in emails for field in ("FROM", "TO", "CC")]
    found: list[str | bytes] = terms[-1]
    for term in reversed(terms[:-1]):
        found = ["OR", *term, *found]
    return found


def erase_messages(config: Config, people: Sequence[Person]) -> Counter[str]:
    """Move or delete the people's messages as the config says; counts by what was done."""
    mode, done = config.privacy.erase_mailbox, Counter[str]()
    emails = sorted({e for p in people for e in p.emails})
    if mode == "leave" or not emails:
        return done
    mailbox: Mailbox | None = None
    try:
        mailbox = Mailbox(config.mailbox, config.imap_password())
        mailbox.connect()
        target = config.privacy.erase_folder.replace("/", mailbox.delimiter)
        if mode == "move":
            mailbox.ensure(target)
        for flags, _delimiter, name in mailbox.client.list_folders():
            if name == target or any(f in flags for f in _UNSELECTABLE):
                continue
            mailbox.select(name)
            uids = mailbox.search(criteria(emails))
            if not uids:
                continue
            if mode == "move":
                _move(mailbox, uids, target)
            else:
                mailbox.remove(uids)
            done["mail_moved" if mode == "move" else "mail_deleted"] += len(uids)
    except (MailflowError, IMAPClientError, OSError) as exc:
        log.error("erasure: the mailbox was not reached (%s); the person's mail is still there",
                  type(exc).__name__)
        done["mailbox_unreachable"] = 1
    finally:
        if mailbox is not None:
            mailbox.close()
    return done


def _move(mailbox: Mailbox, uids: list[int], target: str) -> None:
    if mailbox.has("MOVE"):
        mailbox.client.move(uids, target)
    else:
        mailbox.client.copy(uids, target)
        mailbox.remove(uids)
