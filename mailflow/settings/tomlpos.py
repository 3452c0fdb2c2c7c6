"""Where each key of a TOML document stands, so errors can say `PATH:LINE`.

`tomllib` gives values but no positions; this scanner reads the same text line by line and
maps every key path to the line it is written on. Arrays of tables get their index in the path
(`("followup", 2, "delay")`), and inline tables are looked into (`after = { delay = "6x" }`).
It only has to be right for documents `tomllib` already accepted.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from mailflow.errors import Problem

KeyPath = tuple[str | int, ...]

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY = rf"(?:{_BARE}|{_QUOTED})"
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_INLINE_KEY = re.compile(rf"[{{,]\s*({_DOTTED})\s*=")


def _split(dotted: str) -> list[str]:
    parts = re.findall(rf"{_KEY}", dotted)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def locate(text: str) -> dict[KeyPath, int]:
    """Map each key path in `text` to its 1-based line number."""
    positions: dict[KeyPath, int] = {}
    table: KeyPath = ()
    array_counts: dict[KeyPath, int] = {}
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER.match(line)
        if header:
            path: KeyPath = ()
            for part in _split(header.group(2)):
                path = (*path, part)
                if path in array_counts and len(path) < len(_split(header.group(2))):
                    path = (*path, array_counts[path] - 1)  # a sub-table of the last [[entry]]
                positions.setdefault(path, number)  # `[a.b.c]` also makes tables a and a.b
            if header.group(1) == "[[":
                index = array_counts.get(path, 0)
                array_counts[path] = index + 1
                positions.setdefault(path, number)
                path = (*path, index)
            table = path
            positions.setdefault(table, number)
            continue
        assign = _ASSIGN.match(line)
        if not assign:
            continue
        key_path = (*table, *_split(assign.group(1)))
        for end in range(len(table) + 1, len(key_path)):  # `a.b = 1` also makes table a
            positions.setdefault(key_path[:end], number)
        positions[key_path] = number
        rest = line[assign.end():]
        for inner in _INLINE_KEY.finditer(rest):
            positions[(*key_path, *_split(inner.group(1)))] = number
        for quote in ('"""', "'''"):
            if rest.count(quote) % 2 == 1:
                in_multiline = quote
    return positions


def line_of(positions: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, or of its nearest enclosing key that has one."""
    for end in range(len(path), 0, -1):
        found = positions.get(tuple(path[:end]))
        if found:
            return found
    return None


def load(path: Path) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """Read a TOML file; a syntax error becomes a positioned `Problem` list (raised)."""
    from mailflow.errors import ProblemsError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProblemsError([Problem(str(path), None, f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ProblemsError([Problem(str(path), None, "not UTF-8 text")]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(match.group(1)) if match else None
        if line is None and "(at end of document)" in str(exc):  # e.g. an unclosed string
            line = max(1, len(text.splitlines()))
        message = re.sub(r"\s*\(at (?:line \d+, column \d+|end of document)\)", "", str(exc))
        raise ProblemsError([Problem(str(path), line, f"TOML syntax: {message}")]) from exc
    return data, locate(text)
