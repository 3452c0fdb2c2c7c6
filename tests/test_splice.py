"""Constructed rejection mails: charsets, encodings, line endings, placement and markers."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from mailflow.mail.rewrite.leaves import LeafKind, find_body_leaves
from mailflow.mail.rewrite.markers import strip_html, strip_plain
from mailflow.mail.rewrite.placement import place_html, place_plain
from mailflow.mail.rewrite.render import RELAY_MARK, is_already_invited
from mailflow.mail.rewrite.splice import Refusal, Spliced, splice

INVITE = "キャリアリレー制度のご案内\nhttps://jobs.example.co.jp/r/AbC123"
INVITE_WIDE = "①キャリアリレー制度のご案内～\nhttps://jobs.example.co.jp/r/AbC123"
INVITE_HTML = f'{RELAY_MARK}<div><a href="https://jobs.example.co.jp/r/AbC123">登録</a></div>'

BODY = (
    "山田 太郎 様\n\nこの度はご応募いただき、誠にありがとうございました。\n"
    "慎重に選考いたしました結果、今回はご期待に沿えない結果となりました。\n\n"
    "-- \n株式会社テスト 人事部\nTEL: 03-1234-5678\n"
)


def _mail(headers: str, body: bytes, eol: str = "\r\n") -> bytes:
    head = "".join(line + eol for line in headers.strip("\n").split("\n"))
    return head.encode("ascii") + eol.encode("ascii") + body


def _content(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain", "html"))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def _plain(snippet: str) -> object:
    def transform(text: str, kind: LeafKind) -> str:
        if kind == "plain":
            return place_plain(text, snippet).text
        return place_html(text, INVITE_HTML).text

    return transform


def _run(raw: bytes, snippet: str = INVITE) -> Spliced:
    return splice(raw, _plain(snippet))  # type: ignore[arg-type]


JIS_HEADERS = """From: =?ISO-2022-JP?B?GyRCPzdOOxsoQg==?= <jobs@example.co.jp>
To: taro@example.com
Subject: =?ISO-2022-JP?B?GyRCQSpCdDdrMkwbKEI=?=
MIME-Version: 1.0
Content-Type: text/plain; charset="ISO-2022-JP"
Content-Transfer-Encoding: 7bit"""


def _jis_mail(eol: str = "\r\n") -> bytes:
    return _mail(JIS_HEADERS, BODY.replace("\n", eol).encode("iso2022_jp"), eol)


def _header_block(raw: bytes) -> bytes:
    return raw[: raw.index(b"\r\n\r\n") + 4] if b"\r\n\r\n" in raw else raw[: raw.index(b"\n\n")]


def test_iso_2022_jp_stays_iso_2022_jp_when_it_fits() -> None:
    raw = _jis_mail()
    result = _run(raw)
    assert _header_block(result.raw) == _header_block(raw)
    (change,) = result.changed
    assert (change.new_charset, change.new_cte) == ("iso-2022-jp", "7bit")
    body = result.raw[len(_header_block(raw)) :]
    assert body.isascii() and b"\x1b$B" in body
    text = body.decode("iso2022_jp")
    assert INVITE.replace("\n", "\r\n") in text
    assert text.index("キャリアリレー") < text.index("-- \r\n株式会社テスト")
    assert text.count("\n") == text.count("\r\n")


def test_iso_2022_jp_with_circled_digit_switches_to_utf8() -> None:
    raw = _jis_mail()
    result = _run(raw, INVITE_WIDE)
    (change,) = result.changed
    assert (change.new_charset, change.new_cte) == ("utf-8", "base64")
    new_head = _header_block(result.raw)
    assert b'Content-Type: text/plain; charset="UTF-8"\r\n' in new_head
    assert b"Content-Transfer-Encoding: base64\r\n" in new_head
    untouched = [line for line in _header_block(raw).split(b"\r\n") if b"Content-" not in line]
    assert [line for line in new_head.split(b"\r\n") if b"Content-" not in line] == untouched
    content = _content(result.raw)
    assert "①キャリアリレー制度のご案内～" in content and "山田 太郎 様" in content


def test_lf_mail_keeps_lf() -> None:
    raw = _jis_mail("\n")
    result = _run(raw, INVITE_WIDE)
    assert b"\r" not in result.raw
    assert "①" in _content(result.raw)


def test_shift_jis_is_written_as_cp932_and_keeps_8bit() -> None:
    headers = JIS_HEADERS.replace('"ISO-2022-JP"', "Shift_JIS").replace("7bit", "8bit")
    raw = _mail(headers, ("髙橋様\r\n" + BODY.replace("\n", "\r\n")).encode("cp932"))
    result = _run(raw, INVITE_WIDE)
    (change,) = result.changed
    assert (change.new_charset, change.new_cte) == ("shift_jis", "8bit")
    assert _header_block(result.raw) == _header_block(raw)
    text = result.raw[len(_header_block(raw)) :].decode("cp932")
    assert text.startswith("髙橋様\r\n") and "①キャリアリレー制度のご案内～" in text


def test_utf8_base64_stays_base64_with_short_lines() -> None:
    headers = JIS_HEADERS.replace('"ISO-2022-JP"', "utf-8").replace("7bit", "base64")
    import base64

    raw = _mail(headers, base64.encodebytes(BODY.encode()).replace(b"\n", b"\r\n"))
    result = _run(raw, INVITE_WIDE)
    assert _header_block(result.raw) == _header_block(raw)
    body = result.raw[len(_header_block(raw)) :]
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert "①キャリアリレー" in _content(result.raw)


HTML = (
    '<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-2022-jp">'
    "</head><body><p>山田 様</p><p>今回はご期待に沿えない結果となりました。</p>"
    "<div>━━━━━━━━━━━━</div><div>株式会社テスト 人事部</div><div>TEL 03-1234-5678</div>"
    "<div>━━━━━━━━━━━━</div></body></html>"
)


def test_html_only_switch_updates_meta_and_keeps_qp() -> None:
    import quopri

    headers = JIS_HEADERS.replace("text/plain", "text/html").replace("7bit", "quoted-printable")
    raw = _mail(headers, quopri.encodestring(HTML.encode("iso2022_jp")).replace(b"\n", b"\r\n"))
    result = splice(raw, lambda text, kind: place_html(text, "<p>①登録</p>").text)
    (change,) = result.changed
    assert (change.new_charset, change.new_cte) == ("utf-8", "quoted-printable")
    content = _content(result.raw)
    assert 'content="text/html; charset=UTF-8"' in content
    assert content.index("<p>①登録</p>") < content.index("株式会社テスト")
    assert content.index("<p>①登録</p>") > content.index("今回は")
    body = result.raw[len(_header_block(result.raw)) :]
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))


PDF = b"%PDF-1.4\r\n%\xe2\xe3\xcf\xd3\r\n1 0 obj << >> endobj\r\ntrailer << >>\r\n%%EOF\r\n"


def _alternative_with_pdf() -> bytes:
    import base64

    pdf = base64.encodebytes(PDF).replace(b"\n", b"\r\n")
    parts = [
        b"This is a multi-part message in MIME format.",
        b"--=_mix/01=",
        b'Content-Type: multipart/alternative; boundary="alt 02"',
        b"",
        b"--alt 02",
        b"Content-Type: text/plain; charset=ISO-2022-JP",
        b"Content-Transfer-Encoding: 7bit",
        b"",
        BODY.replace("\n", "\r\n").encode("iso2022_jp"),
        b"--alt 02",
        b"Content-Type: text/html; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit",
        b"",
        HTML.replace("iso-2022-jp", "utf-8").encode(),
        b"--alt 02--",
        b"",
        b"--=_mix/01=",
        b'Content-Type: application/pdf; name="=?UTF-8?B?5bGl5q2044Ggu+adpC5wZGY=?="',
        b"Content-Disposition: attachment",
        b"Content-Transfer-Encoding: base64",
        b"",
        pdf + b"--=_mix/01=--",
        b"epilogue",
    ]
    headers = (
        "From: jobs@example.co.jp\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed;\n\tboundary="=_mix/01="'
    )
    return _mail(headers, b"\r\n".join(parts))


def test_alternative_with_pdf_changes_only_the_text_leaves() -> None:
    raw = _alternative_with_pdf()
    result = _run(raw, INVITE_WIDE)
    assert [c.leaf.kind for c in result.changed] == ["plain", "html"]
    start = raw.index(b"--=_mix/01=\r\nContent-Type: application/pdf")
    assert result.raw.endswith(raw[start:])
    assert result.raw.startswith(raw[: raw.index(b"--alt 02") + 10])
    message = email.message_from_bytes(result.raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    (attachment,) = message.iter_attachments()
    assert attachment.get_content() == PDF
    html = message.get_body(preferencelist=("html",))
    assert html is not None and RELAY_MARK in html.get_content()


def test_unchanged_text_leaves_the_mail_alone() -> None:
    raw = _alternative_with_pdf()
    result = splice(raw, lambda text, kind: text)
    assert result.raw == raw and result.changed == []


def test_mail_without_mime_headers_gets_them_for_utf8() -> None:
    raw = b"From: jobs@example.co.jp\nSubject: result\n\nDear applicant,\n"
    result = _run(raw, INVITE)
    assert result.raw.startswith(b"From: jobs@example.co.jp\nSubject: result\nMIME-Version: 1.0\n")
    assert "キャリアリレー制度のご案内" in _content(result.raw)


def test_undecodable_leaf_refuses_and_names_it() -> None:
    headers = JIS_HEADERS.replace('"ISO-2022-JP"', "Shift_JIS").replace("7bit", "8bit")
    raw = _mail(headers, b"\x82\xa0\xff\xfe\xfd broken\r\n")
    with pytest.raises(Refusal) as caught:
        _run(raw)
    (reason,) = caught.value.reasons
    assert reason.startswith("text/plain part at byte 0: charset 'Shift_JIS' not decodable")


def test_leaves_skip_attachments_and_forwarded_mail() -> None:
    raw = _mail(
        'Content-Type: multipart/mixed; boundary="b"',
        b"--b\r\nContent-Type: text/plain; name=a.txt\r\n\r\nfile\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Content-Type: text/plain\r\n\r\nfwd\r\n--b--\r\n",
    )
    assert find_body_leaves(raw) == []


def test_placeholder_wins_and_extra_placeholders_go() -> None:
    text = "山田様\n\n{{career_relay}}\n\n以上\n{{  career_relay }}\n-- \n人事部\n"
    placed = place_plain(text, "INVITE")
    assert placed.where == "placeholder"
    assert placed.text == "山田様\n\nINVITE\n\n以上\n\n-- \n人事部\n"
    html = "<p>山田様</p><p>{{&nbsp;career_relay }}</p><p>以上</p>"
    assert place_html(html, "<div>I</div>").text == "<p>山田様</p><div>I</div><p>以上</p>"


def test_before_japanese_signature_separator() -> None:
    text = (
        "山田様\n\n────────\n■選考結果\n────────\n"
        "誠に残念ながら今回は見送りとなりました。\n以上、よろしくお願いいたします。\n"
        "\n"
        + "本文の行\n" * 16
        + "━━━━━━━━━━━━━━\n株式会社テスト 人事部 佐藤\nTEL: 03-1234-5678\n━━━━━━━━━━━━━━\n"
    )
    placed = place_plain(text, "INVITE")
    assert placed.where == "signature"
    assert "本文の行\n\nINVITE\n\n━━━━━━━━━━━━━━\n株式会社テスト" in placed.text


def test_before_closing_contact_paragraph_and_at_end() -> None:
    text = "お祈り申し上げます。\n\n株式会社テスト\n人事部 佐藤\njobs@example.co.jp\n"
    placed = place_plain(text, "INVITE")
    assert placed == type(placed)(
        "お祈り申し上げます。\n\nINVITE\n\n株式会社テスト\n人事部 佐藤\njobs@example.co.jp\n",
        "signature",
    )
    end = place_plain("お祈り申し上げます。\n\n> 応募します\n", "INVITE")
    assert (end.text, end.where) == ("お祈り申し上げます。\n\nINVITE\n\n> 応募します\n", "end")
    assert place_html("<html><body><p>a</p></body></html>", "<i>I</i>").text == (
        "<html><body><p>a</p><i>I</i></body></html>"
    )


def test_html_signature_dashes_and_gmail_quote() -> None:
    html = (
        '<div dir="ltr"><div>お祈り申し上げます。</div><div>-- <br></div><div>人事部</div>'
        '<div class="gmail_quote">On Mon wrote:<blockquote>-- <br>x</blockquote></div></div>'
    )
    placed = place_html(html, "<I>")
    assert placed.where == "signature"
    assert "お祈り申し上げます。</div><I><div>-- <br>" in placed.text


def test_markers_plain_and_html() -> None:
    text = (
        "山田様\n#mailflow reason=スキル不足 rescout=yes\n本文\n"
        "＃mailflow stage=一次面接 interviewer=佐藤 rating=B reason=経験\n"
    )
    found = strip_plain(text)
    assert found.text == "山田様\n本文\n"
    assert found.fields == {
        "reason": "経験",
        "rescout": "yes",
        "stage": "一次面接",
        "interviewer": "佐藤",
        "rating": "B",
    }
    html = (
        "<div>山田様</div><p>#mailflow reason=スキル不足</p>本文<br>＃mailflow rescout=no<br>以上"
    )
    found_html = strip_html(html)
    assert found_html.text == "<div>山田様</div>本文<br>以上"
    assert found_html.fields == {"reason": "スキル不足", "rescout": "no"}
    assert strip_plain("#mailflowx a=b\n").fields == {}
    assert strip_plain("#mailflow oops a=b\n").problems == (
        "#mailflow: 'oops' is not key=value; ignored",
    )


def test_is_already_invited() -> None:
    url = "https://jobs.example.co.jp/"
    assert is_already_invited("", f"<p>x</p>{RELAY_MARK}", url)
    assert is_already_invited("登録: https://jobs.example.co.jp/r/AbC123", "", url)
    assert not is_already_invited("https://jobs.example.co.jp/careers", "<p>hi</p>", url)
    assert not is_already_invited("https://other.example/r/AbC", "", url)


def test_walker_tolerates_real_world_boundaries() -> None:
    raw = (
        b"Content-Type: multipart/mixed;\n"
        b'\tBoundary="==_ _= 10(27)/x="\n\npreamble\n'
        b"--==_ _= 10(27)/x= \t\n"
        b'Content-Type: multipart/alternative; boundary="==_ _= 10(27)/x=_alt"\n\n'
        b"--==_ _= 10(27)/x=_alt\nContent-Type: text/plain; charset=us-ascii\n\nplain one\n"
        b"--==_ _= 10(27)/x=_alt\nContent-Type: text/html\n\n<p>html</p>"
        b"--==_ _= 10(27)/x=_alt--\n"
        b"--==_ _= 10(27)/x=\n"
        b"Content-Type: text/plain\n\nsecond text, not a body leaf\n"
        b"--==_ _= 10(27)/x=\n"
    )
    plain, html = find_body_leaves(raw)
    assert raw[plain.body_start : plain.body_end] == b"plain one"
    assert raw[html.body_start : html.body_end] == b"<p>html</p>"
    assert plain.ancestors == ("multipart/mixed", "multipart/alternative")
    result = _run(raw)
    assert result.raw.endswith(b"--==_ _= 10(27)/x=_alt--\n" + raw.split(b"_alt--\n", 1)[1])
    assert result.raw.startswith(raw[: plain.header_start])
    assert (
        b"Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: base64\n\n"
        in result.raw
    )
