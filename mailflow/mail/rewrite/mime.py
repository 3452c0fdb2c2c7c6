"""A small MIME walker over the original bytes: it finds parts and their offsets, copies nothing.

The standard ``email`` package rebuilds a message when it writes it back, which changes the bytes of
about half of the corpus. This walker only locates things: each part's header block (with every
field's byte range) and its body range, so that a rewrite can replace exactly those ranges.

Leniencies, each one seen in real mail:

* header blocks end at the first empty line, with CRLF or LF line endings (both occur);
* an unindented line without a field name inside a header block continues the previous field
  (broken folding, enmime ``bad-header-wrap``); an mbox ``From `` line before the first field is
  skipped;
* a boundary may be quoted, contain spaces, ``/`` and ``=``; a delimiter line may carry trailing
  white space; parameter names are case-insensitive and a missing ``;`` before a parameter is
  tolerated;
* a multipart without a closing delimiter ends where its enclosing body ends; when its last part
  contains ``--boundary--`` somewhere other than at a line start, the part ends there;
* a multipart without a boundary parameter is treated as an opaque leaf (nothing inside is found).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r?\n")
_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")
_PARAM = re.compile(r'\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;\s]*)', re.DOTALL)


@dataclass(frozen=True)
class HeaderField:
    """One header field: its name as written, its unfolded value and its byte range."""

    name: str
    value: str
    start: int
    end: int

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class HeaderBlock:
    """The header fields of one part, where they end, and where the body starts."""

    start: int
    fields: tuple[HeaderField, ...]
    end: int
    body_start: int
    eol: bytes

    def get(self, name: str) -> HeaderField | None:
        key = name.lower()
        return next((f for f in self.fields if f.key == key), None)


@dataclass(frozen=True)
class ContentType:
    """A parsed Content-Type (or Content-Disposition) value: ``type/subtype`` and parameters."""

    value: str
    params: dict[str, str]

    @property
    def maintype(self) -> str:
        return self.value.split("/", 1)[0]


@dataclass(frozen=True)
class Part:
    """One MIME entity located in the original bytes."""

    header: HeaderBlock
    content_type: ContentType
    body_start: int
    body_end: int
    children: tuple[Part, ...]

    @property
    def is_attachment(self) -> bool:
        """An attachment by disposition, or any part that carries a file name."""
        disposition = self.header.get("content-disposition")
        names = set(self.content_type.params)
        if disposition is not None:
            parsed = parse_content_type(disposition.value)
            if parsed.value == "attachment":
                return True
            names |= set(parsed.params)
        return any(n.startswith(("name", "filename")) for n in names)


def _lines(raw: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(line start, content end, line end) for every line in ``raw[start:end]``."""
    out: list[tuple[int, int, int]] = []
    pos = start
    while pos < end:
        match = _LINE_END.search(raw, pos, end)
        if match is None:
            out.append((pos, end, end))
            break
        out.append((pos, match.start(), match.end()))
        pos = match.end()
    return out


def detect_eol(raw: bytes, start: int = 0, end: int | None = None) -> bytes:
    """The line ending used in a range: CRLF when its first line ends with CRLF, else LF."""
    match = _LINE_END.search(raw, start, len(raw) if end is None else end)
    return match.group(0) if match is not None else b"\n"


def parse_header_block(raw: bytes, start: int, end: int) -> HeaderBlock:
    """Read the header fields in ``raw[start:end]`` up to the first empty line."""
    spans: list[list[int]] = []
    names: list[str] = []
    block_end = body_start = end
    for index, (line_start, content_end, line_end) in enumerate(_lines(raw, start, end)):
        line = raw[line_start:content_end]
        if not line:
            block_end, body_start = line_start, line_end
            break
        match = _FIELD_NAME.match(line)
        if line[:1] in (b" ", b"\t") or (match is None and spans):
            if spans:
                spans[-1][1] = line_end
            continue
        if match is None:
            if index == 0 and line.startswith(b"From "):
                continue
            block_end = body_start = line_start
            break
        names.append(match.group(1).decode("ascii"))
        spans.append([line_start, line_end])
    fields = tuple(
        HeaderField(name, _unfold(raw[s:e], len(name)), s, e)
        for name, (s, e) in zip(names, spans, strict=True)
    )
    return HeaderBlock(start, fields, block_end, body_start, detect_eol(raw, start, end))


