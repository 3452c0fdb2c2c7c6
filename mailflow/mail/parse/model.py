"""The read-only view of a parsed mail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailflow.mail.charset import Decoded


@dataclass(frozen=True)
class Address:
    """One mailbox: display name (decoded, may be empty) and address (may be empty if broken)."""

    name: str
    email: str


@dataclass(frozen=True)
class Attachment:
    """A part that is not the body: decoded file name (if any), type, size and hash of its bytes."""

    filename: str | None
    content_type: str
    size: int
    sha256: str
    part: str  # MIME part path such as "2" or "1.3"
    inline: bool = False
    data: bytes = field(default=b"", repr=False, compare=False)  # the decoded bytes


@dataclass(frozen=True)
class BodyPart:
    """A text/plain or text/html leaf chosen as body, with how its bytes were decoded."""

    part: str
    content_type: str
    label: str | None  # the charset parameter as written, None when absent
    transfer_encoding: str
    decoded: Decoded


@dataclass(frozen=True)
class Mail:
    """Everything mailflow reads from one message; built by ``parse_mail``, never raises."""

    from_: tuple[Address, ...] = ()
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    subject: str = ""
    date: datetime | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    text: str = ""
    html: str = ""
    text_from_html: str = ""
    attachments: tuple[Attachment, ...] = ()
    body_parts: tuple[BodyPart, ...] = ()
    charset_facts: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    body_hash: str = ""
    unreadable: str = ""  # why the mail cannot be read at all (quarantined, never guessed at)

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (any case), unfolded and stripped; None if absent."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        """Every header called ``name`` (any case), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def readable_text(self) -> str:
        """The plain body, or the HTML body rendered as text when there is no plain part."""
        return self.text or self.text_from_html

    @property
    def exact(self) -> bool:
        """True when every body part decoded without replacement characters."""
        return all(part.decoded.exact for part in self.body_parts)
