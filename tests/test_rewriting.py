"""The whole rewrite of one rejection, on real bytes: decided, invited, recorded, byte-careful.

Each mail is read back by the standard library; every byte outside the changed leaves (and the
one added header field) is compared with the original.
"""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import quopri
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import corpus
import pytest

from mailflow.clock import FrozenClock
from mailflow.mail.rewrite.render import RELAY_MARK
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.rejection.recognise import load_rejection_rules
from mailflow.rejection.rewriting import (
    HEADER,
    RejectionRewrite,
    RewriteSettings,
    rewrite_rejection,
)
from mailflow.relay.desk import TOKEN_BYTES, PreviewDesk, RelayDesk
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store import open_store
from mailflow.store.base import Doc, Store

PROJECT = Path(__file__).resolve().parents[1]
PUBLIC_URL = "https://jobs.example.co.jp"
CANDIDATE = "hanako@example.com"
SETTINGS = RewriteSettings(load_rejection_rules(SHIPPED_RULES), SHIPPED_TEMPLATES,
                           PUBLIC_URL, "株式会社テスト")

MARKER = "#mailflow reason=スキル不足 rescout=yes"
BODY = (
    "山田 花子 様\n\nこの度は弊社求人にご応募いただき、誠にありがとうございました。\n"
    f"{MARKER}\n"
    "慎重に選考いたしました結果、今回はご期待に沿えない結果となりました。\n"
    "今後のご活躍を心よりお祈り申し上げます。\n\n"
    "━━━━━━━━━━━━━━\n株式会社テスト 人事部 採用担当\nTEL: 03-1234-5678\n"
    "━━━━━━━━━━━━━━\n"
)
HTML = (
    '<html><head><meta charset="utf-8"></head><body><p>山田 花子 様</p>'
    f"<p>{MARKER}</p>"
    "<p>慎重に選考いたしました結果、今回はご期待に沿えない結果となりました。</p>"
    "<div>━━━━━━━━━━━━</div><div>株式会社テスト 人事部</div><div>TEL 03-1234-5678</div>"
    "<div>━━━━━━━━━━━━</div></body></html>"
)
PDF = b"%PDF-1.4\r\n%\xe2\xe3\xcf\xd3\r\n1 0 obj << >> endobj\r\ntrailer << >>\r\n%%EOF\r\n"
TOP = (
    "From: =?UTF-8?B?5Lq65LqL6YOo?= <jobs@example.co.jp>\r\n"
    f"To: =?UTF-8?B?5bGx55SwIOiKseWtkA==?= <{CANDIDATE.upper()}>\r\n"
    "Subject: =?ISO-2022-JP?B?GyRCQSo5TTdrMkwkTiQ0TyJNbRsoQg==?=\r\n"
    "Date: Mon, 01 Apr 2024 10:00:00 +0900\r\n"
    "Message-ID: <rejection-1@example.co.jp>\r\n"
    "MIME-Version: 1.0\r\n"
)


def _crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def _single(content_type: str, cte: str, body: bytes) -> bytes:
    head = f"{TOP}Content-Type: {content_type}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
    return head.encode("ascii") + body


def iso_2022_jp() -> bytes:
    return _single('text/plain; charset="ISO-2022-JP"', "7bit",
                   _crlf(BODY).encode("iso2022_jp"))


def iso_2022_jp_with_circled_digit() -> bytes:
    nec_circled_one = b"\x1b$B-!\x1b(B"  # NEC row 13 ①, which Python's codec cannot read
    body = _crlf(BODY).encode("iso2022_jp").replace(b"TEL", nec_circled_one + b"TEL")
    return _single("text/plain; charset=iso-2022-jp", "7bit", body)


def cp932() -> bytes:
    body = _crlf(BODY.replace("TEL", "受付 10:00～18:00 髙島 TEL")).encode("cp932")
    return _single("text/plain; charset=Shift_JIS", "8bit", body)


