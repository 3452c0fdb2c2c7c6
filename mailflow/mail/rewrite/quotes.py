"""Where HR's own text ends and a quoted original begins, in plain text and in HTML (pure).

HR's own text is what they wrote above the first sign of a quoted original. In plain text that
is the first line that is, first match wins:

- a ``>`` quote, or an introducer: ``-----Original Message-----``, ``----- 元のメッセージ -----``,
  ``---------- Forwarded message ---------``, ``On … wrote:``;
- a Gmail or Thunderbird attribution: ``2024年4月1日(月) 10:00 山田 花子 <hanako@example.com>:``,
  ``2024/04/01 10:00 山田さんは書きました:``, ``…さんが書き込みました:``, any line ending in
  ``<address>:``;
- an Outlook header block: a ``差出人:``/``From:`` line followed within four lines by
  ``送信日時:``/``Sent:``/``日付:``/``Date:``/``宛先:``/``To:``/``件名:``/``Subject:``.

In HTML the own text ends at the first ``<blockquote>`` or Gmail/Outlook/Thunderbird quote
container (``gmail_quote``, ``moz-cite-prefix``, ``divRplyFwdMsg``, ``appendonsend``,
``OutlookMessageHeader``); the text before it is then cut as plain text (an Outlook header block
written as paragraphs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_QUOTE_INTRO = re.compile(
    r"^(>|-{2,}\s*Original Message\s*-{2,}|-{2,}\s*元のメッセージ\s*-{2,}|"
    r"-{2,}\s*Forwarded message\s*-{2,}|-{2,}\s*転送されたメッセージ\s*-{2,}|"
    r"On .+ wrote:$|\d{4}[年/]\d{1,2}[月/]\d{1,2}.*[:：]$|"
    r".*(?:さん|様)?(?:が|は)書き(?:込み)?ました\s*[:：]?$|.*<[^<>\s]+@[^<>\s]+>\s*[:：]$)"
)
_HEADER_FROM = re.compile(r"^(?:差出人|送信者|From)\s*[:：]", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^(?:送信日時|送信日|日付|Sent|Date|宛先|To|件名|Subject|CC)\s*[:：]",
                          re.IGNORECASE)
HTML_QUOTE = re.compile(
    r"""(?is)<blockquote\b|<div[^>]*\b(?:class|id)\s*=\s*["']?[^"'>]*"""
    r"(?:gmail_quote|moz-cite-prefix|divRplyFwdMsg|appendonsend|OutlookMessageHeader)"
)
_LOOKAHEAD = 4


def _header_block(lines: Sequence[str], index: int) -> bool:
    if not _HEADER_FROM.match(lines[index].strip()):
        return False
    following = lines[index + 1 : index + 1 + _LOOKAHEAD]
    return any(_HEADER_NEXT.match(line.strip()) for line in following)


def own_text_end(lines: Sequence[str]) -> int:
    """Index of the first line of a quoted original, or ``len(lines)``."""
    for index, line in enumerate(lines):
        if _QUOTE_INTRO.match(line.strip()) or _header_block(lines, index):
            return index
    return len(lines)


def own_plain(text: str) -> str:
    """The plain ``text`` above any quoted original (LF line endings)."""
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(lines[: own_text_end(lines)])


def html_quote_start(html: str) -> int:
    """Offset of the first quote container in ``html``, or ``len(html)``."""
    found = HTML_QUOTE.search(html)
    return found.start() if found is not None else len(html)
