"""The folders the daemon watches, by role, as the configuration asks for them."""

from __future__ import annotations

from mailflow.settings.config import Config


def watched_folders(config: Config) -> list[tuple[str, str, bool]]:
    """(role, configured name, create if missing) of each folder the daemon watches; a missing
    folder is created at run time (HR's client may not have made Sent or the outbox yet)."""
    folders = [("inbox", config.mailbox.inbox, False), ("sent", config.mailbox.sent, True)]
    if config.rejection.mode in ("rewrite", "both"):
        folders.append(("drafts", config.mailbox.drafts, True))
    if config.rejection.mode in ("send", "both"):
        folders.append(("outbox", config.rejection.outbox_folder, True))
    return folders