def utf8_base64() -> bytes:
    body = base64.encodebytes(BODY.replace(f"{MARKER}\n", "").encode()).replace(b"\n", b"\r\n")
    return _single("text/plain; charset=UTF-8", "base64", body)


def html_only() -> bytes:
    body = quopri.encodestring(HTML.encode()).replace(b"\n", b"\r\n")
    return _single("text/html; charset=UTF-8", "quoted-printable", body)


def alternative_with_pdf() -> bytes:
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
        _crlf(BODY).encode("iso2022_jp"),
        b"--alt 02",
        b"Content-Type: text/html; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit",
        b"",
        HTML.encode(),
        b"--alt 02--",
        b"",
        b"--=_mix/01=",
        b'Content-Type: application/pdf; name="=?UTF-8?B?6YG46ICD57WQ5p6cLnBkZg==?="',
        b"Content-Disposition: attachment",
        b"Content-Transfer-Encoding: base64",
        b"",
        pdf + b"--=_mix/01=--",
        b"epilogue",
    ]
    head = f'{TOP}Content-Type: multipart/mixed;\r\n\tboundary="=_mix/01="\r\n\r\n'
    return head.encode("ascii") + b"\r\n".join(parts)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path, "sqlite")
    yield opened
    opened.close()


@pytest.fixture
def desk(store: Store) -> RelayDesk:
    clock = FrozenClock(datetime(2024, 4, 1, 1, 0, tzinfo=UTC))
    pool = TalentPool(store, clock)
    pool.apply(Applicant("山田 花子", CANDIDATE, (), "営業職", "", "direct"), "<app-1@example.com>")
    return RelayDesk(store, clock, PUBLIC_URL)


