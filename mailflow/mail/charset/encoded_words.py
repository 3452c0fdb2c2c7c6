"""RFC 2047 encoded-words in headers (``=?ISO-2022-JP?B?...?=``) decoded to text.

Each word's bytes are decoded with `decode_text`, so a header gets the same Japanese-correct
decoding as a body. Raw 8-bit bytes that senders put in headers without any encoding are
decoded the same way, as unlabelled bytes.
"""

from __future__ import annotations

import base64
import binascii
import re

from mailflow.mail.charset.decode import decode_text

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([BbQq])\?([^?]*)\?=")
_FOLD = re.compile(r"\r?\n[ \t]")


def decode_header_words(value: str) -> str:
    """Decode RFC 2047 encoded-words (and raw 8-bit text smuggled in as surrogates) to str.

    Adjacent encoded-words in the same charset are joined before decoding, so a multibyte
    character split between two words (as ISO-2022-JP and UTF-8 senders do) stays whole.
    Whitespace between encoded-words is dropped, as RFC 2047 requires.
    """
    value = _FOLD.sub(" ", _raw_header_to_str(value))
    out: list[str] = []
    pending: list[tuple[str, bytes]] = []
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        if between and (not pending or between.strip()):
            out.append(_flush(pending))
            out.append(between)
        label, kind, payload = match.groups()
        pending.append((label.split("*", 1)[0].lower(), _word_bytes(kind, payload)))
        pos = match.end()
    out.append(_flush(pending))
    out.append(value[pos:])
    return "".join(out)


def _raw_header_to_str(value: str) -> str:
    """Turn surrogate-escaped raw 8-bit header bytes (as ``email`` keeps them) into text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("utf-8", errors="surrogateescape")
    return decode_text(raw, None).text


def _word_bytes(kind: str, payload: str) -> bytes:
    if kind in "Bb":
        data = payload.encode("ascii", errors="ignore")
        data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        data += b"=" * (-len(data) % 4)
        try:
            return base64.b64decode(data)
        except (binascii.Error, ValueError):
            return payload.encode("ascii", errors="replace")
    text = payload.replace("_", " ").encode("latin-1", errors="replace")
    return binascii.a2b_qp(text)


def _flush(pending: list[tuple[str, bytes]]) -> str:
    parts: list[str] = []
    while pending:
        label, data = pending.pop(0)
        while pending and pending[0][0] == label:
            data += pending.pop(0)[1]
        parts.append(decode_text(data, label).text)
    return "".join(parts)
