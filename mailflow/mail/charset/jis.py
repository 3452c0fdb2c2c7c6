"""ISO-2022-JP decoded by hand, with the JIS-to-CP932 bridge for what Python's codec refuses.

Python has no codec for the variants Windows (CP50220/CP50221) and phones send. A JIS X 0208
pair decodes with the standard table first, so that what we decode Python's ``iso2022_jp``
encodes back to the same bytes; a pair outside it (NEC row 13 such as ①, IBM extensions in rows
89-92, au emoji) is mapped arithmetically to Shift_JIS bytes and decoded as CP932. JIS X 0212,
JIS X 0213, GB 2312 and KS C 5601 segments decode through their EUC forms.
"""

from __future__ import annotations

import re
from functools import lru_cache

from mailflow.mail.charset.strict import strict

_ESCAPES = {
    b"\x1b(B": "ascii",
    b"\x1b(J": "ascii",
    b"\x1b(H": "ascii",
    b"\x1b(I": "kana",
    b"\x1b$@": "jis0208",
    b"\x1b$B": "jis0208",
    b"\x1b$(B": "jis0208",
    b"\x1b$(@": "jis0208",
    b"\x1b$(D": "jis0212",
    b"\x1b$(O": "jis0213p1",
    b"\x1b$(Q": "jis0213p1",
    b"\x1b$(P": "jis0213p2",
    b"\x1b$A": "gb2312",
    b"\x1b$(C": "ksc5601",
}

# au mail JIS rows 85-92 go arithmetically to Shift_JIS 0xEB-0xEE, which au phones use as
# 0xF6, 0xF7, 0xF3, 0xF4 (CP932's user-defined area, decoded to KDDI's private use code points).
_AU_LEAD = {0xEB: 0xF6, 0xEC: 0xF7, 0xED: 0xF3, 0xEE: 0xF4}


def decode_jis(raw: bytes) -> tuple[str, list[str]]:
    """Decode ISO-2022-JP (with CP5022x, JIS X 0212/0213 and au emoji) to text and facts."""
    facts: list[str] = []
    au_emoji = _has_au_emoji_rows(raw)
    if au_emoji:
        facts.append("au emoji in JIS rows 85-92 decoded to private use characters")
    out: list[str] = []
    mode = "ascii"
    shifted = False
    i, size = 0, len(raw)
    while i < size:
        byte = raw[i]
        if byte == 0x1B:
            new_mode, length = _escape(raw, i)
            if new_mode is None:
                facts.append(f"unknown escape sequence at byte {i}")
                out.append("\ufffd")
            else:
                mode = new_mode
            i += length
            continue
        if byte in (0x0E, 0x0F):
            shifted = byte == 0x0E
            i += 1
            continue
        if byte in (0x0A, 0x0D) and mode not in ("ascii", "kana"):
            mode = "ascii"
        char, used = _character(raw, i, mode, shifted, au_emoji)
        out.append(char)
        i += used
    if "\ufffd" in out:
        facts.append("some ISO-2022-JP characters are in no known table; replaced")
    return "".join(out), facts


def _character(raw: bytes, i: int, mode: str, shifted: bool, au_emoji: bool) -> tuple[str, int]:
    """The character at ``raw[i]`` (not an escape or shift) in ``mode``, and the bytes it used."""
    byte = raw[i]
    if byte < 0x21 or byte == 0x7F:
        return chr(byte), 1
    if shifted or mode == "kana":
        return (chr(0xFF61 + byte - 0x21) if byte <= 0x5F else "\ufffd"), 1
    if mode == "ascii":
        return chr(byte), 1
    if i + 1 >= len(raw) or not 0x21 <= raw[i + 1] <= 0x7E:
        return "\ufffd", 1
    return _decode_pair(mode, byte, raw[i + 1], au_emoji), 2


def _escape(raw: bytes, i: int) -> tuple[str | None, int]:
    if raw.startswith(b"\x1b&@", i):
        return "jis0208", 3  # JIS X 0208-1990 announcer; the ESC $ B that follows is read next.
    for seq, mode in _ESCAPES.items():
        if raw.startswith(seq, i):
            return mode, len(seq)
    return None, 1


def _has_au_emoji_rows(raw: bytes) -> bool:
    """True when a two-byte segment uses JIS rows 85-88, which only au (KDDI) emoji use."""
    for segment in re.findall(rb"\x1b\$[@B]([^\x1b]*)", raw):
        for k in range(0, len(segment) - 1, 2):
            if 0x75 <= segment[k] <= 0x78:
                return True
    return False


def _decode_pair(mode: str, j1: int, j2: int, au_emoji: bool) -> str:
    if mode == "jis0208":
        return jis0208_pair(j1, j2, au_emoji)
    euc = bytes((j1 | 0x80, j2 | 0x80))
    codec, data = {
        "jis0212": ("euc_jp", b"\x8f" + euc),
        "jis0213p1": ("euc_jis_2004", euc),
        "jis0213p2": ("euc_jis_2004", b"\x8f" + euc),
        "gb2312": ("gb2312", euc),
        "ksc5601": ("euc_kr", euc),
    }[mode]
    return strict(data, codec) or "\ufffd"


@lru_cache(maxsize=8192)
def jis0208_pair(j1: int, j2: int, au_emoji: bool) -> str:
    """One JIS X 0208 pair: the standard table, then the CP932 bridge, then JIS X 0213."""
    standard = strict(bytes((j1 | 0x80, j2 | 0x80)), "euc_jp")
    if standard is not None:
        return standard
    s1, s2 = jis_to_sjis(j1, j2)
    if au_emoji:
        s1 = _AU_LEAD.get(s1, s1)
    bridged = strict(bytes((s1, s2)), "cp932")
    if bridged is not None:
        return bridged
    return strict(bytes((j1 | 0x80, j2 | 0x80)), "euc_jis_2004") or "\ufffd"


def jis_to_sjis(j1: int, j2: int) -> tuple[int, int]:
    """Map a JIS X 0208 pair (0x21-0x7E each) to Shift_JIS bytes arithmetically."""
    s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
    s2 = (j2 + 0x1F + (1 if j2 >= 0x60 else 0)) if j1 & 1 else j2 + 0x7E
    return s1, s2
