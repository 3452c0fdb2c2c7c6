"""Japanese (and English) mail text made comparable: one spelling for what HR writes many ways.

``normalise`` folds width (NFKC: full-width ASCII, half-width kana), joins lines broken inside a
sentence, unifies punctuation and the kanji/kana spellings HR alternate between (御縁/ご縁,
頂く/いただく, 致す/いたす, 出来る/できる, 添う/沿う …). ``sentences`` cuts the result at 。！？,
English sentence ends and blank lines. The polite and past forms of a verb (ございません,
ありませんでした, なかった, 見送らせて, 見送りと …) are left as written and matched by the
fragments below (``NEG``, ``KANERU``), which the cues in `evidence` are built from.
"""

from __future__ import annotations

import re
import unicodedata

_BREAK = re.compile(r"[ \t]*\r?\n[ \t]*")
_SPACES = re.compile(r"(?<=[^\x00-\x7f]) +(?=[^\x00-\x7f])")
_SPELLINGS: tuple[tuple[str, str], ...] = (
    ("御縁", "ご縁"), ("頂", "いただ"), ("戴", "いただ"), ("致し", "いたし"), ("出来", "でき"),
    ("下さい", "ください"), ("添え", "沿え"), ("添い", "沿い"), ("添う", "沿う"), ("添わ", "沿わ"),
    ("叶", "かな"), ("兼ね", "かね"), ("無かった", "なかった"), ("無く", "なく"), ("無い", "ない"),
    ("見合せ", "見合わせ"), ("有難う", "ありがとう"), ("〜", "~"), ("､", "、"), ("｡", "。"),
    ("’", "'"), ("‘", "'"), ("“", '"'), ("”", '"'),
)
_SENTENCE_END = re.compile(r"(?<=[。!?])|(?<=\.)(?=\s)")
_PARAGRAPH = re.compile(r"\r?\n[ \t\u3000]*\r?\n\s*")

# Fragments: the forms a negation or a polite refusal takes at the end of a verb.
NEG = (r"(?:ございませんでした|ございません|ありませんでした|ありません|ませんでした|ません|"
       r"なかった|なく|ない|ず)")
KANERU = r"(?:かね|できな|でき(?:ませ|ず)|かなわ|かない(?:ませ|ず))"


def _join(match: re.Match[str]) -> str:
    text, start, end = match.string, match.start(), match.end()
    left = text[start - 1] if start else " "
    right = text[end] if end < len(text) else " "
    return "" if not left.isascii() or not right.isascii() else " "


def _paragraph(text: str) -> str:
    text = _BREAK.sub(_join, text.strip())
    for written, usual in _SPELLINGS:
        text = text.replace(written, usual)
    return _SPACES.sub("", text)


def normalise(text: str) -> str:
    """NFKC, one spelling, lines joined (away between non-ASCII characters, else one space);
    paragraphs stay apart, one blank line between them."""
    paragraphs = _PARAGRAPH.split(unicodedata.normalize("NFKC", text))
    return "\n\n".join(p for p in map(_paragraph, paragraphs) if p)


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (normalised first), blank ones left out."""
    found: list[str] = []
    for paragraph in normalise(text).split("\n\n"):
        found += [piece.strip() for piece in _SENTENCE_END.split(paragraph) if piece.strip()]
    return found
