"""Text encoded back into a charset, only when the bytes decode back to exactly that text.

The check is the decoder itself: encode, decode with `decode_text`, compare. So ① or ～ (U+FF5E)
or half-width kana give None for ISO-2022-JP, and the caller knows to choose another charset.
"""

from __future__ import annotations

from mailflow.mail.charset.decode import decode_text
from mailflow.mail.charset.labels import (
    ASCII_LABELS,
    EUC_LABELS,
    JIS_LABELS,
    SJIS_LABELS,
    codec_for,
    normalise_label,
)


def encode_text(text: str, charset: str) -> bytes | None:
    """Encode ``text`` in ``charset``, or None when some character does not fit it.

    Only bytes that decode back to exactly ``text`` are returned, so ① or ～ (U+FF5E) or
    half-width kana give None for ISO-2022-JP; Shift_JIS labels are encoded as CP932.
    """
    clean = normalise_label(charset)
    if clean in JIS_LABELS:
        label, codec = "iso-2022-jp", "iso2022_jp"
        if "\x1b" in text or "\x0e" in text or "\x0f" in text:
            return None
    elif clean in SJIS_LABELS:
        label, codec = "shift_jis", "cp932"
    elif clean in EUC_LABELS:
        label, codec = "euc-jp", "euc_jp"
    elif clean in ASCII_LABELS:
        label, codec = "us-ascii", "ascii"
    else:
        found = codec_for(clean)
        if found is None:
            return None
        label, codec = clean, found
    try:
        data = text.encode(codec)
    except UnicodeError:
        return None
    back = decode_text(data, label)
    return data if back.exact and back.text == text else None
