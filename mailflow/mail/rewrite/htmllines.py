"""The visual lines of a mail's HTML, with their source offsets, for placement and markers.

A line is the text between two line-breaking tags (``<br>``, ``<p>``, ``<div>``, ``<tr>``, ``<li>``,
headings, ``<blockquote>``, ``<hr>`` and their closing tags). Text inside ``<head>``, ``<style>``,
``<script>``, ``<title>`` and comments is not part of any line. Regular expressions, not a DOM:
mail HTML is often broken, and the source must be changed in place, not re-serialised.
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass

_BLOCK = "p|div|br|tr|li|h[1-6]|table|blockquote|pre|hr|ul|ol|center"
_BREAK = re.compile(rf"(?is)<(/?)({_BLOCK})\b[^>]*>")
_HIDDEN = re.compile(
    r"(?is)<!--.*?-->|<(head|style|script|title)\b[^>]*>.*?</\1\s*>",
)
_TAG = re.compile(r"(?s)<[^>]*>")
_BODY_OPEN = re.compile(r"(?is)<body\b[^>]*>")


@dataclass(frozen=True)
class Tag:
    """A line-breaking tag: its source range, lower-case name, and whether it closes."""

    start: int
    end: int
    name: str
    closing: bool


@dataclass(frozen=True)
class HtmlLine:
    """Visible text between two line-breaking tags, and the tags around it."""

    start: int
    end: int
    text: str
    before: Tag | None
    after: Tag | None

    @property
    def insert_at(self) -> int:
        """Where a block placed before this line goes: before its opening tag, else its start."""
        if self.before is not None and not self.before.closing and self.before.name != "br":
            return self.before.start
        return self.start

    def removal(self) -> tuple[int, int]:
        """The source range that removes the whole line: its element, or it and one ``<br>``."""
        before, after = self.before, self.after
        if (
            before is not None
            and after is not None
            and not before.closing
            and after.closing
            and before.name == after.name
        ):
            return before.start, after.end
        if after is not None and after.name == "br":
            return self.start, after.end
        if before is not None and before.name == "br":
            return before.start, self.end
        return self.start, self.end


def visible_text(fragment: str) -> str:
    """Tags removed, entities decoded, no-break spaces made spaces, outer blanks stripped."""
    text = htmllib.unescape(_TAG.sub("", _HIDDEN.sub("", fragment)))
    return text.replace("\u00a0", " ").strip(" \t\r\n")


def _content_start(html: str) -> int:
    body = _BODY_OPEN.search(html)
    if body is not None:
        return body.end()
    hidden_end = 0
    for match in _HIDDEN.finditer(html):
        if match.group(1) and match.group(1).lower() == "head":
            hidden_end = match.end()
    return hidden_end


def html_lines(html: str) -> list[HtmlLine]:
    """Every visual line of the HTML body, in order, empty lines included."""
    start = _content_start(html)
    hidden = [(m.start(), m.end()) for m in _HIDDEN.finditer(html, start)]
    tags = [
        Tag(m.start(), m.end(), m.group(2).lower(), bool(m.group(1)))
        for m in _BREAK.finditer(html, start)
        if not any(s <= m.start() < e for s, e in hidden)
    ]
    lines: list[HtmlLine] = []
    previous: Tag | None = None
    pos = start
    for tag in [*tags, None]:
        end = tag.start if tag is not None else len(html)
        lines.append(HtmlLine(pos, end, visible_text(html[pos:end]), previous, tag))
        if tag is not None:
            previous, pos = tag, tag.end
    return lines
