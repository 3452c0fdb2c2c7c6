"""Japanese-correct decoding and encoding of mail text (pure, no I/O).

Python has no codec for the ISO-2022-JP variants that Windows (CP50220/CP50221) and phones send,
so ISO-2022-JP is decoded here: JIS X 0208 pairs decode with the standard table first (so that
what we decode, Python's ``iso2022_jp`` encodes back to the same bytes), and pairs outside it (NEC
row 13 such as ①, IBM extensions in rows 89-92) go through an arithmetic bridge to Shift_JIS bytes
decoded as CP932. Mail labelled Shift_JIS is decoded as CP932. Bytes that do not fit their label
are tried as UTF-8, CP932 and EUC-JP before any replacement character is used.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from dataclasses import dataclass
from functools import lru_cache

JIS_CODEC = "mailflow-jis"
EUC_BRIDGE_CODEC = "mailflow-eucjp"

_JIS_LABELS = frozenset(
    {
        "iso-2022-jp",
        "iso2022-jp",
        "iso2022jp",
        "csiso2022jp",
        "iso-2022-jp-1",
        "iso-2022-jp-3",
        "iso-2022-jp-2004",
        "iso-2022-jp-ms",
        "cp50220",
        "cp50221",
        "cp50222",
        "jis",
        "x-jis",
    }
)
_SJIS_LABELS = frozenset(
    {
        "shift_jis",
        "shift-jis",
        "sjis",
        "x-sjis",
        "s-jis",
        "shift_jisx0213",
        "shift_jis-2004",
        "ms_kanji",
        "csshiftjis",
        "windows-31j",
        "cswindows31j",
        "cp932",
        "ms932",
        "x-ms-cp932",
        "x-sjis-docomo",
        "x-sjis-kddi",
        "x-sjis-softbank",
    }
)
_EUC_LABELS = frozenset(
    {"euc-jp", "euc_jp", "eucjp", "x-euc-jp", "cseucpkdfmtjapanese", "euc-jis-2004", "cp51932"}
)
_UTF8_LABELS = frozenset({"utf-8", "utf8", "x-utf-8", "unicode-1-1-utf-8"})
_ASCII_LABELS = frozenset({"us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "7bit"})
_UTF7_LABELS = frozenset({"utf-7", "unicode-1-1-utf-7", "x-unicode-2-0-utf-7", "csunicode11utf7"})
# Labels whose Python codec is narrower than what senders mean by them.
_WIDER_CODEC = {
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "cp950",
}

_JIS_ESCAPE = re.compile(rb"\x1b(?:\$[@B]|\$\([DOPQ]|\(I)")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([BbQq])\?([^?]*)\?=")
_FOLD = re.compile(r"\r?\n[ \t]")
_MODIFIED_UTF7 = re.compile(rb"&([A-Za-z0-9+,]{2,})-")


@dataclass(frozen=True)
class Decoded:
    """Text decoded from bytes, with the facts needed to encode it back."""

    text: str
    charset: str
    codec: str
    exact: bool
    problems: tuple[str, ...]


def decode_text(raw: bytes, label: str | None) -> Decoded:
    """Decode ``raw`` that claims to be in charset ``label`` (None when unlabelled)."""
    clean = normalise_label(label)
    eight_bit = any(b > 0x7F for b in raw)
    jis_escapes = not eight_bit and _JIS_ESCAPE.search(raw) is not None
    if clean in _JIS_LABELS or (jis_escapes and clean not in _UTF7_LABELS):
        return _decode_claimed_jis(raw, label, clean, eight_bit)
    if clean in _ASCII_LABELS or clean == "":
        if not eight_bit:
            return Decoded(raw.decode("ascii"), "us-ascii", "ascii", True, ())
        return _sniff(raw, _describe(label, "8-bit bytes"))
    if clean in _UTF7_LABELS:
        return _decode_utf7(raw, clean)
    codec = _codec_for(clean)
    if codec is None:
        if not eight_bit and not _JIS_ESCAPE.search(raw):
            note = f"unknown charset label {label!r}; bytes are us-ascii"
            return Decoded(raw.decode("ascii"), "us-ascii", "ascii", True, (note,))
        return _sniff(raw, f"unknown charset label {label!r}")
    return _decode_labelled(raw, label, clean, codec)


def encode_text(text: str, charset: str) -> bytes | None:
    """Encode ``text`` in ``charset``, or None when some character does not fit it.

    Only bytes that decode back to exactly ``text`` are returned, so ① or ～ (U+FF5E) or
    half-width kana give None for ISO-2022-JP; Shift_JIS labels are encoded as CP932.
    """
    clean = normalise_label(charset)
    if clean in _JIS_LABELS:
        label, codec = "iso-2022-jp", "iso2022_jp"
        if "\x1b" in text or "\x0e" in text or "\x0f" in text:
            return None
    elif clean in _SJIS_LABELS:
        label, codec = "shift_jis", "cp932"
    elif clean in _EUC_LABELS:
        label, codec = "euc-jp", "euc_jp"
    elif clean in _ASCII_LABELS:
        label, codec = "us-ascii", "ascii"
    else:
        found = _codec_for(clean)
        if found is None:
            return None
        label, codec = clean, found
    try:
        data = text.encode(codec)
    except UnicodeError:
        return None
    back = decode_text(data, label)
    return data if back.exact and back.text == text else None


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


def normalise_label(label: str | None) -> str:
    """Lower-case a charset label and strip quotes, blanks and a doubled ``charset=``."""
    if not label:
        return ""
    clean = label.strip().strip("\"'").strip().lower()
    while clean.startswith("charset="):
        clean = clean[len("charset=") :].strip().strip("\"'").strip()
    return clean


def _describe(label: str | None, what: str) -> str:
    return f"labelled {label} but has {what}" if label else f"no charset label and {what}"


def _codec_for(clean: str) -> str | None:
    if clean in _SJIS_LABELS:
        return "cp932"
    if clean in _EUC_LABELS:
        return "euc_jp"
    if clean in _UTF8_LABELS:
        return "utf-8"
    if clean in _WIDER_CODEC:
        return _WIDER_CODEC[clean]
    try:
        name = codecs.lookup(clean).name
    except LookupError:
        return None
    # Only text codecs: base64, rot13, zlib etc. are bytes-to-bytes transforms.
    info = codecs.lookup(name)
    return name if getattr(info, "_is_text_encoding", True) else None


def _canonical_label(codec: str) -> str:
    return {
        "cp932": "shift_jis",
        "euc_jp": "euc-jp",
        EUC_BRIDGE_CODEC: "euc-jp",
        "euc_jis_2004": "euc-jp",
        "utf-8": "utf-8",
        "ascii": "us-ascii",
        JIS_CODEC: "iso-2022-jp",
    }.get(codec, codec)


def _decode_labelled(raw: bytes, label: str | None, clean: str, codec: str) -> Decoded:
    charset = _canonical_label(codec) if codec in {"cp932", "euc_jp", "utf-8"} else clean
    text = _strict(raw, codec)
    if text is not None:
        return Decoded(text, charset, codec, True, ())
    why = f"not valid {label}"
    if codec == "euc_jp":
        text = _decode_euc_bridged(raw)
        if text is not None:
            return Decoded(text, "euc-jp", EUC_BRIDGE_CODEC, True, ())
    found = _first_strict(raw, exclude=codec)
    if found is not None:
        text, other = found
        note = f"labelled {label} but bytes are {_canonical_label(other)}"
        return Decoded(text, _canonical_label(other), other, True, (note,))
    text = raw.decode(codec, errors="replace")
    if codec == "cp932":
        text = _CP932_STRAY.sub("\ufffd", text)
    return Decoded(text, charset, codec, False, (f"{why}; undecodable bytes replaced",))


def _decode_claimed_jis(raw: bytes, label: str | None, clean: str, eight_bit: bool) -> Decoded:
    if eight_bit:
        return _sniff(raw, f"labelled {label} (which is 7-bit) but has 8-bit bytes")
    notes: list[str] = []
    if clean not in _JIS_LABELS:
        notes.append(_describe(label, "ISO-2022-JP escape sequences"))
    text, facts = _decode_jis(raw)
    notes.extend(facts)
    exact = "\ufffd" not in text
    if not exact and clean == "iso-2022-jp-2":
        try:
            return Decoded(raw.decode("iso2022_jp_2"), clean, "iso2022_jp_2", True, ())
        except UnicodeDecodeError:
            pass
    return Decoded(text, "iso-2022-jp", JIS_CODEC, exact, tuple(notes))


def _decode_utf7(raw: bytes, clean: str) -> Decoded:
    note = f"obsolete charset {clean}; re-encode as utf-8"
    if b"+" not in raw and _MODIFIED_UTF7.search(raw):
        # IMAP's modified UTF-7 ("&MKgw-") used where RFC 2152 UTF-7 ("+MKgw-") belongs.
        raw = _MODIFIED_UTF7.sub(lambda m: b"+" + m.group(1).replace(b",", b"/") + b"-", raw)
        note += "; written in IMAP's modified form (&...-)"
    try:
        return Decoded(raw.decode("utf-7"), "utf-8", "utf-7", True, (note,))
    except UnicodeDecodeError:
        text = raw.decode("utf-7", errors="replace")
        return Decoded(text, "utf-8", "utf-7", False, (note, "not valid utf-7; bytes replaced"))


def _sniff(raw: bytes, why: str) -> Decoded:
    found = _first_strict(raw, exclude=None)
    if found is not None:
        text, codec = found
        note = f"{why}; bytes are {_canonical_label(codec)}"
        return Decoded(text, _canonical_label(codec), codec, True, (note,))
    text = raw.decode("utf-8", errors="replace")
    note = f"{why}; not valid utf-8, shift_jis or euc-jp; undecodable bytes replaced"
    return Decoded(text, "utf-8", "utf-8", False, (note,))


def _first_strict(raw: bytes, exclude: str | None) -> tuple[str, str] | None:
    """Try UTF-8 strictly, then the better of CP932 and EUC-JP (tie: CP932)."""
    if exclude != "utf-8":
        try:
            return raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    candidates: list[tuple[int, int, str, str]] = []
    for rank, codec in enumerate(("cp932", "euc_jp")):
        if codec == exclude:
            continue
        text = _strict(raw, codec)
        if text is None and codec == "euc_jp":
            text, codec = _decode_euc_bridged(raw), EUC_BRIDGE_CODEC
        if text is not None:
            candidates.append((-_japanese_score(text), rank, text, codec))
    if not candidates:
        return None
    _, _, text, codec = min(candidates)
    return text, codec


def _strict(raw: bytes, codec: str) -> str | None:
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        return None
    if codec == "cp932" and _CP932_STRAY.search(text):
        return None
    return text


# Python's cp932 maps the stray single bytes 0x80, 0xA0 and 0xFD-0xFF instead of refusing them.
_CP932_STRAY = re.compile("[\x80\uf8f0-\uf8f3]")


def _japanese_score(text: str) -> int:
    """How much ``text`` looks like Japanese prose: kana and kanji up, half-width kana down."""
    score = 0
    for char in text:
        code = ord(char)
        if 0x3040 <= code <= 0x30FF or 0x3000 <= code <= 0x303F:
            score += 3
        elif 0x4E00 <= code <= 0x9FFF or 0xFF01 <= code <= 0xFF5E:
            score += 1
        elif 0xFF61 <= code <= 0xFF9F or 0xE000 <= code <= 0xF8FF:
            score -= 2
    return score


def _decode_jis(raw: bytes) -> tuple[str, list[str]]:
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
                i += 1
                continue
            mode, i = new_mode, i + length
            continue
        if byte in (0x0E, 0x0F):
            shifted = byte == 0x0E
            i += 1
            continue
        if byte in (0x0A, 0x0D) and mode not in ("ascii", "kana"):
            mode = "ascii"
        if byte < 0x21 or byte == 0x7F:
            out.append(chr(byte))
            i += 1
            continue
        if shifted or mode == "kana":
            out.append(chr(0xFF61 + byte - 0x21) if byte <= 0x5F else "\ufffd")
            i += 1
            continue
        if mode == "ascii":
            out.append(chr(byte))
            i += 1
            continue
        if i + 1 >= size or not 0x21 <= raw[i + 1] <= 0x7E:
            out.append("\ufffd")
            i += 1
            continue
        out.append(_decode_pair(mode, byte, raw[i + 1], au_emoji))
        i += 2
    if "\ufffd" in out:
        facts.append("some ISO-2022-JP characters are in no known table; replaced")
    return "".join(out), facts


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


# au mail JIS rows 85-92 go arithmetically to Shift_JIS 0xEB-0xEE, which au phones use as
# 0xF6, 0xF7, 0xF3, 0xF4 (CP932's user-defined area, decoded to KDDI's private use code points).
_AU_LEAD = {0xEB: 0xF6, 0xEC: 0xF7, 0xED: 0xF3, 0xEE: 0xF4}


def _decode_pair(mode: str, j1: int, j2: int, au_emoji: bool) -> str:
    if mode == "jis0208":
        return _jis0208_pair(j1, j2, au_emoji)
    euc = bytes((j1 | 0x80, j2 | 0x80))
    codec, data = {
        "jis0212": ("euc_jp", b"\x8f" + euc),
        "jis0213p1": ("euc_jis_2004", euc),
        "jis0213p2": ("euc_jis_2004", b"\x8f" + euc),
        "gb2312": ("gb2312", euc),
        "ksc5601": ("euc_kr", euc),
    }[mode]
    return _strict(data, codec) or "\ufffd"


@lru_cache(maxsize=8192)
def _jis0208_pair(j1: int, j2: int, au_emoji: bool) -> str:
    standard = _strict(bytes((j1 | 0x80, j2 | 0x80)), "euc_jp")
    if standard is not None:
        return standard
    s1, s2 = jis_to_sjis(j1, j2)
    if au_emoji:
        s1 = _AU_LEAD.get(s1, s1)
    bridged = _strict(bytes((s1, s2)), "cp932")
    if bridged is not None:
        return bridged
    return _strict(bytes((j1 | 0x80, j2 | 0x80)), "euc_jis_2004") or "\ufffd"


def jis_to_sjis(j1: int, j2: int) -> tuple[int, int]:
    """Map a JIS X 0208 pair (0x21-0x7E each) to Shift_JIS bytes arithmetically."""
    s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
    s2 = (j2 + 0x1F + (1 if j2 >= 0x60 else 0)) if j1 & 1 else j2 + 0x7E
    return s1, s2


def _decode_euc_bridged(raw: bytes) -> str | None:
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
            char = _strict(raw[i : i + 3], "euc_jp") or _strict(raw[i : i + 3], "euc_jis_2004")
            if char is None:
                return None
            out.append(char)
            i += 3
        elif 0xA1 <= byte <= 0xFE and i + 1 < size and 0xA1 <= raw[i + 1] <= 0xFE:
            char = _jis0208_pair(byte & 0x7F, raw[i + 1] & 0x7F, False)
            if char == "\ufffd":
                return None
            out.append(char)
            i += 2
        else:
            return None
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
