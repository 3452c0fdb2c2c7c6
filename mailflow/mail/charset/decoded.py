"""The result of decoding: the text, and the facts needed to encode it back the same way."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decoded:
    """Text decoded from bytes, with the facts needed to encode it back."""

    text: str
    charset: str
    codec: str
    exact: bool
    problems: tuple[str, ...]
