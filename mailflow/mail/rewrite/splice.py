"""Splice new body text into a mail's original bytes, touching nothing else.

``splice`` decodes each body leaf (see ``leaves``), hands the text to a transform, and replaces
only the byte ranges of the leaves whose text changed: their body, and where needed their own
``Content-Type`` charset parameter and ``Content-Transfer-Encoding`` field. Every other byte (top
headers, other parts, boundaries, preamble, epilogue, attachments) is copied unchanged.

Choices, each for a reason:

* The charset stays what the bytes really are when every new character fits (ISO-2022-JP mail
  stays ISO-2022-JP); otherwise the leaf switches to UTF-8 and an HTML ``<meta>`` charset is
  updated too. A mislabelled leaf (the label says one charset, the bytes are another) is
  re-encoded in the charset of its bytes and its label corrected.
* base64 stays base64 and quoted-printable stays quoted-printable. An identity encoding (7bit,
  8bit, binary) is kept when the new bytes are valid for it; 7bit (or none) that must now carry
  8-bit bytes becomes **base64**: it survives any transport (no reliance on 8BITMIME, lines are
  short, DKIM-safe), and it is what Japanese mail clients use for UTF-8 text, where
  quoted-printable would triple the size and make the source unreadable anyway.
* The transform sees text with LF line endings when the leaf's text uses CRLF throughout; the new
  text is written back with the leaf's own line ending, and base64 lines end like the leaf's
  header lines.
* A leaf that cannot be decoded exactly (replacement characters, a damaged or unknown transfer
  encoding), or that sits inside multipart/signed, makes ``splice`` refuse the whole mail.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from mailflow.errors import MailflowError
from mailflow.mail.charset import Decoded, decode_text, encode_text
from mailflow.mail.rewrite import transfer
from mailflow.mail.rewrite.leaves import Leaf, LeafKind, find_body_leaves
from mailflow.mail.rewrite.transfer import Transfer, TransferError

Transform = Callable[[str, LeafKind], str]

__all__ = ["Leaf", "LeafChange", "Refusal", "Spliced", "Transform", "find_body_leaves", "splice"]

_LABELS = {
    "utf-8": "UTF-8",
    "us-ascii": "US-ASCII",
    "iso-2022-jp": "ISO-2022-JP",
    "shift_jis": "Shift_JIS",
    "euc-jp": "EUC-JP",
}
_CHARSET_PARAM = re.compile(rb'(?i)(?<=[;\s])charset\s*=\s*("[^"\r\n]*"|[^;\s]*)')
_META_CHARSET = re.compile(r"""(?is)<meta\s[^>]*?charset\s*=\s*["']?([^"'\s;/>]+)""")
_HEAD = re.compile(r"(?is)<head(?:\s[^>]*)?>")


class Refusal(MailflowError):
    """The mail must stay untouched; ``reasons`` says which leaf and why, one line each."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


@dataclass(frozen=True)
class LeafChange:
    """One rewritten leaf: what it said, what it says now, and how it is now encoded.

    ``old_charset``/``old_cte`` are the declared values (None when absent); ``new_charset`` and
    ``new_cte`` are what the leaf now declares or, when its header was kept, what its bytes are.
    ``new_start``/``new_end`` delimit the leaf (header start to body end) in the new bytes.
    """

    leaf: Leaf
    old_text: str
    new_text: str
    old_charset: str | None
    new_charset: str
    old_cte: str | None
    new_cte: str
    new_start: int
    new_end: int


@dataclass(frozen=True)
class Spliced:
    """The new bytes and the leaves that changed (empty when the transform changed nothing)."""

    raw: bytes
    changed: list[LeafChange]


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    data: bytes


@dataclass(frozen=True)
class _Source:
    leaf: Leaf
    cte: Transfer
    decoded: Decoded
    text: str
    crlf: bool


def _decode_leaf(raw: bytes, leaf: Leaf) -> _Source | str:
    """The leaf's text, or the reason it cannot be decoded exactly."""
    if "multipart/signed" in leaf.ancestors:
        return f"{leaf.describe()}: inside multipart/signed; a rewrite would break the signature"
    cte = transfer.normalise(leaf.cte)
    if cte is None:
        return f"{leaf.describe()}: unknown Content-Transfer-Encoding {leaf.cte!r}"
    try:
        data = transfer.decode(raw[leaf.body_start : leaf.body_end], cte)
    except TransferError as exc:
        return f"{leaf.describe()}: {exc}"
    decoded = decode_text(data, leaf.charset)
    if not decoded.exact:
        why = "; ".join(decoded.problems) or "replacement characters"
        return f"{leaf.describe()}: charset {leaf.charset or 'none'!r} not decodable exactly: {why}"
    text = decoded.text
    crlf = "\n" in text and text.count("\r\n") == text.count("\n")
    if "\n" not in text and leaf.eol == b"\r\n":
        crlf = True
    return _Source(leaf, cte, decoded, text.replace("\r\n", "\n") if crlf else text, crlf)


def _label_reads(label: str | None, data: bytes, text: str) -> bool:
    """Whether the declared label, as it stands, reads ``data`` back as ``text`` cleanly."""
    back = decode_text(data, label)
    return back.exact and not back.problems and back.text == text


def set_meta_charset(html: str, charset: str) -> str:
    """Point every ``<meta>`` charset at ``charset``; add one after ``<head>`` when none."""
    if _META_CHARSET.search(html):
        return _META_CHARSET.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + charset, html)
    head = _HEAD.search(html)
    if head is None:
        return html
    return f'{html[: head.end()]}<meta charset="{charset}">{html[head.end() :]}'


