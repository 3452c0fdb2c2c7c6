"""Issue 4: classifying inbound mail (pure, real bytes)."""

from __future__ import annotations

from pathlib import Path

import corpus
import pytest

from mailflow.demo import samples
from mailflow.intake.classify import Mailbox, classify_inbound
from mailflow.intake.sources import load_sources
from mailflow.mail.parse import parse_mail
from mailflow.mail.people import find_phones, normalise_email, normalise_name, normalise_phone
from mailflow.starter import SHIPPED_RULES

RULES = load_sources(SHIPPED_RULES)
ANYONE = Mailbox("")  # every mail counts as addressed to the recruiting address

# Bounces (DSN, mailer daemons) and auto-replies in the corpus, by file name.
NOT_APPLICATIONS = {
    "jpmobile__bounced-jp.eml": "auto-submitted",
    "sisimai__lhost-ezweb-07.eml": "bounce",
    "sisimai__lhost-mfilter-01.eml": "bounce",
    "sisimai__lhost-trendmicro-01.eml": "bounce",
    "sisimai__lhost-x5-01.eml": "bounce",
    "sisimai__lhost-biglobe-01.eml": "bounce",
    "sisimai__make-test-11.eml": "bounce",
    "sisimai__arf-01.eml": "bounce",
    "sisimai__rfc3834-01.eml": "auto-submitted",
    "sisimai__rfc3834-02.eml": "auto-submitted",
    "enmime__dsn_with_multipart_alternative.eml": "auto-submitted",
    "enmime__multipart-wo-boundary.eml": "bounce",
    "mailparser__delivery-status.eml": "bounce",
    "rubymail__multipart_report_multiple_status.eml": "bounce",
    "rubymail__raw_email_with_mimepart_without_content_type.eml": "auto-submitted",
    "rubymail__report_422.eml": "auto-submitted",
}


@pytest.mark.parametrize("name", sorted(NOT_APPLICATIONS))
def test_bounces_and_auto_replies_are_not_applications(name: str) -> None:
    decision = classify_inbound(parse_mail(corpus.read(name)), RULES, ANYONE)
    assert decision.kind == "ignored"
    assert decision.rule == NOT_APPLICATIONS[name]


def test_person_written_corpus_mail_is_an_application() -> None:
    mail = parse_mail(corpus.read("rubymail__japanese_iso_2022.eml"))
    decision = classify_inbound(mail, RULES, ANYONE)
    assert decision.kind == "application" and decision.rule == "direct"


def test_job_board_address_is_never_the_candidate() -> None:
    raw = ("From: no-reply@jobboard.example\r\nTo: jobs@demo.example.co.jp\r\n"
           "Subject: =?UTF-8?B?5paw552A5b+c5Yuf?=\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n"
           "氏名：佐藤 花子\r\nメールアドレス：no-reply@jobboard.example\r\n").encode()
    decision = classify_inbound(parse_mail(raw), RULES, Mailbox(samples.RECRUITING))
    assert decision.kind == "ignored" and "no candidate address" in decision.reason


def test_own_domain_and_mail_not_to_us() -> None:
    mailbox = Mailbox(samples.RECRUITING, ("demo.example.co.jp",))
    own = samples.direct_application_jis().replace(b"taro.yamada@example.net",
                                                   b"hr@demo.example.co.jp")
    assert classify_inbound(parse_mail(own), RULES, mailbox).rule == "own-domain"
    elsewhere = samples.direct_application_jis().replace(samples.RECRUITING.encode(),
                                                         b"info@other.example")
    assert classify_inbound(parse_mail(elsewhere), RULES, mailbox).rule == "no-source"


def test_list_mail_is_bulk() -> None:
    raw = b"List-Id: <news.example>\r\n" + samples.direct_application_jis()
    decision = classify_inbound(parse_mail(raw), RULES, Mailbox(samples.RECRUITING))
    assert decision.rule == "bulk"


def test_normalisation() -> None:
    assert normalise_name("山田　太郎 様") == "山田 太郎"
    assert normalise_name("ﾔﾏﾀﾞ  ﾀﾛｳ") == "ヤマダ タロウ"
    assert normalise_email("  Taro.Yamada@Example.NET ") == "taro.yamada@example.net"
    assert normalise_phone("+81 90-1234-5678") == "09012345678"
    assert normalise_phone("０３－１２３４－５６７８") == "0312345678"
    assert normalise_phone("12345") is None
    assert find_phones("TEL 03(1234)5678 / 携帯 080-9876-5432") == ["0312345678", "08098765432"]


def test_shipped_sources_file_validates(tmp_path: Path) -> None:
    assert [s.name for s in RULES.source] == ["jobboard", "mynavi", "direct"]
