"""Issue 21 part 3: the parser on generated input. Any bytes give a Mail (never an exception, and
never the last-resort "could not be parsed"); generated Japanese MIME mail reads back exactly
what was written: Subject, sender name, every body text, every attachment's name and bytes."""

from __future__ import annotations

import hashlib
import unicodedata

from generated_mail import JAPANESE, Written, header_text, mails
from hypothesis import given
from hypothesis import strategies as st

from mailflow.mail.parse import Mail, parse_mail

LAST_RESORT = "mail could not be parsed"


def one_line(text: str) -> str:
    """What a header value may hold once read: no control or line-break characters."""
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") or c.isspace() else c
                   for c in text)
    return " ".join(kept.split())


def _readable(mail: Mail) -> None:
    assert isinstance(mail, Mail)
    assert not mail.unreadable.startswith(LAST_RESORT), mail.unreadable


@given(st.binary(max_size=2000))
def test_any_bytes_give_a_mail(raw: bytes) -> None:
    _readable(parse_mail(raw))


@given(st.lists(st.sampled_from([
    b"Content-Type: multipart/mixed; boundary=b\r\n", b"Content-Type: text/plain; charset=",
    b"iso-2022-jp", b"\x1b$B", b"\x1b(B", b"\x1b(I", b"=?UTF-8?B?", b"=?ISO-2022-JP?Q?", b"?=",
    b"\r\n", b"\n", b"--b\r\n", b"--b--\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n", b"=E3=81", b"\x82\xa0", b"\xe3\x81\x82",
    b"Content-Disposition: attachment; filename*=UTF-8''%E3%81", b"From: ", b"Subject: ",
    b"<a@b>", b"\x00", b"\r", b" ", b"Date: ", b"Mon, 32 Foo 99999 99:99:99 +9999",
    b"Content-Type: message/rfc822\r\n", b"begin 644 x\r\n"]), max_size=60).map(b"".join))
def test_mail_shaped_bytes_give_a_mail(raw: bytes) -> None:
    _readable(parse_mail(raw))


@given(mails())
def test_generated_mail_reads_back_what_was_written(written: Written) -> None:
    mail = parse_mail(written.raw)
    _readable(mail)
    assert mail.unreadable == ""
    assert mail.subject == one_line(written.subject)
    assert [a.email for a in mail.from_] == ["taro@example.com"]
    assert mail.from_[0].name == one_line(written.from_name)
    assert mail.exact, mail.charset_facts
    for leaf in written.leaves:
        if leaf.text is None:
            found = [(a.filename, a.sha256) for a in mail.attachments]
            assert (leaf.filename, hashlib.sha256(leaf.data).hexdigest()) in found
        elif leaf.content_type == "text/plain":
            assert leaf.text in mail.text
        else:
            assert leaf.text in mail.html.replace("\r\n", "\n")
    assert len(mail.attachments) == sum(leaf.text is None for leaf in written.leaves)


@given(st.data())
def test_mutated_mail_gives_a_mail(data: st.DataObject) -> None:
    """A generated mail cut short or with bytes overwritten anywhere."""
    raw = bytearray(data.draw(mails()).raw)
    for _ in range(data.draw(st.integers(0, 8))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    end = data.draw(st.integers(0, len(raw)))
    _readable(parse_mail(bytes(raw[:end])))


CONTROL = st.sampled_from(["\r", "\n", "\x00", "\x1b", "\x07", "\u2028", "\u2029", "\t",
                           "\x85", "\x7f", "\x0b", "\x0c"])


@given(header_text(st.one_of(JAPANESE, CONTROL)))
def test_a_display_name_never_carries_a_control_character(name: tuple[str, str]) -> None:
    """An encoded-word that decodes to "太郎\\r\\nBcc: …" is read as one line."""
    text, words = name
    raw = (f"From: {words} <taro@example.com>\r\nSubject: {words}\r\n\r\nbody\r\n").encode()
    mail = parse_mail(raw)
    for value in (mail.from_[0].name, mail.subject):
        assert not any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value)
        assert value == one_line(text)


def test_a_charset_label_with_a_nul_is_unknown_not_fatal() -> None:
    """Found by the properties: `=?utf-8\\x00?B?…?=` made codecs.lookup raise ValueError and the
    whole mail unreadable; an unknown label is read like any other unknown label."""
    raw = (b"From: =?UTF-8\x00?B?5bGx55Sw?= <taro@example.com>\r\nSubject: x\r\n"
           b"Content-Type: text/plain; charset=\"utf-8\x00\"\r\n\r\n\xe6\x9c\xac\xe6\x96\x87\r\n")
    mail = parse_mail(raw)
    assert mail.unreadable == ""
    assert [a.email for a in mail.from_] == ["taro@example.com"]
    assert mail.text.strip() == "本文"
