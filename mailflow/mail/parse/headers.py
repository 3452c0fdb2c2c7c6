"""Header fields: unfolding, addresses, dates and message ids (pure)."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime

from mailflow.mail.charset import decode_header_words, decode_text
from mailflow.mail.parse.model import Address

_FOLD = re.compile(r"\r?\n(?=[ \t])")
_RAW_BYTE = re.compile("[\udc80-\udcff]")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_BARE_EMAIL = re.compile(r"[^\s<>\"',;:()\[\]]+@[^\s<>\"',;:()\[\]]+")


def unfold(value: str) -> str:
    """Remove folding line breaks and turn raw 8-bit bytes (surrogate escapes) into text."""
    value = _FOLD.sub("", value).strip()
    if not value.isascii() and _RAW_BYTE.search(value):
        raw = value.encode("utf-8", errors="surrogateescape")
        value = decode_text(raw, None).text
    return value


def one_line(text: str) -> str:
    """`text` without control characters or line breaks (CR, LF, NUL, ESC, U+2028 …), each run
    of them and of spaces one space: what may reach a header or a terminal, sanitised at the
    door (an encoded-word may decode to "太郎\r\nBcc: victim@example.org")."""
    cleaned = "".join(" " if unicodedata.category(c) in _BREAKS or c.isspace() else c
                      for c in text)
    return " ".join(cleaned.split())


_BREAKS = frozenset({"Cc", "Zl", "Zp"})


def decode_words(value: str) -> str:
    """Unfold and decode RFC 2047 encoded-words, on one line."""
    return one_line(decode_header_words(unfold(value)))


def addresses(values: list[str]) -> tuple[Address, ...]:
    """Parse address headers; encoded display names are decoded, junk entries dropped."""
    found: list[Address] = []
    for value in values:
        text = unfold(value)
        parsed = [(n, e) for n, e in getaddresses([text]) if e and "@" in e]
        if not parsed or _lost_addresses(text, parsed):
            parsed = _addresses_by_pattern(text)
        found.extend(Address(one_line(decode_header_words(n)), one_line(e)) for n, e in parsed)
    return tuple(found)


def _lost_addresses(text: str, parsed: list[tuple[str, str]]) -> bool:
    """True when the header holds more addresses than were parsed (e.g. a missing comma)."""
    angle = re.findall(r"<([^<>]+@[^<>]+)>", text)
    return len(angle) > len(parsed)


def _addresses_by_pattern(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for match in re.finditer(r"([^<>,]*)<([^<>]+@[^<>]+)>", text):
        found.append((match.group(1).strip().strip('"').strip(), match.group(2)))
    if found:
        return found
    return [("", email) for email in _BARE_EMAIL.findall(text)]


def parse_date(value: str | None, problems: list[str]) -> datetime | None:
    """An aware datetime from a Date header; a bad date is recorded in ``problems``."""
    if value is None:
        return None
    text = unfold(value)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        problems.append(f"Date header is not a valid date: {text!r}")
        return None
    if when.tzinfo is None:
        problems.append(f"Date header has no time zone (read as UTC): {text!r}")
        when = when.replace(tzinfo=UTC)
    return when


def message_ids(value: str | None) -> tuple[str, ...]:
    """All ``<id>`` tokens in a header, angle brackets kept; a bare token when none is bracketed."""
    if value is None:
        return ()
    text = unfold(value)
    ids = tuple(f"<{token}>" for token in _MSG_ID.findall(text))
    if ids:
        return ids
    bare = text.split()
    return (bare[0],) if bare else ()