def _encode(source: _Source, new_text: str) -> tuple[str, str, str, bytes]:
    """(charset, new text, text as encoded, bytes): the original charset if it fits, else UTF-8.

    An HTML leaf whose declared label changes gets its ``<meta>`` charset changed to match.
    """

    def wire(text: str) -> str:
        return text.replace("\r\n", "\n").replace("\n", "\r\n") if source.crlf else text

    charset = source.decoded.charset
    data = encode_text(wire(new_text), charset)
    if data is None:
        charset = "utf-8"
    leaf = source.leaf
    if leaf.kind == "html" and (
        data is None or not _label_reads(leaf.charset, data, wire(new_text))
    ):
        new_text = set_meta_charset(new_text, _LABELS.get(charset, charset))
        data = encode_text(wire(new_text), charset)
    text = wire(new_text)
    return charset, new_text, text, data if data is not None else text.encode("utf-8")


def _choose_cte(old: Transfer, data: bytes) -> Transfer:
    if old in ("base64", "quoted-printable") or transfer.fits_identity(data, old):
        return old
    return "base64"


def _encode_body(raw: bytes, leaf: Leaf, cte: Transfer, data: bytes) -> bytes:
    if cte == "base64":
        body = transfer.encode_base64(data, leaf.eol)
        old = raw[leaf.body_start : leaf.body_end]
        return body if old.endswith(b"\n") or not body else body[: -len(leaf.eol)]
    if cte == "quoted-printable":
        return transfer.encode_qp(data, leaf.eol)
    return data


def _field_eol(raw: bytes, end: int) -> bytes:
    if raw[end - 2 : end] == b"\r\n":
        return b"\r\n"
    return b"\n" if raw[end - 1 : end] == b"\n" else b""


def _new_field(raw: bytes, leaf: Leaf, text: str) -> _Edit:
    """Insert a header field at the end of the leaf's header block."""
    at = leaf.header_end
    before = b"" if at == leaf.header_start or raw[at - 1 : at] == b"\n" else leaf.eol
    return _Edit(at, at, before + text.encode("ascii") + leaf.eol)