def _unfold(field: bytes, name_len: int) -> str:
    text = field.decode("latin-1")
    value = text[name_len:].lstrip(" \t")[1:]
    return re.sub(r"\r?\n", "", value).strip()


def parse_content_type(value: str) -> ContentType:
    """``type/subtype; a=b; c="d"`` → lower-cased value and parameters (names lower-cased)."""
    head, _, rest = value.partition(";")
    main = head.strip().split()[0].lower() if head.strip() else ""
    if " " in head.strip() or "\t" in head.strip():
        rest = head.strip()[len(main) :] + ";" + rest
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        name, raw_value = match.group(1).lower(), match.group(2)
        if raw_value.startswith('"'):
            raw_value = re.sub(r"\\(.)", r"\1", raw_value[1:].removesuffix('"'))
        params.setdefault(name, raw_value)
    return ContentType(main, params)


def _content_type(header: HeaderBlock, default: str) -> ContentType:
    field = header.get("content-type")
    parsed = parse_content_type(field.value) if field is not None else None
    if parsed is None or "/" not in parsed.value:
        params = parsed.params if parsed is not None else {}
        if parsed is not None and parsed.value:
            return ContentType(parsed.value, params)
        return ContentType(default, params)
    return parsed


def _is_delimiter(raw: bytes, start: int, end: int, marker: bytes) -> bool | None:
    """None: not a delimiter; False: an opening delimiter; True: the closing one."""
    if not raw.startswith(marker, start) or start + len(marker) > end:
        return None
    rest = raw[start + len(marker) : end]
    closing = rest.startswith(b"--")
    if closing:
        rest = rest[2:]
    return closing if rest.strip(b" \t") == b"" else None


def _eol_before(raw: bytes, pos: int) -> int:
    """Length of the line ending that ends just before ``pos`` (it belongs to the delimiter)."""
    if raw[max(0, pos - 2) : pos] == b"\r\n":
        return 2
    return 1 if raw[max(0, pos - 1) : pos] == b"\n" else 0


def split_multipart(raw: bytes, start: int, end: int, boundary: str) -> list[tuple[int, int]]:
    """The (start, end) range of every body part between ``--boundary`` delimiters."""
    marker = b"--" + boundary.encode("latin-1")
    ranges: list[tuple[int, int]] = []
    part_start: int | None = None
    closed = False
    for line_start, content_end, line_end in _lines(raw, start, end):
        kind = _is_delimiter(raw, line_start, content_end, marker)
        if kind is None:
            continue
        if part_start is not None:
            ranges.append((part_start, max(part_start, line_start - _eol_before(raw, line_start))))
        part_start = line_end
        if kind:
            closed = True
            break
    if part_start is not None and not closed:
        inline_close = raw.find(marker + b"--", part_start, end)
        ranges.append((part_start, inline_close if inline_close >= 0 else end))
    return ranges


def parse_part(raw: bytes, start: int, end: int, default: str = "text/plain") -> Part:
    """Locate one entity and, for multipart/*, its children (never inside message/*)."""
    header = parse_header_block(raw, start, end)
    ctype = _content_type(header, default)
    children: list[Part] = []
    boundary = ctype.params.get("boundary")
    if ctype.maintype == "multipart" and boundary:
        child_default = "message/rfc822" if ctype.value == "multipart/digest" else "text/plain"
        for part_start, part_end in split_multipart(raw, header.body_start, end, boundary):
            children.append(parse_part(raw, part_start, part_end, child_default))
    return Part(header, ctype, header.body_start, end, tuple(children))


def parse_message(raw: bytes) -> Part:
    """The whole message as a tree of located parts."""
    return parse_part(raw, 0, len(raw))
