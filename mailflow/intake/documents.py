"""Résumés and other attachments, kept in the data directory under their content hash.

File names are never taken from the mail (a hash is the name), files and folders are owner-only,
and nothing is ever opened or executed: the bytes are written and that is all. With
`[store] keep_attachments = false` only the metadata is kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from mailflow.mail.parse import Attachment
from mailflow.pool.records import Document


class DocumentShelf:
    def __init__(self, data_dir: Path, keep_files: bool = True) -> None:
        self.root = data_dir / "attachments"
        self.keep_files = keep_files

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def keep(self, attachment: Attachment, message_id: str | None, at: str) -> Document:
        """Store the bytes (once per content) and return the metadata for the candidate."""
        stored = False
        if self.keep_files and attachment.data:
            target = self.path(attachment.sha256)
            if not target.exists():
                if not target.parent.is_dir():
                    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                    os.chmod(self.root, 0o700)
                temp = target.with_suffix(".tmp")
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as file:
                    file.write(attachment.data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temp, target)
            stored = True
        return {"sha256": attachment.sha256, "filename": attachment.filename or "",
                "content_type": attachment.content_type, "size": attachment.size,
                "message_id": message_id, "received_at": at, "stored": stored}
