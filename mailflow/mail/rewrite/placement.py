"""Where the Career Relay invitation goes in HR's text: placeholder, before the signature, or end.

First match wins, in this order, for plain text and HTML alike:

1. ``{{ career_relay }}`` written by HR (any spacing, also ``&nbsp;`` in HTML) is replaced by the
   invitation; further placeholders are removed. In HTML, an element holding nothing but the
   placeholder is replaced as a whole.
2. Before the signature of HR's own text (the text above any quoted original, as
   `mailflow.mail.rewrite.quotes` finds it). The signature starts at, first match wins:
   a. the first ``-- `` line (RFC 3676; also ``--``);
   b. a separator line (3 or more of ― ━ ─ ＝ = - ＊ * ※ － ＿ _ ～ ~ ー ・ and spaces) whose
      block (the lines up to the next separator or the end) has a contact line (company form
      such as 株式会社 / Inc., TEL, FAX, mail, 〒, http, an address with @) and after which at most
      15 non-empty lines follow;
   c. the last paragraph, when it is at most 8 lines and 2 of them are contact lines;
   d. in HTML, a known signature container (``gmail_signature``, ``moz-signature``,
      ``id="Signature"``, ``class="signature"``).
3. At the end of HR's own text: before the quoted original, else (HTML) before ``</body>``,
   else at the very end.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mailflow.mail.rewrite.htmllines import html_lines
from mailflow.mail.rewrite.quotes import HTML_QUOTE, own_text_end

Where = Literal["placeholder", "signature", "end"]

PLACEHOLDER = re.compile(r"\{\{[\s\u00a0]*career_relay[\s\u00a0]*\}\}")
_HTML_PLACEHOLDER = re.compile(
    r"\{\{(?:\s|&nbsp;|&#160;|\u00a0)*career_relay(?:\s|&nbsp;|&#160;|\u00a0)*\}\}"
)
_SEPARATOR = re.compile(r"^[―━─＝=\-＊*※－＿_～~ー・\s]*$")
_SEPARATOR_CHARS = re.compile(r"[―━─＝=\-＊*※－＿_～~ー・]")
_SIG_DASHES = re.compile(r"^--\s?$")
_CONTACT = re.compile(
    r"株式会社|有限会社|合同会社|（株）|\(株\)|Inc\.|Co\.,? ?Ltd|Corporation|"
    r"TEL|Tel|tel|電話|FAX|Fax|E-?mail|e-?mail|Mail|メール|〒|https?://|[\w.+-]+@[\w-]+\.[\w.]+"
)
_HTML_SIGNATURE = re.compile(
    r"""(?is)<(?:div|p|span|pre|table)\b[^>]*\b(?:class|id|data-smartmail)\s*=\s*["']?"""
    r"""(?:[^"'>]*\s)?(?:gmail_signature|moz-signature|signature|Signature)\b"""
)
_BODY_CLOSE = re.compile(r"(?is)</body\s*>")
_MAX_SIGNATURE_LINES = 15
_MAX_CLOSING_PARAGRAPH = 8


@dataclass(frozen=True)
class Placed:
    """The text with the invitation in it, and which rule placed it."""

    text: str
    where: Where


def is_separator(line: str) -> bool:
    """A line drawn with 3 or more separator characters (and nothing else but spaces)."""
    return bool(_SEPARATOR.match(line)) and len(_SEPARATOR_CHARS.findall(line)) >= 3


def _is_contact(line: str) -> bool:
    return bool(_CONTACT.search(line))


def _separator_signature(lines: Sequence[str]) -> int | None:
    for index, line in enumerate(lines):
        if not is_separator(line) or not any(text.strip() for text in lines[:index]):
            continue
        block_end = next(
            (j for j in range(index + 1, len(lines)) if is_separator(lines[j])), len(lines)
        )
        rest = [text for text in lines[index + 1 :] if text.strip()]
        block = lines[index + 1 : block_end]
        if any(_is_contact(text) for text in block) and len(rest) <= _MAX_SIGNATURE_LINES:
            return index
    return None


def _closing_paragraph(lines: Sequence[str]) -> int | None:
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    start = end
    while start and lines[start - 1].strip():
        start -= 1
    paragraph = lines[start:end]
    if not start or len(paragraph) > _MAX_CLOSING_PARAGRAPH:
        return None
    return start if sum(_is_contact(text) for text in paragraph) >= 2 else None


def signature_start(lines: Sequence[str]) -> int | None:
    """Index of the line where the signature starts, among HR's own lines; None when none."""
    own = list(lines[: own_text_end(lines)])
    dashes = next((i for i, line in enumerate(own) if _SIG_DASHES.match(line)), None)
    if dashes is not None:
        return dashes
    found = _separator_signature(own)
    return found if found is not None else _closing_paragraph(own)


def _replace_placeholders(text: str, pattern: re.Pattern[str], snippet: str) -> str:
    first = pattern.search(text)
    assert first is not None
    rest = pattern.sub("", text[first.end() :])
    return text[: first.start()] + snippet + rest


def place_plain(text: str, snippet: str) -> Placed:
    """Put the plain-text ``snippet`` into ``text`` (LF line endings)."""
    if PLACEHOLDER.search(text):
        return Placed(_replace_placeholders(text, PLACEHOLDER, snippet), "placeholder")
    lines = text.split("\n")
    index = signature_start(lines)
    where: Where = "signature"
    if index is None:
        where, index = "end", own_text_end(lines)
        while index and not lines[index - 1].strip():
            index -= 1
    head, tail = lines[:index], lines[index:]
    while head and not head[-1].strip():
        head.pop()
    block = [*head, "", snippet] if head else [snippet]
    if tail and tail[0].strip():
        block.append("")
    return Placed("\n".join([*block, *tail]), where)


def _html_placeholder(html: str, snippet: str) -> str:
    first = _HTML_PLACEHOLDER.search(html)
    assert first is not None
    start, end = first.span()
    for line in html_lines(html):
        if line.start <= first.start() < line.end:
            before, after = line.before, line.after
            alone = PLACEHOLDER.fullmatch(line.text) is not None
            if alone and before and after and line.removal() == (before.start, after.end):
                start, end = before.start, after.end
            break
    return html[:start] + snippet + _HTML_PLACEHOLDER.sub("", html[end:])


def place_html(html: str, snippet: str) -> Placed:
    """Put the HTML ``snippet`` (already escaped) into ``html``."""
    if _HTML_PLACEHOLDER.search(html):
        return Placed(_html_placeholder(html, snippet), "placeholder")
    quote = HTML_QUOTE.search(html)
    limit = quote.start() if quote is not None else len(html)
    lines = [line for line in html_lines(html) if line.start < limit]
    texts = [line.text for line in lines]
    index = signature_start(texts)
    if index is not None:
        at = lines[index].insert_at
        return Placed(html[:at] + snippet + html[at:], "signature")
    container = _HTML_SIGNATURE.search(html, 0, limit)
    if container is not None:
        return Placed(html[: container.start()] + snippet + html[container.start() :], "signature")
    if quote is None:
        closes = list(_BODY_CLOSE.finditer(html))
        at = closes[-1].start() if closes else len(html)
    else:
        at = quote.start()
    return Placed(html[:at] + snippet + html[at:], "end")
