"""Strict decoding: a codec either decodes every byte or answers None, never a guess.

Every other step builds on this, so that "decoded" always means "decoded exactly". Python's
cp932 is too lenient for that on its own and is held to the stricter rule here.
"""

from __future__ import annotations

import re

# Python's cp932 maps the stray single bytes 0x80, 0xA0 and 0xFD-0xFF instead of refusing them.
CP932_STRAY = re.compile("[\x80\uf8f0-\uf8f3]")


def strict(raw: bytes, codec: str) -> str | None:
    """``raw`` decoded with ``codec``, or None when any byte does not fit it."""
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        return None
    if codec == "cp932" and CP932_STRAY.search(text):
        return None
    return text
