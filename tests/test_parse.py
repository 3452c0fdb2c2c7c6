"""parse_mail on focused, constructed mails (real bytes, no mocks)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailflow.mail.parse import parse_mail


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("ascii")


def multipart_with(attachment_headers: str | bytes, body: bytes = b"%PDF-1.4\r\n") -> bytes:
    """An ISO-2022-JP application mail with one more part after the text."""
    if isinstance(attachment_headers, str):
        attachment_headers = attachment_headers.encode("ascii")
    head = crlf(
        "From: =?UTF-8?B?5bGx55Sw5aSq6YOO?= <taro@example.jp>\n"
        "To: recruit@example.com\n"
        "Subject: =?ISO-2022-JP?B?GyRCMX5KZxsoQg==?=\n"
        "Date: Mon, 01 Apr 2024 09:30:00 +0900\n"
        "Message-ID: <apply-1@example.jp>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b1"\n'
        "\n"
        "--b1\n"
        "Content-Type: text/plain; charset=ISO-2022-JP\n"
        "\n"
    )
    text = b"\x1b$B$h$m$7$/$*4j$$$7$^$9-!\x1b(B\r\n"  # よろしくお願いします① (CP50221)
    return head + text + b"--b1\r\n" + attachment_headers + b"\r\n" + body + b"\r\n--b1--\r\n"


def test_iso_2022_jp_mail_with_nec_circled_number() -> None:
    mail = parse_mail(multipart_with("Content-Type: application/pdf\r\n"))
    assert mail.subject == "応募"
    assert mail.text.startswith("よろしくお願いします①")
    assert mail.from_[0].name == "山田太郎"
    assert mail.from_[0].email == "taro@example.jp"
    assert mail.to[0].email == "recruit@example.com"
    assert mail.date == datetime(2024, 4, 1, 9, 30, tzinfo=timezone(timedelta(hours=9)))
    assert mail.exact
    assert mail.body_parts[0].decoded.charset == "iso-2022-jp"


def test_rfc2231_filename_with_continuations_splitting_a_utf8_character() -> None:
    headers = (
        "Content-Type: application/pdf\r\n"
        "Content-Disposition: attachment;\r\n"
        " filename*0*=UTF-8''%E5%B1%A5%E6;\r\n"  # 履 and the first byte of 歴
        " filename*1*=%AD%B4%E6%9B%B8;\r\n"
        " filename*2=.pdf\r\n"
    )
    mail = parse_mail(multipart_with(headers))
    (attachment,) = mail.attachments
    assert attachment.filename == "履歴書.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.size == len(b"%PDF-1.4\r\n")
    assert attachment.sha256 == hashlib.sha256(b"%PDF-1.4\r\n").hexdigest()


def test_rfc2231_filename_in_shift_jis() -> None:
    quoted = "".join(f"%{b:02X}" for b in "履歴書.pdf".encode("cp932"))
    headers = f"Content-Disposition: attachment; filename*=Shift_JIS''{quoted}\r\n"
    assert parse_mail(multipart_with(headers)).attachments[0].filename == "履歴書.pdf"


def test_rfc2047_word_inside_quoted_filename() -> None:
    headers = (
        "Content-Disposition: attachment;\r\n"
        ' filename="=?UTF-8?B?5bGl5q20?= =?UTF-8?B?5pu4?=.pdf"\r\n'
    )
    assert parse_mail(multipart_with(headers)).attachments[0].filename == "履歴書.pdf"


@pytest.mark.parametrize("codec", ["utf-8", "cp932"])
@pytest.mark.parametrize("name", ["職務経歴書.docx", "経歴表.xlsx"])  # 表 is 0x95 0x5C in CP932
def test_raw_8bit_filename(codec: str, name: str) -> None:
    raw = name.encode(codec)
    head = b'Content-Type: application/octet-stream; name="' + raw + b'"\r\n'
    mail = parse_mail(multipart_with(head))
    assert [a.filename for a in mail.attachments] == [name]


def test_html_only_mail_gets_text_from_html() -> None:
    raw = crlf(
        "From: a@example.com\n"
        "Subject: html\n"
        "Content-Type: text/html; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
    ) + (
        "<html><head><title>t</title><style>p {color: red}</style></head><body>"
        "<p>面接の&nbsp;日程&amp;場所</p><div>火曜<br>10時</div><script>x()</script>"
        "</body></html>"
    ).encode()
    mail = parse_mail(raw)
    assert mail.text == ""
    assert "<p>" in mail.html
    assert mail.text_from_html == "面接の 日程&場所\n\n火曜\n10時"
    assert mail.readable_text == mail.text_from_html


def test_plain_part_wins_so_text_from_html_stays_empty() -> None:
    mail = parse_mail(multipart_with("Content-Type: text/html; charset=utf-8\r\n", b"<b>x</b>"))
    assert mail.html == "<b>x</b>"
    assert mail.text_from_html == ""


def test_message_ids_references_and_header_lookup() -> None:
    raw = crlf(
        "From: a@example.com\n"
        "Message-ID:  <m3@example.com> \n"
        "In-Reply-To: <m2@example.com> (comment)\n"
        "References: <m1@example.com>\n"
        "  <m2@example.com>\n"
        "Auto-Submitted: auto-replied\n"
        "Reply-To: =?UTF-8?B?5o6h55So?= <jobs@example.com>, b@example.com\n"
        "\n"
        "hi\n"
    )
    mail = parse_mail(raw)
    assert mail.message_id == "<m3@example.com>"
    assert mail.in_reply_to == "<m2@example.com>"
    assert mail.references == ("<m1@example.com>", "<m2@example.com>")
    assert mail.header("auto-submitted") == "auto-replied"
    assert mail.header("X-Absent") is None
    assert [(a.name, a.email) for a in mail.reply_to] == [
        ("採用", "jobs@example.com"),
        ("", "b@example.com"),
    ]


def test_bad_date_is_a_problem_not_an_exception() -> None:
    mail = parse_mail(b"Date: Tue, 06 Jun 2017 27:39:33 +0600\r\nSubject: x\r\n\r\nbody\r\n")
    assert mail.date is None
    assert any("Date header is not a valid date" in p for p in mail.problems)


def test_date_without_zone_is_read_as_utc_and_noted() -> None:
    mail = parse_mail(b"Date: Thu, 29 Apr 2009 00:00:00 -0000\r\n\r\nx\r\n")
    assert mail.date == datetime(2009, 4, 29, tzinfo=UTC)
    assert any("no time zone" in p for p in mail.problems)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x1b$B",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary",
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: text/pl',
        b"Subject: =?utf-8?B?!!!?= =?x?Q?=ZZ?=\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@",
        b"From: <<<@@@>>>\r\nTo: ,,,\r\nDate: yesterday\r\n\r\n",
    ],
)
def test_never_raises(raw: bytes) -> None:
    mail = parse_mail(raw)
    assert len(mail.body_hash) == 64


def test_body_hash_ignores_line_endings_and_trailing_blanks() -> None:
    one = parse_mail(b"Subject: a\r\n\r\nline one  \r\nline two\r\n")
    two = parse_mail(b"Subject: b\n\nline one\nline two\n\n")
    three = parse_mail(b"Subject: a\r\n\r\nline one\r\nline 2\r\n")
    assert one.body_hash == two.body_hash != three.body_hash


def test_mislabelled_shift_jis_body_is_decoded_and_reported() -> None:
    raw = b"Content-Type: text/plain; charset=iso-2022-jp\r\n\r\n" + "応募します".encode("cp932")
    mail = parse_mail(raw)
    assert mail.text == "応募します"
    assert any("bytes are shift_jis" in p for p in mail.problems)
    assert any("decoded as shift_jis" in f for f in mail.charset_facts)


FIXTURES = Path(__file__).resolve().parent / "data" / "corpus"


@pytest.mark.parametrize(
    ("name", "subject", "phrase"),
    [
        ("jpmobile__au-decomail.eml", "テスト\ue4f4", "テストです\ue595"),
        ("jpmobile__docomo-emoji.eml", "題名\ue676", "本文\ue6e2"),
        ("rubymail__japanese_shift_jis.eml", "test", "今後ともよろしくお願い申し上げます！"),
        ("sisimai__make-test-11.eml", "Non Delivery Notification", "お届けできませんでした。"),
        ("rubymail__attachment_nonascii_filename.eml", "testing", "This is the first part."),
    ],
)
def test_copied_corpus_fixtures(name: str, subject: str, phrase: str) -> None:
    mail = parse_mail((FIXTURES / name).read_bytes())
    assert mail.subject == subject
    assert phrase in mail.text
    assert mail.exact


def test_copied_fixture_raw_utf8_attachment_name() -> None:
    raw = (FIXTURES / "rubymail__attachment_nonascii_filename.eml").read_bytes()
    assert [a.filename for a in parse_mail(raw).attachments] == ["ciële.txt"]
