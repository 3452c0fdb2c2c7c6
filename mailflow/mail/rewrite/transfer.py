"""Content-Transfer-Encoding: decode a body's bytes, and encode new bytes for one body.

Identity encodings are ``7bit``, ``8bit`` and ``binary`` (and their common misspellings seen in
real mail: ``7bits``, ``7-bit``, ``8-bit``, ``8 bit``, ``8bits``). Anything else that is not base64
or quoted-printable (``x-uuencode``, ``6bit``, ``7vladi…``) is unknown: its body is not decoded.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal

Transfer = Literal["7bit", "8bit", "binary", "base64", "quoted-printable"]

_ALIASES: dict[str, Transfer] = {
    "7bit": "7bit",
    "7bits": "7bit",
    "7-bit": "7bit",
    "8bit": "8bit",
    "8bits": "8bit",
    "8-bit": "8bit",
    "8 bit": "8bit",
    "binary": "binary",
    "base64": "base64",
    "quoted-printable": "quoted-printable",
}
_LINE_LIMIT = 76
_SMTP_LINE_LIMIT = 998


class TransferError(ValueError):
    """A body cannot be decoded from its Content-Transfer-Encoding."""


def normalise(cte: str | None) -> Transfer | None:
    """The canonical name of a declared encoding; ``7bit`` when absent; None when unknown."""
    if cte is None or not cte.strip():
        return "7bit"
    return _ALIASES.get(" ".join(cte.lower().split()))


def decode(body: bytes, cte: Transfer) -> bytes:
    """The octets a transfer-encoded body stands for."""
    if cte == "base64":
        compact = re.sub(rb"[^A-Za-z0-9+/=]", b"", body)
        out: list[bytes] = []
        for segment in (s for s in re.split(rb"=+", compact) if s):
            if len(segment) % 4 == 1:
                raise TransferError("base64 body is truncated (a dangling character)")
            try:
                out.append(base64.b64decode(segment + b"=" * (-len(segment) % 4)))
            except binascii.Error as exc:
                raise TransferError(f"base64 body is damaged: {exc}") from exc
        return b"".join(out)
    if cte == "quoted-printable":
        return binascii.a2b_qp(body)
    return body


def _qp_line(line: bytes, eol: bytes) -> bytes:
    """One hard line encoded as quoted-printable, with soft breaks to keep lines ≤ 76."""
    pieces: list[bytes] = []
    for index, byte in enumerate(line):
        at_end = index == len(line) - 1
        literal = (33 <= byte <= 126 and byte != ord("=")) or (byte in (9, 32) and not at_end)
        pieces.append(bytes([byte]) if literal else b"=%02X" % byte)
    out: list[bytes] = []
    width = 0
    for piece in pieces:
        if width + len(piece) > _LINE_LIMIT - 1:
            out.append(b"=" + eol)
            width = 0
        out.append(piece)
        width += len(piece)
    return b"".join(out)


def encode_qp(data: bytes, eol: bytes) -> bytes:
    """Quoted-printable with the given line ending for both hard and soft line breaks."""
    lines = re.split(rb"\r?\n", data)
    return eol.join(_qp_line(line, eol) for line in lines)


def encode_base64(data: bytes, eol: bytes) -> bytes:
    """Base64 in lines of 76 characters, each ended with ``eol``."""
    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + _LINE_LIMIT] + eol for i in range(0, len(encoded), _LINE_LIMIT))


def fits_identity(data: bytes, cte: Transfer) -> bool:
    """Whether ``data`` may be sent as is under the identity encoding ``cte``."""
    if cte == "binary":
        return True
    if b"\0" in data or any(len(line) > _SMTP_LINE_LIMIT for line in re.split(rb"\r?\n", data)):
        return False
    return cte == "8bit" or data.isascii()
