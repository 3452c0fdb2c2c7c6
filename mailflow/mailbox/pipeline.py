"""The pipeline: an ordered list of small stages each message goes through.

A message is identified by (folder, UIDVALIDITY, UID) and recognised by its key: Message-ID plus
a hash of its body, so the same mail seen again after a UIDVALIDITY change is not handled twice.
A stage that raises fails the whole message; the store changes of that attempt are rolled back.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from mailflow.clock import Clock, iso
from mailflow.mailbox.sizes import oversized_key, too_large
from mailflow.store.base import Store

if TYPE_CHECKING:
    from mailflow.mailbox.imap import Fetched, Mailbox

log = logging.getLogger("mailflow.pipeline")

_MESSAGE_ID = re.compile(
    rb"^message-id:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE
)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _head_end(raw: bytes) -> tuple[int, int]:
    """Where the header block ends and the body begins (both len(raw) without a blank line)."""
    match = _HEADER_END.search(raw)
    return (match.start(), match.end()) if match else (len(raw), len(raw))


def raw_message_id(raw: bytes) -> str:
    match = _MESSAGE_ID.search(raw[: _head_end(raw)[0]])
    if not match:
        return ""
    return re.sub(rb"\s+", b"", match.group(1)).decode("ascii", "replace")


_HASH_CHUNK = 1 << 20


def message_key(raw: bytes) -> str:
    """Message-ID plus body hash; without a Message-ID the headers are hashed in too. The body
    is hashed with CRLF as LF a chunk at a time, never copied whole (a mail may be 25 MB)."""
    head_end, body_start = _head_end(raw)
    message_id = raw_message_id(raw)
    digest = hashlib.sha256()
    digest.update(message_id.encode() if message_id else raw[:head_end])
    digest.update(b"\0")
    body = memoryview(raw)[body_start:]
    carried = b""
    for start in range(0, len(body), _HASH_CHUNK):
        chunk = carried + bytes(body[start : start + _HASH_CHUNK])
        # a CR at a chunk's end may begin a CRLF: it waits for the next chunk
        chunk, carried = (chunk[:-1], b"\r") if chunk.endswith(b"\r") else (chunk, b"")
        digest.update(chunk.replace(b"\r\n", b"\n"))
    digest.update(carried)
    return digest.hexdigest()[:40]


@dataclass
class Incoming:
    """One message handed to the pipeline."""

    folder: str
    role: str
    uidvalidity: int
    uid: int
    raw: bytes
    flags: tuple[bytes, ...] = ()
    mailbox: Mailbox | None = field(default=None, repr=False)
    size: int = 0  # the server's RFC822.SIZE (0: not asked)
    too_large: str = ""  # over the size limit, why: then `raw` is the header block only

    @classmethod
    def fetched(cls, folder: str, role: str, uidvalidity: int, fetched: Fetched, limit: int,
                mailbox: Mailbox | None = None) -> Incoming:
        """A message as the mailbox fetched it under `limit` (bytes)."""
        reason = "" if fetched.whole else too_large(fetched.size, limit)
        return cls(folder, role, uidvalidity, fetched.uid, fetched.raw, fetched.flags, mailbox,
                   fetched.size, reason)

    @cached_property
    def key(self) -> str:
        """The message key (`message_key`); of a mail over the size limit, one from its header
        block and size (`sizes.oversized_key`)."""
        if self.too_large:
            return oversized_key(self.raw, raw_message_id(self.raw), self.size)
        return message_key(self.raw)

    @property
    def identity(self) -> str:
        """What "handled once" means: this message in this role. The same mail in INBOX (a Cc
        to the recruiting address) and in Sent is two things to handle, not one."""
        return f"{self.role}:{self.key}"

    @property
    def ref(self) -> str:
        """How logs name this message: no personal data, only where it is and its key."""
        return f"{self.role}:{self.uidvalidity}:{self.uid}:{self.key[:12]}"


class Stage(Protocol):
    name: str

    def handle(self, message: Incoming) -> None: ...


@runtime_checkable
class GroupedStage(Stage, Protocol):
    """A stage that writes files beside the store (résumés) and can make a whole group of
    messages' files durable at once, as the group ends and before its commit."""

    def grouped(self) -> AbstractContextManager[None]: ...


class Receipt:
    """Records each message's identity and folder: the proof that the loop handed it over."""

    name = "receipt"

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def handle(self, message: Incoming) -> None:
        self.store.append(
            "events",
            {
                "type": "message_handled",
                "candidate_id": None,
                "at": iso(self.clock.now()),
                "data": {"key": message.key, "folder": message.folder, "uid": message.uid,
                         "uidvalidity": message.uidvalidity, "role": message.role},
            },
        )


class StageFailed(Exception):
    def __init__(self, stage: str, cause: BaseException) -> None:
        self.stage = stage
        self.cause = cause
        super().__init__(f"stage {stage}: {type(cause).__name__}: {cause}")


class Pipeline:
    def __init__(self, stages: list[Stage]) -> None:
        self.stages = stages

    def run(self, message: Incoming) -> None:
        """Run every stage whose role filter admits the message; raise StageFailed on error."""
        for stage in self.stages:
            roles = getattr(stage, "roles", None)
            if roles is not None and message.role not in roles:
                continue
            try:
                stage.handle(message)
            except Exception as exc:
                raise StageFailed(stage.name, exc) from exc

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """Messages run inside are one group to the stages that write files (`GroupedStage`):
        their files become durable together as it ends; the caller commits after it."""
        with ExitStack() as stack:
            for stage in self.stages:
                if isinstance(stage, GroupedStage):
                    stack.enter_context(stage.grouped())
            yield