def _charset_edit(raw: bytes, leaf: Leaf, label: str) -> _Edit:
    field = leaf.header.get("content-type")
    if field is None:
        return _new_field(raw, leaf, f"Content-Type: text/{leaf.kind}; charset={label}")
    found = _CHARSET_PARAM.search(raw, field.start, field.end)
    if found is not None:
        quoted = found.group(1).startswith(b'"')
        value = f'"{label}"' if quoted else label
        return _Edit(found.start(1), found.end(1), value.encode("ascii"))
    at = field.end - len(_field_eol(raw, field.end))
    joiner = b" " if raw[field.start : at].rstrip().endswith(b";") else b"; "
    return _Edit(at, at, joiner + f"charset={label}".encode("ascii"))


def _cte_edit(raw: bytes, leaf: Leaf, cte: Transfer) -> _Edit:
    field = leaf.header.get("content-transfer-encoding")
    if field is None:
        return _new_field(raw, leaf, f"Content-Transfer-Encoding: {cte}")
    line = f"{field.name}: {cte}".encode("ascii") + _field_eol(raw, field.end)
    return _Edit(field.start, field.end, line)


def _leaf_edits(
    raw: bytes, source: _Source, charset: str, text: str, data: bytes
) -> tuple[list[_Edit], Transfer]:
    leaf = source.leaf
    cte = _choose_cte(source.cte, data)
    edits: list[_Edit] = []
    if not _label_reads(leaf.charset, data, text):
        edits.append(_charset_edit(raw, leaf, _LABELS.get(charset, charset)))
    if cte != source.cte:
        edits.append(_cte_edit(raw, leaf, cte))
    if edits and leaf.is_top_level and leaf.header.get("mime-version") is None:
        edits.insert(0, _new_field(raw, leaf, "MIME-Version: 1.0"))
    body = _encode_body(raw, leaf, cte, data)
    if leaf.body_start == leaf.header_end and body:
        body = leaf.eol + body  # a header block that ended without an empty line
    edits.append(_Edit(leaf.body_start, leaf.body_end, body))
    return edits, cte


def _apply(raw: bytes, edits: list[_Edit]) -> bytes:
    """Apply non-overlapping edits to ``raw``."""
    out: list[bytes] = []
    pos = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        out.append(raw[pos : edit.start])
        out.append(edit.data)
        pos = edit.end
    out.append(raw[pos:])
    return b"".join(out)


def _shift(offset: int, edits: list[_Edit], *, at_end: bool) -> int:
    """Where ``offset`` of the original lands in the new bytes.

    An insertion exactly at ``offset`` counts as before it only when ``at_end`` is set.
    """
    return offset + sum(
        len(e.data) - (e.end - e.start)
        for e in edits
        if e.end < offset or (e.end == offset and (at_end or e.start < offset))
    )


def splice(raw: bytes, transform: Transform) -> Spliced:
    """Rewrite the body leaves of ``raw`` through ``transform``; raise Refusal if it must not."""
    leaves = find_body_leaves(raw)
    if not leaves:
        raise Refusal(["no text/plain or text/html body part outside attachments"])
    sources: list[_Source] = []
    reasons: list[str] = []
    for leaf in leaves:
        found = _decode_leaf(raw, leaf)
        if isinstance(found, str):
            reasons.append(found)
        else:
            sources.append(found)
    if reasons:
        raise Refusal(reasons)
    edits: list[_Edit] = []
    pending: list[tuple[_Source, str, str, Transfer]] = []
    for source in sources:
        new_text = transform(source.text, source.leaf.kind)
        if new_text == source.text:
            continue
        charset, new_text, wire_text, data = _encode(source, new_text)
        leaf_edits, cte = _leaf_edits(raw, source, charset, wire_text, data)
        pending.append((source, new_text, charset, cte))
        edits.extend(leaf_edits)
    new_raw = _apply(raw, edits)
    changes = [
        LeafChange(
            leaf=source.leaf,
            old_text=source.text,
            new_text=new_text,
            old_charset=source.leaf.charset,
            new_charset=charset,
            old_cte=source.leaf.cte,
            new_cte=cte,
            new_start=_shift(source.leaf.header_start, edits, at_end=False),
            new_end=_shift(source.leaf.body_end, edits, at_end=True),
        )
        for source, new_text, charset, cte in pending
    ]
    return Spliced(new_raw, changes)
