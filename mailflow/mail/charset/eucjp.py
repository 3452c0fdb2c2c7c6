"""eucJP-ms style EUC-JP (NEC and IBM extensions), which Python's ``euc_jp`` refuses.

EUC-JP is JIS X 0208 with the high bit set, so each two-byte pair goes through the same
JIS-to-CP932 bridge as ISO-2022-JP; half-width kana (0x8E) and JIS X 0212 (0x8F) decode as usual.
"""

from __future__ import annotations

from mailflow.mail.charset.jis import jis0208_pair
from mailflow.mail.charset.strict import strict


def decode_euc_bridged(raw: bytes) -> str | None:
    """Decode eucJP-ms style EUC-JP (NEC/IBM extensions) pair by pair; None if not EUC-JP."""
    out: list[str] = []
    i, size = 0, len(raw)
    while i < size:
        byte = raw[i]
        if byte < 0x80:
            out.append(chr(byte))
            i += 1
        elif byte == 0x8E and i + 1 < size and 0xA1 <= raw[i + 1] <= 0xDF:
            out.append(chr(0xFF61 + raw[i + 1] - 0xA1))
            i += 2
        elif byte == 0x8F and i + 2 < size:
            char = strict(raw[i : i + 3], "euc_jp") or strict(raw[i : i + 3], "euc_jis_2004")
            if char is None:
                return None
            out.append(char)
            i += 3
        elif 0xA1 <= byte <= 0xFE and i + 1 < size and 0xA1 <= raw[i + 1] <= 0xFE:
            char = jis0208_pair(byte & 0x7F, raw[i + 1] & 0x7F, False)
            if char == "\ufffd":
                return None
            out.append(char)
            i += 2
        else:
            return None
    return "".join(out)
