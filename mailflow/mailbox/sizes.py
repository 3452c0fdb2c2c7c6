"""Mail size: which messages are fetched together, and what a mail over the limit is called.

Pure. The mailbox edge asks the server for every message's RFC822.SIZE first; `fetch_batches`
groups the UIDs so that one FETCH brings at most `max_count` messages and `max_bytes` bytes (a
message larger than the budget alone), so memory follows the budget, not the folder. A mail over
`[mailbox] max_message_bytes` is never fetched whole: only its header block, from which
`oversized_key` makes its key (the body hash needs the body).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

MIB = 1024 * 1024
HEAD_BYTES = 64 * 1024  # of an oversized mail, at most this much of its header block is read


def fetch_batches(sizes: Iterable[tuple[int, int]], max_count: int, max_bytes: int,
                  limit: int | None = None) -> list[tuple[list[int], bool]]:
    """(uid, size) pairs, in order, cut into batches of at most `max_count` UIDs whose sizes add
    up to at most `max_bytes`, each with whether it is fetched whole; a message larger than
    `max_bytes` is a batch of its own, and so is one over `limit` (not whole). The order stays:
    the checkpoint moves past a message only once every one before it was handed over."""
    batches: list[tuple[list[int], bool]] = []
    batch: list[int] = []
    total = 0
    for uid, size in sizes:
        over = limit is not None and size > limit
        if batch and (over or len(batch) >= max_count or total + size > max_bytes):
            batches.append((batch, True))
            batch, total = [], 0
        if over:
            batches.append(([uid], False))
            continue
        batch.append(uid)
        total += size
    if batch:
        batches.append((batch, True))
    return batches


def size_text(size: int) -> str:
    """A size in MiB with one decimal, "25 MiB" rather than "25.0 MiB"; small ones in KiB."""
    if size < MIB:
        return f"{size / 1024:.1f}".removesuffix(".0") + " KiB"
    return f"{size / MIB:.1f}".removesuffix(".0") + " MiB"


def too_large(size: int, limit: int) -> str:
    """The quarantine reason of a mail over the limit, e.g. "too large: 57.3 MiB > 25 MiB
    limit ([mailbox] max_message_bytes)"."""
    return (f"too large: {size_text(size)} > {size_text(limit)} limit "
            "([mailbox] max_message_bytes)")


def oversized_key(head: bytes, message_id: str, size: int) -> str:
    """The key of a mail known by its header block and size only: the same mail seen again
    (after a UIDVALIDITY change) has the same key. It differs from the key the whole mail would
    have (`pipeline.message_key`), so a replay records the mail under its real key."""
    digest = hashlib.sha256(b"oversized\0")
    digest.update(message_id.encode() if message_id else head)
    digest.update(b"\0%d" % size)
    return digest.hexdigest()[:40]
