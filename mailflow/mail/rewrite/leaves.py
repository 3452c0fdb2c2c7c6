"""Which parts of a mail are its body text: the leaves a rejection rewrite may change.

The body is the first text/plain and the first text/html that are not attachments, found at the
top level, anywhere inside multipart/alternative, or in the *first* part of any other multipart
(mixed, related, report, signed …). The walker never looks inside message/* parts (a forwarded
or bounced mail is somebody else's text) nor inside attachments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mailflow.mail.rewrite.mime import HeaderBlock, Part, parse_message

LeafKind = Literal["plain", "html"]

_KINDS: dict[str, LeafKind] = {"text/plain": "plain", "text/html": "html"}


@dataclass(frozen=True)
class Leaf:
    """A body text part, located by byte offsets in the original mail.

    ``charset`` is the declared label as written (None when absent); ``cte`` is the declared
    Content-Transfer-Encoding, lower-cased and stripped (None when absent or empty);
    ``ancestors`` are the content types of the enclosing multiparts, outermost first.
    """

    kind: LeafKind
    header_start: int
    header_end: int
    body_start: int
    body_end: int
    charset: str | None
    cte: str | None
    header: HeaderBlock
    ancestors: tuple[str, ...]

    @property
    def eol(self) -> bytes:
        """The line ending of the leaf's own header block (CRLF or LF)."""
        return self.header.eol

    @property
    def is_top_level(self) -> bool:
        return not self.ancestors

    def describe(self) -> str:
        return f"text/{self.kind} part at byte {self.header_start}"


def _leaf(part: Part, kind: LeafKind, ancestors: tuple[str, ...]) -> Leaf:
    cte_field = part.header.get("content-transfer-encoding")
    cte = cte_field.value.strip().lower() if cte_field is not None else ""
    return Leaf(
        kind=kind,
        header_start=part.header.start,
        header_end=part.header.end,
        body_start=part.body_start,
        body_end=part.body_end,
        charset=part.content_type.params.get("charset"),
        cte=cte or None,
        header=part.header,
        ancestors=ancestors,
    )


def _candidates(part: Part, ancestors: tuple[str, ...]) -> list[Leaf]:
    if part.is_attachment:
        return []
    kind = _KINDS.get(part.content_type.value)
    if kind is not None:
        return [_leaf(part, kind, ancestors)]
    if not part.children:
        return []
    inner = (*ancestors, part.content_type.value)
    if part.content_type.value == "multipart/alternative":
        return [leaf for child in part.children for leaf in _candidates(child, inner)]
    return _candidates(part.children[0], inner)


def body_leaves(tree: Part) -> list[Leaf]:
    """The first text/plain and first text/html body leaf of a parsed mail, in mail order."""
    chosen: dict[LeafKind, Leaf] = {}
    for leaf in _candidates(tree, ()):
        chosen.setdefault(leaf.kind, leaf)
    return sorted(chosen.values(), key=lambda leaf: leaf.body_start)


def find_body_leaves(raw: bytes) -> list[Leaf]:
    """The body leaves (at most one text/plain and one text/html) of the mail ``raw``."""
    return body_leaves(parse_message(raw))
