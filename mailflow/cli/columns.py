"""Aligned columns for human output: widths are terminal cells (a Japanese character takes two),
and a long text is cut with an ellipsis at a character boundary, never inside an ASCII word.

Japanese has no spaces between words, so a Japanese text may be cut after any character; a cut
that would split an ASCII word (`Engin…`) backs up to the word's start instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len, get_character_cell_size

ELLIPSIS = "…"
GAP = "  "


def printable(text: str) -> str:
    """`text` safe for a terminal: control characters (ESC, CR, LF, BEL, …) shown escaped
    (`\\x1b`), never sent raw — a name like "\\x1b]0;pwned\\x07" must not retitle the window."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _in_word(char: str) -> bool:
    return char.isascii() and char.isalnum()


def clip(text: str, width: int) -> str:
    """`text` in at most `width` cells: whole, or cut with an ellipsis. A first ASCII word
    longer than the column is kept whole (the row runs over rather than mangle it)."""
    if cell_len(text) <= width:
        return text
    room, used, cut = width - cell_len(ELLIPSIS), 0, 0
    for char in text:
        used += get_character_cell_size(char)
        if used > room:
            break
        cut += 1
    if 0 < cut < len(text) and _in_word(text[cut - 1]) and _in_word(text[cut]):
        start = cut
        while start > 0 and _in_word(text[start - 1]):
            start -= 1
        if start == 0:  # one long word: the whole of it
            while cut < len(text) and _in_word(text[cut]):
                cut += 1
        else:
            cut = start
    kept = text[:cut].rstrip(" ,;:-/")
    return kept + ELLIPSIS if cut < len(text) else kept


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - cell_len(text))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]],
          limits: Sequence[int | None]) -> list[str]:
    """Header and rows aligned; column i is at most `limits[i]` cells (None: no limit). The
    last column is never padded."""
    cells = [[clip(printable(value), limit) if limit else printable(value)
              for value, limit in zip(row, limits, strict=True)] for row in rows]
    widths = [max([cell_len(h), *(cell_len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = []
    for row in [list(headers), *cells]:
        lines.append(GAP.join([*(pad(v, w) for v, w in zip(row[:-1], widths, strict=False)),
                               row[-1]]).rstrip())
    return lines
