"""The MIME tree: which leaves are the body, which are attachments, and their file names."""

from __future__ import annotations

import binascii
import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message

from mailflow.mail.charset import decode_header_words, decode_text
from mailflow.mail.parse.model import Attachment, BodyPart

_BODY_TYPES = ("text/plain", "text/html")


@dataclass
class Tree:
    """What a walk over the MIME tree found."""

    bodies: list[BodyPart] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


MAX_DEPTH = 50  # MIME nesting any real mail stays far below; deeper is an attack


class TooDeep(ValueError):
    """MIME parts nested deeper than MAX_DEPTH."""


def read_tree(message: Message) -> Tree:
    """Walk ``message``: text/plain and text/html leaves become bodies, the rest attachments."""
    tree = Tree()
    root = "1" if not message.is_multipart() else ""
    for path, part in _walk(message, root, tree.problems):
        try:
            _read_leaf(path or "1", part, tree)
        except Exception as error:  # a broken part must not cost the others
            tree.problems.append(f"part {path or '1'}: cannot be read ({error!r})")
    return tree


def _walk(part: Message, path: str, problems: list[str]) -> Iterator[tuple[str, Message]]:
    if path.count(".") >= MAX_DEPTH:
        raise TooDeep(f"MIME parts nested deeper than {MAX_DEPTH} levels")
    _note_defects(path or "1", part, problems)
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        children = part.get_payload()
        if not isinstance(children, list) or not children:
            problems.append(f"part {path or '1'}: multipart without parts")
            return
        for number, child in enumerate(children, start=1):
            if isinstance(child, Message):
                yield from _walk(child, f"{path}.{number}" if path else str(number), problems)
        return
    yield path, part


def _note_defects(path: str, part: Message, problems: list[str]) -> None:
    for defect in getattr(part, "defects", []):
        doc = (type(defect).__doc__ or "").strip().splitlines()
        what = doc[0] if doc else type(defect).__name__
        problems.append(f"part {path}: {type(defect).__name__}: {what}")


def _read_leaf(path: str, part: Message, tree: Tree) -> None:
    content_type = declared_type(part)
    disposition = (part.get_content_disposition() or "").lower()
    name = filename(part)
    if part.get_content_maintype() == "multipart":
        tree.problems.append(f"part {path}: {content_type} without a usable boundary; read as text")
        tree.bodies.append(_body(path, part, "text/plain"))
        return
    if content_type in _BODY_TYPES and disposition != "attachment" and name is None:
        tree.bodies.append(_body(path, part, content_type))
        return
    data = _payload_bytes(part)
    tree.attachments.append(
        Attachment(
            filename=name,
            content_type=content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            part=path,
            inline=disposition == "inline",
            data=data,
        )
    )


def declared_type(part: Message) -> str:
    """The Content-Type as declared (lower case), even when it lacks a subtype."""
    raw = raw_field(part, "content-type") or ""
    words = raw.split(";", 1)[0].split()
    main = words[0].lower() if words else ""
    if main and "/" not in main:
        return main
    return part.get_content_type()


def _body(path: str, part: Message, content_type: str) -> BodyPart:
    label = _charset_label(part)
    cte = str(part.get("content-transfer-encoding", "") or "").strip().lower()
    decoded = decode_text(_payload_bytes(part), label)
    return BodyPart(path, content_type, label, cte, decoded)


def _charset_label(part: Message) -> str | None:
    value = part.get_param("charset")
    if isinstance(value, tuple):
        value = value[2]
    if value is None:
        return None
    return str(value).strip() or None


def _payload_bytes(part: Message) -> bytes:
    if part.is_multipart():
        if part.get_content_maintype() == "message":
            return part.as_bytes()
        return b""
    if str(part.get("content-transfer-encoding", "")).lower() == "base64":
        with contextlib.suppress(ValueError):  # binascii.Error, or 8-bit: the stdlib's way
            # the same bytes as get_payload(decode=True), which holds the payload three more
            # times on the way (encoded, split into lines, joined): 6x a résumé's size
            return binascii.a2b_base64(str(part.get_payload()))
    try:
        data = part.get_payload(decode=True)
    except Exception:  # uudecode and friends raise on broken input
        data = None
    if isinstance(data, bytes):
        return data
    text = part.get_payload()
    return text.encode("utf-8", errors="surrogateescape") if isinstance(text, str) else b""


def filename(part: Message) -> str | None:
    """The attachment's file name: RFC 2231 (with continuations), RFC 2047 or raw 8-bit."""
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        field_value = raw_field(part, header)
        if field_value is None:
            continue
        holder = Message()
        holder[header] = field_value
        try:
            value = holder.get_param(param, header=header)
        except Exception:  # malformed parameter lists
            continue
        if value is None:
            continue
        name = _param_text(value)
        if name:
            return name
    return None


def raw_field(part: Message, name: str) -> str | None:
    """A header as written, with raw 8-bit bytes decoded (UTF-8, else CP932 or EUC-JP)."""
    wanted = name.lower()
    for key, value in part.raw_items():
        if key.lower() == wanted:
            text = str(value)
            if any("\udc80" <= ch <= "\udcff" for ch in text):
                text = decode_text(text.encode("ascii", errors="surrogateescape"), None).text
            return text
    return None


def _param_text(value: str | tuple[str | None, str | None, str]) -> str:
    if isinstance(value, tuple):
        charset, _language, text = value
        try:
            raw = text.encode("latin-1", errors="surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", errors="surrogateescape")
        return decode_text(raw, charset or None).text.strip()
    return decode_header_words(value.strip('"')).strip()