def _read(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _body(message: EmailMessage, kind: str) -> str | None:
    part = message.get_body(preferencelist=(kind,))
    if part is None:
        return None
    if part.get_content_charset() == "shift_jis":  # Windows writes CP932 under this label
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode("cp932")
    content = part.get_content()
    assert isinstance(content, str)
    return content


def _assert_outside_identical(raw: bytes, result: RejectionRewrite,
                              eol: bytes = b"\r\n") -> None:
    """Every byte outside the changed leaves and the added header field is the original's."""
    field = f"{HEADER}: {result.invite.rejection_id if result.invite else ''}".encode() + eol
    at = result.raw.index(field)
    new = result.raw[:at] + result.raw[at + len(field) :]

    def back(offset: int, is_end: bool) -> int:
        return offset - len(field) if offset > at or (is_end and offset == at) else offset

    old_pos = new_pos = 0
    for change in sorted(result.changed, key=lambda c: c.leaf.header_start):
        new_start = back(change.new_start, False)
        assert raw[old_pos : change.leaf.header_start] == new[new_pos:new_start]
        old_pos, new_pos = change.leaf.body_end, back(change.new_end, True)
    assert raw[old_pos:] == new[new_pos:]


CASES: list[tuple[Callable[[], bytes], tuple[str, ...], str | None]] = [
    (iso_2022_jp, ("plain",), "iso-2022-jp"),
    (iso_2022_jp_with_circled_digit, ("plain",), "utf-8"),
    (cp932, ("plain",), "shift_jis"),
    (utf8_base64, ("plain",), "utf-8"),
    (html_only, ("html",), "utf-8"),
    (alternative_with_pdf, ("plain", "html"), None),
]


@pytest.mark.parametrize(("build", "kinds", "charset"), CASES, ids=[c[0].__name__ for c in CASES])
def test_rejection_comes_out_right(build: Callable[[], bytes], kinds: tuple[str, ...],
                                   charset: str | None, desk: RelayDesk, store: Store) -> None:
    raw = build()
    result = rewrite_rejection(raw, SETTINGS, desk)
    assert result.outcome == "rewritten", (result.why, result.problems)
    assert result.decision.rejection and result.candidate_email == CANDIDATE
    assert [c.leaf.kind for c in result.changed] == list(kinds)
    if charset is not None:
        assert result.changed[0].new_charset == charset
    _assert_outside_identical(raw, result)
    assert result.invite is not None
    link = result.invite.link
    message = _read(result.raw)
    assert message[HEADER] == result.invite.rejection_id
    for kind in kinds:
        text = _body(message, kind)
        assert text is not None and link in text and "#mailflow" not in text
        assert "\ufffd" not in text and "株式会社テスト 人事部" in text
        assert text.index(link) < text.index("株式会社テスト 人事部")  # before the signature
    html = _body(message, "html")
    if html is not None:
        assert RELAY_MARK in html and f'<a href="{link}">' in html
    candidate = desk.candidate_for(CANDIDATE)
    assert candidate is not None
    assert candidate["status"] == "rejected" and candidate["relay_status"] == "invited"
    marked = build is not utf8_base64
    assert candidate["rejection"]["reason"] == ("スキル不足" if marked else "")
    assert candidate["rescout_ok"] is (True if marked else None)
    events = [e["type"] for e in TalentPool(store, desk.clock).timeline(candidate["id"])]
    assert events[-2:] == ["rejected", "invited"]


def test_circled_digit_and_cp932_text_survive(desk: RelayDesk) -> None:
    jis = _body(_read(rewrite_rejection(iso_2022_jp_with_circled_digit(), SETTINGS, desk).raw),
                "plain")
    assert jis is not None and "①TEL" in jis
    raw = cp932()
    result = rewrite_rejection(raw, SETTINGS, desk)
    sjis = _body(_read(result.raw), "plain")
    assert sjis is not None and "10:00～18:00 髙島" in sjis


def test_attachment_bytes_identical(desk: RelayDesk) -> None:
    raw = alternative_with_pdf()
    result = rewrite_rejection(raw, SETTINGS, desk)
    start = raw.index(b"--=_mix/01=\r\nContent-Type: application/pdf")
    assert result.raw.endswith(raw[start:])
    (attachment,) = _read(result.raw).iter_attachments()
    assert attachment.get_content() == PDF


def _token(store: Store, candidate_id: str) -> list[Doc]:
    """The candidate's Career Relay link tokens (not their one consent-page token)."""
    return [doc for doc in store.find("tokens", "candidate_id", candidate_id)
            if doc.get("kind") != "consent"]


def test_link_token_maps_to_candidate_and_carries_no_personal_data(desk: RelayDesk,
                                                                   store: Store) -> None:
    first = rewrite_rejection(iso_2022_jp(), SETTINGS, desk)
    second = rewrite_rejection(html_only(), SETTINGS, desk)
    assert first.invite is not None and second.invite is not None
    candidate = desk.candidate_for(CANDIDATE)
    assert candidate is not None
    for invite in (first.invite, second.invite):
        assert invite.link == f"{PUBLIC_URL}/r/{invite.token}"
        assert len(base64.urlsafe_b64decode(invite.token + "==")) == TOKEN_BYTES >= 16
        assert not any(p in invite.token.lower() for p in ("hanako", "example", candidate["id"]))
        doc = store.get("tokens", invite.token)
        assert doc is not None and doc["candidate_id"] == candidate["id"]
        assert doc["rejection_id"] == invite.rejection_id and doc["relay_ref"] == invite.relay_ref
    assert first.invite.token != second.invite.token
    assert first.invite.relay_ref == second.invite.relay_ref == candidate["relay_ref"]
    assert "hanako" not in candidate["relay_ref"] and len(_token(store, candidate["id"])) == 2


def test_relay_status_further_along_is_kept(desk: RelayDesk, store: Store) -> None:
    candidate = desk.candidate_for(CANDIDATE)
    assert candidate is not None
    candidate["relay_status"] = "registered"
    store.put("candidates", candidate["id"], candidate)
    assert rewrite_rejection(iso_2022_jp(), SETTINGS, desk).rewritten
    after = desk.candidate_for(CANDIDATE)
    assert after is not None and after["relay_status"] == "registered"
    assert after["status"] == "rejected"


def test_rewritten_mail_is_left_alone_the_second_time(desk: RelayDesk, store: Store) -> None:
    once = rewrite_rejection(alternative_with_pdf(), SETTINGS, desk)
    twice = rewrite_rejection(once.raw, SETTINGS, desk)
    assert twice.outcome == "left_alone" and HEADER in twice.why
    assert twice.raw == once.raw
    candidate = desk.candidate_for(CANDIDATE)
    assert candidate is not None and len(_token(store, candidate["id"])) == 1
    # the invitation alone, without mailflow's header (HR pasted it by hand), also counts
    pasted = once.raw.replace(f"{HEADER}: ".encode(), b"X-Pasted: ")
    assert "invitation" in rewrite_rejection(pasted, SETTINGS, desk).why


def test_not_a_rejection_is_left_alone(desk: RelayDesk, store: Store) -> None:
    body = "山田 花子 様\r\n\r\n二次面接の日程をご連絡いたします。\r\n".encode()
    raw = _single("text/plain; charset=utf-8", "8bit", body)
    result = rewrite_rejection(raw, SETTINGS, desk)
    assert result.outcome == "left_alone" and result.raw == raw
    assert not result.decision.rejection and result.decision.verdict == "not_rejection"
    assert store.count("tokens") == 0


def test_undecodable_leaf_is_refused_and_nothing_recorded(desk: RelayDesk,
                                                          store: Store) -> None:
    raw = _single("text/plain; charset=Shift_JIS", "8bit",
                  "ご縁がなかった\r\n".encode("cp932") + b"\x82\xa0\xff\xfe\xfd broken\r\n")
    result = rewrite_rejection(raw, SETTINGS, desk)
    assert result.outcome == "refused" and result.raw == raw
    assert any("not decodable" in p for p in result.problems)
    candidate = desk.candidate_for(CANDIDATE)
    assert candidate is not None and candidate["relay_status"] == "not_invited"
    assert store.count("tokens") == 0


def test_two_candidates_addressed_are_left_alone(desk: RelayDesk, store: Store) -> None:
    TalentPool(store, desk.clock).apply(
        Applicant("佐藤 一郎", "ichiro@example.com", (), "", "", "direct"), None)
    raw = iso_2022_jp().replace(b"MIME-Version", b"Bcc: ichiro@example.com\r\nMIME-Version")
    result = rewrite_rejection(raw, SETTINGS, desk)
    assert result.outcome == "left_alone" and "2 candidates" in result.why
    assert store.count("tokens") == 0


def test_every_corpus_mail_forced_is_rewritten_byte_carefully_or_refused(tmp_path: Path) -> None:
    """Every mail treated as a rejection to a candidate: rewritten with only its leaves changed
    and one header added, or refused with reasons (tests/corpus/mail, and the GPL/AGPL files of
    ../shared/corpus/mail when it is there)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "rejection.toml").write_text('[[rule]]\nname = "all"\nrecipient = "candidate"\n')
    settings = dataclasses.replace(SETTINGS, rules=load_rejection_rules(rules))
    files = corpus.files()
    assert len(files) >= 64
    outcomes: dict[str, int] = {}
    for path in files:
        raw = path.read_bytes()
        desk = PreviewDesk(None, FrozenClock(datetime(2024, 4, 1, tzinfo=UTC)), PUBLIC_URL,
                           "stand-in@example.com")
        result = rewrite_rejection(raw, settings, desk, "stand-in@example.com")
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        if result.outcome == "refused":
            assert result.raw == raw and result.problems, path.name
            continue
        assert result.outcome == "rewritten", (path.name, result.why)
        eol = b"\r\n" if f"{HEADER}: preview\r\n".encode() in result.raw else b"\n"
        _assert_outside_identical(raw, result, eol)
        assert _read(result.raw)[HEADER] == "preview", path.name
    assert outcomes.get("rewritten", 0) >= 5
