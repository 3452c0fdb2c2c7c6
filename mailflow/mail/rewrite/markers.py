"""``#mailflow key=value …`` lines: HR's notes to mailflow inside a draft, read and removed.

A marker line starts (after blanks) with ``#mailflow`` or ``＃mailflow`` (any case), followed by
``key=value`` pairs separated by blanks (ASCII or the full-width space U+3000). ``＝`` works
like ``=``; a value may be quoted (``note="a b"``) and may be Japanese
(``#mailflow stage=一次面接 interviewer=佐藤 rating=B``). A later line wins for the same key.
A bare word that names a flag (``FLAGS``: ``#mailflow rejection``) means ``flag=yes``; any
other word without ``=`` is ignored and reported in ``problems``. In HTML the whole line is
removed: its ``<p>``/``<div>`` element when the marker is all it holds, else the text and one
``<br>``.

Marker lines count only in HR's own text, above any quoted original (`rewrite.quotes`):
a line inside a quote is the other side's words, neither read nor removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailflow.mail.rewrite.htmllines import html_lines
from mailflow.mail.rewrite.quotes import html_quote_start, own_text_end

_MARKER = re.compile(r"^[ \t\u3000]*[#＃]mailflow(?=[ \t\u3000]|$)(.*)$", re.IGNORECASE)
_PAIR = re.compile(r'([^\s=＝"]+)[=＝]("[^"]*"|\S*)|(\S+)')
FLAGS = frozenset({"rejection"})


@dataclass(frozen=True)
class Markers:
    """The fields HR wrote, the text without the marker lines, and what was not understood."""

    fields: dict[str, str]
    text: str
    problems: tuple[str, ...]


def _parse(line: str, fields: dict[str, str], problems: list[str]) -> bool:
    match = _MARKER.match(line)
    if match is None:
        return False
    for pair in _PAIR.finditer(match.group(1).replace("\u3000", " ")):
        key, value, stray = pair.groups()
        if stray is not None and stray.lower() in FLAGS:
            fields[stray.lower()] = "yes"
            continue
        if stray is not None:
            problems.append(f"#mailflow: {stray!r} is not key=value; ignored")
            continue
        fields[key] = value[1:-1] if len(value) >= 2 and value.startswith('"') else value
    return True


def strip_plain(text: str) -> Markers:
    """Read and remove marker lines from plain text (keeps every other line as it is)."""
    fields: dict[str, str] = {}
    problems: list[str] = []
    lines = text.splitlines(keepends=True)
    own = own_text_end([line.rstrip("\r\n") for line in lines])
    kept = [line for line in lines[:own] if not _parse(line.rstrip("\r\n"), fields, problems)]
    return Markers(fields, "".join([*kept, *lines[own:]]), tuple(problems))


def strip_html(html: str) -> Markers:
    """Read and remove marker lines from HTML, whole element or ``<br>``-line at a time."""
    fields: dict[str, str] = {}
    problems: list[str] = []
    limit = html_quote_start(html)
    lines = [line for line in html_lines(html) if line.end <= limit]
    own = own_text_end([line.text for line in lines])
    cuts = [line.removal() for line in lines[:own] if _parse(line.text, fields, problems)]
    out: list[str] = []
    pos = 0
    for start, end in sorted(cuts):
        if start < pos:
            continue
        out.append(html[pos:start])
        pos = end
    out.append(html[pos:])
    return Markers(fields, "".join(out), tuple(problems))
