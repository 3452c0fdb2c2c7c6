"""The pipeline: an ordered list of small stages each message goes through.

A message is identified by (folder, UIDVALIDITY, UID) and recognised by its key: Message-ID plus
a hash of its body, so the same mail seen again after a UIDVALIDITY change is not handled twice.
A stage that raises fails the whole message; the store changes of that attempt are rolled back.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from mailflow.clock import Clock, iso
from mailflow.store.base import Store

if TYPE_CHECKING:
    from mailflow.mailbox.imap import Mailbox

log = logging.getLogger("mailflow.pipeline")

_MESSAGE_ID = re.compile(
    rb"^message-id:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE
)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    """Header block and body of a raw message (body empty when there is no blank line)."""
    match = _HEADER_END.search(raw)
    if not match:
        return raw, b""
    return raw[: match.start()], raw[match.end() :]


def raw_message_id(raw: bytes) -> str:
    head, _body = split_head(raw)
    match = _MESSAGE_ID.search(head)
    if not match:
        return ""
    return re.sub(rb"\s+", b"", match.group(1)).decode("ascii", "replace")


def message_key(raw: bytes) -> str:
    """Message-ID plus body hash; without a Message-ID the headers are hashed in too."""
    head, body = split_head(raw)
    message_id = raw_message_id(raw)
    digest = hashlib.sha256()
    digest.update(message_id.encode() if message_id else head)
    digest.update(b"\0")
    digest.update(body.replace(b"\r\n", b"\n"))
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

    @cached_property
    def key(self) -> str:
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
