"""Bytes and the charset label they claim, decoded to `Decoded` text: the label decides first.

ISO-2022-JP labels (or 7-bit bytes with its escape sequences) go to the hand-written JIS decoder;
Shift_JIS labels decode as CP932; EUC-JP that Python refuses goes through the eucJP-ms bridge.
Bytes that do not fit their label, or have none, are sniffed; every departure from the label is
recorded as a problem, so that the caller can say what was wrong with the mail.
"""

from __future__ import annotations

import re

from mailflow.mail.charset.decoded import Decoded
from mailflow.mail.charset.eucjp import decode_euc_bridged
from mailflow.mail.charset.jis import decode_jis
from mailflow.mail.charset.labels import (
    ASCII_LABELS,
    EUC_BRIDGE_CODEC,
    JIS_CODEC,
    JIS_LABELS,
    UTF7_LABELS,
    canonical_label,
    codec_for,
    normalise_label,
)
from mailflow.mail.charset.sniff import first_strict, sniff
from mailflow.mail.charset.strict import CP932_STRAY, strict

_JIS_ESCAPE = re.compile(rb"\x1b(?:\$[@B]|\$\([DOPQ]|\(I)")
_MODIFIED_UTF7 = re.compile(rb"&([A-Za-z0-9+,]{2,})-")


def decode_text(raw: bytes, label: str | None) -> Decoded:
    """Decode ``raw`` that claims to be in charset ``label`` (None when unlabelled)."""
    clean = normalise_label(label)
    eight_bit = any(b > 0x7F for b in raw)
    jis_escapes = not eight_bit and _JIS_ESCAPE.search(raw) is not None
    if clean in JIS_LABELS or (jis_escapes and clean not in UTF7_LABELS):
        return _decode_claimed_jis(raw, label, clean, eight_bit)
    if clean in ASCII_LABELS or clean == "":
        if not eight_bit:
            return Decoded(raw.decode("ascii"), "us-ascii", "ascii", True, ())
        return sniff(raw, _describe(label, "8-bit bytes"))
    if clean in UTF7_LABELS:
        return _decode_utf7(raw, clean)
    codec = codec_for(clean)
    if codec is None:
        if not eight_bit and not _JIS_ESCAPE.search(raw):
            note = f"unknown charset label {label!r}; bytes are us-ascii"
            return Decoded(raw.decode("ascii"), "us-ascii", "ascii", True, (note,))
        return sniff(raw, f"unknown charset label {label!r}")
    return _decode_labelled(raw, label, clean, codec)


def _describe(label: str | None, what: str) -> str:
    return f"labelled {label} but has {what}" if label else f"no charset label and {what}"


def _decode_labelled(raw: bytes, label: str | None, clean: str, codec: str) -> Decoded:
    charset = canonical_label(codec) if codec in {"cp932", "euc_jp", "utf-8"} else clean
    text = strict(raw, codec)
    if text is not None:
        return Decoded(text, charset, codec, True, ())
    why = f"not valid {label}"
    if codec == "euc_jp":
        text = decode_euc_bridged(raw)
        if text is not None:
            return Decoded(text, "euc-jp", EUC_BRIDGE_CODEC, True, ())
    found = first_strict(raw, exclude=codec)
    if found is not None:
        text, other = found
        note = f"labelled {label} but bytes are {canonical_label(other)}"
        return Decoded(text, canonical_label(other), other, True, (note,))
    text = raw.decode(codec, errors="replace")
    if codec == "cp932":
        text = CP932_STRAY.sub("\ufffd", text)
    return Decoded(text, charset, codec, False, (f"{why}; undecodable bytes replaced",))


def _decode_claimed_jis(raw: bytes, label: str | None, clean: str, eight_bit: bool) -> Decoded:
    if eight_bit:
        return sniff(raw, f"labelled {label} (which is 7-bit) but has 8-bit bytes")
    notes: list[str] = []
    if clean not in JIS_LABELS:
        notes.append(_describe(label, "ISO-2022-JP escape sequences"))
    text, facts = decode_jis(raw)
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
