"""Résumés and other attachments, kept in the data directory under their content hash.

File names are never taken from the mail (a hash is the name), files and folders are owner-only,
and nothing is ever opened or executed: the bytes are written and that is all. With
`[store] keep_attachments = false` only the metadata is kept.

A file is in place under its hash only once its bytes are on disk: it is written beside as
`.tmp`, fsynced, renamed, and its folder fsynced. Inside `grouped()` (a backfill's group of
messages, committed as one) the files are written as they come and made durable together when
the group ends, before its commit: each file fsynced once, each folder once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailflow.mail.parse import Attachment
from mailflow.pool.records import Document


class DocumentShelf:
    def __init__(self, data_dir: Path, keep_files: bool = True) -> None:
        self.root = data_dir / "attachments"
        self.keep_files = keep_files
        self._depth = 0
        self._pending: dict[Path, Path] = {}  # target -> its written, not yet durable .tmp

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def keep(self, attachment: Attachment, message_id: str | None, at: str) -> Document:
        """Store the bytes (once per content) and return the metadata for the candidate;
        outside `grouped()` the file is durable when this returns."""
        stored = False
        if self.keep_files and attachment.data:
            target = self.path(attachment.sha256)
            if target not in self._pending and not target.exists():
                if not target.parent.is_dir():
                    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                    os.chmod(self.root, 0o700)
                temp = target.with_suffix(".tmp")
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as file:
                    file.write(attachment.data)
                self._pending[target] = temp
                if not self._depth:
                    self.settle()
            stored = True
        return {"sha256": attachment.sha256, "filename": attachment.filename or "",
                "content_type": attachment.content_type, "size": attachment.size,
                "message_id": message_id, "received_at": at, "stored": stored}

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """The files kept inside are made durable together as it ends (before the caller's
        commit); on an exception they are left as `.tmp` files, never in place."""
        self._depth += 1
        try:
            yield
        except BaseException:
            if self._depth == 1:
                self._pending.clear()
            raise
        finally:
            self._depth -= 1
        if not self._depth:
            self.settle()

    def settle(self) -> None:
        """Every pending file fsynced and moved in place, then each of their folders fsynced."""
        pending, self._pending = self._pending, {}
        for temp in pending.values():
            fd = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for target, temp in pending.items():
            os.replace(temp, target)
        for folder in {target.parent for target in pending}:
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
