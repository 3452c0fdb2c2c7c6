"""Which charset bytes are really in, when their label is missing or wrong.

UTF-8 is tried first, strictly: Japanese legacy bytes are almost never valid UTF-8 by chance.
Then CP932 and EUC-JP (with the eucJP-ms bridge) are both tried, and the text that looks more
like Japanese prose wins, CP932 on a tie. Only when nothing decodes strictly is UTF-8 decoded
with replacement characters.
"""

from __future__ import annotations

from mailflow.mail.charset.decoded import Decoded
from mailflow.mail.charset.eucjp import decode_euc_bridged
from mailflow.mail.charset.labels import EUC_BRIDGE_CODEC, canonical_label
from mailflow.mail.charset.strict import strict


def sniff(raw: bytes, why: str) -> Decoded:
    """Decode ``raw`` as whatever it really is; ``why`` says why its label was not trusted."""
    found = first_strict(raw, exclude=None)
    if found is not None:
        text, codec = found
        note = f"{why}; bytes are {canonical_label(codec)}"
        return Decoded(text, canonical_label(codec), codec, True, (note,))
    text = raw.decode("utf-8", errors="replace")
    note = f"{why}; not valid utf-8, shift_jis or euc-jp; undecodable bytes replaced"
    return Decoded(text, "utf-8", "utf-8", False, (note,))


def first_strict(raw: bytes, exclude: str | None) -> tuple[str, str] | None:
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
        text = strict(raw, codec)
        if text is None and codec == "euc_jp":
            text, codec = decode_euc_bridged(raw), EUC_BRIDGE_CODEC
        if text is not None:
            candidates.append((-japanese_score(text), rank, text, codec))
    if not candidates:
        return None
    _, _, text, codec = min(candidates)
    return text, codec


def japanese_score(text: str) -> int:
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
