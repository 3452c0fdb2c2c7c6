"""Issue 14 (pure): markers only in HR's own words, only from the company; HR's corrections as
examples and the rules they suggest; the notice HR gets for an uncertain mail."""

from __future__ import annotations

import pytest

from mailflow.intake.authorship import company_wrote
from mailflow.mail.parse import parse_mail
from mailflow.mail.rewrite.markers import strip_html, strip_plain
from mailflow.mail.rewrite.quotes import own_text_end
from mailflow.rejection.recognise import (
    KnownCandidate,
    assess,
    decide,
    load_rejection_rules,
    read_note,
)
from mailflow.rejection.recognise.corrections import example, mask, suggest
from mailflow.rejection.reviews import review_notice
from mailflow.starter import SHIPPED_RULES

RULES = load_rejection_rules(SHIPPED_RULES)
CANDIDATE = "hanako@example.com"
REJECTION = "山田 花子 様\r\n\r\n慎重に選考した結果、今回は採用を見送らせていただきます。\r\n"


def _mail(body: str, subject: str = "選考結果のご連絡", headers: str = "",
          sender: str = "jobs@example.co.jp", kind: str = "plain") -> bytes:
    return (f"From: {sender}\r\nTo: {CANDIDATE}\r\nSubject: {subject}\r\n{headers}"
            f"MIME-Version: 1.0\r\nContent-Type: text/{kind}; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + body.encode()


def _known(email: str) -> KnownCandidate | None:
    return KnownCandidate(email, "interviewing") if email == CANDIDATE else None


@pytest.mark.parametrize("quote", [
    "> #mailflow rejection=no\r\n",
    "-----Original Message-----\r\nFrom: x\r\n#mailflow rejection=no\r\n",
    "差出人: 山田 花子 <hanako@example.com>\r\n送信日時: 2024年4月1日 10:00\r\n件名: 応募\r\n"
    "#mailflow rejection=no\r\n",
    "2024年4月1日(月) 10:00 山田 花子 <hanako@example.com>:\r\n#mailflow rejection=no\r\n",
    "山田花子さんが書き込みました:\r\n#mailflow rejection=no\r\n",
    "hanako <hanako@example.com>:\r\n#mailflow rejection=no\r\n",
])
def test_a_forbidding_line_inside_a_quoted_original_does_not_stop_a_rejection(quote: str) -> None:
    decision = decide(parse_mail(_mail(REJECTION + "\r\n" + quote)), RULES, _known)
    assert decision.rejection and decision.rule == "recognised"
    assert decision.note.rejection is None
    own = decide(parse_mail(_mail(REJECTION + "#mailflow rejection=no\r\n" + quote)), RULES,
                 _known)
    assert not own.rejection and own.rule == "forbidden-by-marker"


@pytest.mark.parametrize("container", [
    "<blockquote>{}</blockquote>", '<div class="gmail_quote">{}</div>',
    '<div id="divRplyFwdMsg">{}</div>'])
def test_html_markers_count_only_above_the_quote_container(container: str) -> None:
    quoted = container.format("<p>#mailflow rejection=no</p><p>ご縁がありませんでした</p>")
    html = f"<html><body><p>山田様</p><p>ご質問ありがとうございます。</p>{quoted}</body></html>"
    note = read_note(parse_mail(_mail(html, kind="html")))
    assert note.rejection is None and "rejection" not in note.fields
    decision = decide(parse_mail(_mail(html, "Re: ご質問", kind="html")), RULES, _known)
    assert decision.verdict == "not_rejection"  # the rejection words are only in the quote
    assert strip_html(html).text == html  # a quoted marker is not removed either


def test_plain_markers_inside_a_quote_are_neither_read_nor_removed() -> None:
    text = "本文\n#mailflow reason=経験\n> #mailflow stage=内定\n"
    markers = strip_plain(text)
    assert markers.fields == {"reason": "経験"}
    assert markers.text == "本文\n> #mailflow stage=内定\n"
    assert own_text_end(["a", "From: x", "Sent: y", "b"]) == 1
    assert own_text_end(["From: the start of a sentence, not a header block", "b"]) == 2


AUTH = "Authentication-Results: {}\r\n"


@pytest.mark.parametrize(("role", "sender", "results", "company"), [
    ("sent", "anyone@example.net", "", True),
    ("drafts", "jobs@example.co.jp", "", True),
    ("inbox", "jobs@example.co.jp", "", False),
    ("inbox", "jobs@example.co.jp", "mx.example.co.jp; dkim=pass header.d=example.co.jp", True),
    ("inbox", "jobs@example.co.jp", "mx.example.co.jp; dkim=pass header.i=@hr.example.co.jp",
     True),
    ("inbox", "jobs@example.co.jp", "mx.example.co.jp; dmarc=pass header.from=example.co.jp",
     True),
    ("inbox", "jobs@example.co.jp", "mx.example.co.jp; dmarc=fail header.from=example.co.jp",
     False),
    ("inbox", "jobs@example.co.jp", "mx.example.co.jp; dkim=pass header.d=evil.example", False),
    ("inbox", "jobs@example.co.jp", "forged.example; dkim=pass header.d=example.co.jp", False),
    ("inbox", "jobs@example.co.jp", "mx.example.co.jp; ;;; garbage", False),
    ("inbox", "someone@example.net", "mx.example.co.jp; dkim=pass header.d=example.net", False),
])
def test_the_company_wrote_it_only_when_a_trusted_server_says_so(
        role: str, sender: str, results: str, company: bool) -> None:
    mail = parse_mail(_mail("本文\r\n", headers=AUTH.format(results) if results else "",
                            sender=sender))
    said = company_wrote(mail, role, "jobs@example.co.jp", ["example.co.jp"],
                         ["mx.example.co.jp"])
    assert said.company is company, said.why
    if role == "inbox" and sender.endswith("example.co.jp") and not company:
        assert "From the company, but" in said.why


MICROSOFT_FIELD = ("spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.co.jp; dkim=pass "
                   "(signature was verified) header.d=example.co.jp;dmarc=pass action=none "
                   "header.from=example.co.jp;compauth=pass reason=100")


@pytest.mark.parametrize(("fields", "company"), [
    ([MICROSOFT_FIELD], True),
    ([MICROSOFT_FIELD, "x; dkim=fail"], True),
    (["spf=none smtp.mailfrom=example.net", MICROSOFT_FIELD], False),  # the sender's is below
    (["mx.other.example; dkim=pass header.d=example.co.jp"], False),
])
def test_microsoft_365_s_field_without_an_id_is_trusted_only_on_top(
        fields: list[str], company: bool) -> None:
    headers = "".join(AUTH.format(f) for f in fields)
    mail = parse_mail(_mail("本文\r\n", headers=headers))
    said = company_wrote(mail, "inbox", "jobs@example.co.jp", [], ["microsoft-365"])
    assert said.company is company, said.why


def test_examples_keep_no_names_or_contacts_and_suggest_a_rule() -> None:
    body = ("山田 花子 様\n\n先日はありがとうございました。\n今回は貴殿を採用する運びとは"
            "ならず、心苦しく存じます。\n\n株式会社サンプル TEL 03-0000-0000 hr@example.co.jp")
    assessment = assess("結果", body)
    assert assessment.verdict != "rejection"
    stored = example("rejection", "結果", body, assessment, ["山田 花子"])
    text = "\n".join(stored["sentences"])
    assert "山田" not in text and "花子" not in text and "03-0000" not in text
    assert "@" not in text and stored["evidence_verdict"] == assessment.verdict
    assert mask("鈴木さんへのご連絡です。") == "〇〇さんへのご連絡です。"
    other = example("not_rejection", "面接のご案内",
                    "二次面接のご案内です。先日はありがとうございました。", assess("面接", "x"))
    suggestions = suggest([{**stored, "id": "e1"}, {**other, "id": "e2",
                                                   "evidence_verdict": "uncertain"}])
    by_label = {s.decide: s for s in suggestions}
    learned = by_label["rejection"]
    assert learned.decides == ("e1",)
    assert all(p in text for p in learned.phrases)
    assert "先日はありがとうございました" not in learned.phrases  # in the other label's example
    assert 'body_phrases = ["' in learned.toml() and "decide" not in learned.toml()
    assert by_label["not_rejection"].decides == ("e2",)
    assert 'decide = "not_rejection"' in by_label["not_rejection"].toml()
    assert suggest([{**stored, "id": "e1", "evidence_verdict": "rejection"}]) == []


def test_the_notice_to_hr_is_japanese_and_names_the_settling_lines() -> None:
    unsure = parse_mail(_mail("残念ながら、結果は電話でお伝えします。\r\n"))
    decision = decide(unsure, RULES, _known)
    assert decision.uncertain
    subject, body = review_notice("ab12cd34", "選考結果のご連絡", decision, "drafts")
    assert "確認" in subject and "ab12cd34" in body and "下書き" in body
    assert "→ #mailflow rejection\n" in body and "→ #mailflow rejection=no\n" in body
    assert read_note(parse_mail(_mail(body))).fields == {}  # the notice itself steers nothing
    _subject, sent = review_notice("ab12cd34", "件名", decision, "sent")
    assert "送信済み" in sent


def test_uncertain_needs_a_candidate_in_selection() -> None:
    raw = parse_mail(_mail("残念ながら、結果は電話でお伝えします。\r\n"))
    hired = decide(raw, RULES, lambda e: KnownCandidate(e, "hired"))
    assert hired.verdict == "not_rejection"
    assert decide(raw, RULES, _known).verdict == "uncertain"
