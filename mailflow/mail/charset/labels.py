"""What a charset label means: the label families mail uses, and the Python codec for each.

Senders spell one charset many ways (``Shift_JIS``, ``x-sjis``, ``"charset=cp932"``), and some
Python codecs are narrower than what senders mean by the label (``gb2312`` mail is GB18030), so a
label is normalised, matched against the families below, and only then looked up in ``codecs``.
Only text codecs count: a label naming base64 or zlib means no codec at all.
"""

from __future__ import annotations

import codecs

JIS_CODEC = "mailflow-jis"
EUC_BRIDGE_CODEC = "mailflow-eucjp"

JIS_LABELS = frozenset(
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
SJIS_LABELS = frozenset(
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
EUC_LABELS = frozenset(
    {"euc-jp", "euc_jp", "eucjp", "x-euc-jp", "cseucpkdfmtjapanese", "euc-jis-2004", "cp51932"}
)
_UTF8_LABELS = frozenset({"utf-8", "utf8", "x-utf-8", "unicode-1-1-utf-8"})
ASCII_LABELS = frozenset({"us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "7bit"})
UTF7_LABELS = frozenset({"utf-7", "unicode-1-1-utf-7", "x-unicode-2-0-utf-7", "csunicode11utf7"})
# Labels whose Python codec is narrower than what senders mean by them.
_WIDER_CODEC = {
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "cp950",
}


def normalise_label(label: str | None) -> str:
    """Lower-case a charset label and strip quotes, blanks and a doubled ``charset=``."""
    if not label:
        return ""
    clean = label.strip().strip("\"'").strip().lower()
    while clean.startswith("charset="):
        clean = clean[len("charset=") :].strip().strip("\"'").strip()
    return clean


def codec_for(clean: str) -> str | None:
    """The Python text codec for a normalised label, or None when there is none."""
    if clean in SJIS_LABELS:
        return "cp932"
    if clean in EUC_LABELS:
        return "euc_jp"
    if clean in _UTF8_LABELS:
        return "utf-8"
    if clean in _WIDER_CODEC:
        return _WIDER_CODEC[clean]
    try:
        name = codecs.lookup(clean).name
    except (LookupError, ValueError):  # ValueError: a label with a NUL ("utf-8\x00")
        return None
    # Only text codecs: base64, rot13, zlib etc. are bytes-to-bytes transforms.
    info = codecs.lookup(name)
    return name if getattr(info, "_is_text_encoding", True) else None


def canonical_label(codec: str) -> str:
    """The label to write for text decoded with ``codec`` (Shift_JIS for CP932, and so on)."""
    return {
        "cp932": "shift_jis",
        "euc_jp": "euc-jp",
        EUC_BRIDGE_CODEC: "euc-jp",
        "euc_jis_2004": "euc-jp",
        "utf-8": "utf-8",
        "ascii": "us-ascii",
        JIS_CODEC: "iso-2022-jp",
    }.get(codec, codec)
