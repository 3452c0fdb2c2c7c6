"""Issue 21 part 3: the rewriter on generated mail. Whatever the mail, the splice changes only its
body leaves: every byte before, between and after them (top headers, other parts, attachments,
boundaries, preamble, epilogue) is identical, and inside a changed leaf's header only its
Content-Type, Content-Transfer-Encoding (and a top-level MIME-Version) may change. The new text
reads back, and any bytes give either a splice or a Refusal, never another exception."""

from __future__ import annotations

import re

from generated_mail import Written, mails
from hypothesis import given
from hypothesis import strategies as st

from mailflow.mail.parse import parse_mail
from mailflow.mail.rewrite.leaves import LeafKind
from mailflow.mail.rewrite.splice import Refusal, Spliced, splice

SNIPPETS = ["キャリアリレーのご案内 https://jobs.example.co.jp/r/AbC123",
            "①～髙ｶﾅ: this one fits no Japanese legacy charset", "plain ASCII"]
_MAY_CHANGE = re.compile(rb"(?i)^(content-type|content-transfer-encoding|mime-version)\s*:")


def adding(snippet: str) -> object:
    def transform(text: str, kind: LeafKind) -> str:
        if kind == "plain":
            return f"{text}\n\n{snippet}\n"
        return text.replace("</body>", f"<p>{snippet}</p></body>")
    return transform


def _fields(header: bytes) -> list[bytes]:
    """The header's fields as written (folded lines joined), minus those the splice may edit."""
    fields: list[bytes] = []
    for line in re.split(rb"\r?\n", header):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\n" + line
        elif line:
            fields.append(line)
    return [f for f in fields if not _MAY_CHANGE.match(f)]


def _header(raw: bytes, start: int) -> bytes:
    end = re.compile(rb"\r?\n\r?\n").search(raw, start)
    return raw[start:end.start() if end else len(raw)]


@given(mails(), st.sampled_from(SNIPPETS))
def test_the_splice_touches_only_the_body_leaves(written: Written, snippet: str) -> None:
    raw = written.raw
    try:
        spliced = splice(raw, adding(snippet))  # type: ignore[arg-type]
    except Refusal as refused:
        assert refused.reasons == ["no text/plain or text/html body part outside attachments"]
        assert all(leaf.text is None for leaf in written.leaves[:1])
        return
    changes = sorted(spliced.changed, key=lambda c: c.leaf.header_start)
    assert changes, "every generated body leaf can take the snippet"
    old_cuts = [0, *(x for c in changes for x in (c.leaf.header_start, c.leaf.body_end)),
                len(raw)]
    new_cuts = [0, *(x for c in changes for x in (c.new_start, c.new_end)), len(spliced.raw)]
    for n in range(0, len(old_cuts), 2):
        assert raw[old_cuts[n]:old_cuts[n + 1]] == spliced.raw[new_cuts[n]:new_cuts[n + 1]], \
            f"bytes outside the changed leaves differ (segment {n // 2})"
    for change in changes:
        old = _fields(_header(raw, change.leaf.header_start))
        new = _fields(_header(spliced.raw, change.new_start))
        assert old == new, "a header field the splice must not touch changed"
    reread = parse_mail(spliced.raw)
    assert reread.exact and reread.unreadable == ""
    for change in changes:
        if change.leaf.kind == "plain":
            assert change.new_text.strip() in reread.text
        else:
            assert snippet in reread.html


@given(mails())
def test_a_transform_that_changes_nothing_leaves_every_byte(written: Written) -> None:
    try:
        spliced = splice(written.raw, lambda text, kind: text)
    except Refusal:
        return
    assert spliced == Spliced(written.raw, [])


@given(st.data())
def test_any_bytes_give_a_splice_or_a_refusal(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.one_of(st.builds(lambda w: w.raw, mails()),
                                        st.binary(max_size=500))))
    for _ in range(data.draw(st.integers(0, 6))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        spliced = splice(bytes(raw[:data.draw(st.integers(0, len(raw)))]), adding(SNIPPETS[0]))  # type: ignore[arg-type]
    except Refusal as refused:
        assert refused.reasons
        return
    assert isinstance(spliced.raw, bytes)
