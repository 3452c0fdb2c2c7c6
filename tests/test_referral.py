"""Issue 20 part 6: the referral exit. A candidate's personal link `/f/{token}` leads only to the
configured application page with their referral code (an unknown token is a 404), follow-up
mail carries it, and an application quoting the code — taken in by the daemon from Dovecot —
records source `referral` and the referrer, counted by the report."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import threading
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, wait_until, write_config
from servers import Dovecot, ImapAccount, SmtpSink, free_port
from test_newsletter import CREATED, RULE, site

from mailflow.clock import FrozenClock
from mailflow.errors import ProblemsError
from mailflow.followups.scheduler import FollowUpScheduler
from mailflow.intake.referral import quoted_codes
from mailflow.kpi.report import compute
from mailflow.mail.parse import Mail
from mailflow.outgoing.outbox import Outbox
from mailflow.pool import referrals
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import load_config
from mailflow.starter import SHIPPED_RULES
from mailflow.store import open_store

TOKYO = ZoneInfo("Asia/Tokyo")
APPLY = "https://www.example.co.jp/apply?job=sales"
APPLICATION = """\
From: =?UTF-8?B?5L2Q6Jek5qyh6YOO?= <jiro.sato@example.net>
To: {to}
Subject: =?UTF-8?B?44CQ5b+c5Yuf44CR5Za25qWt6IG3?=
Message-ID: <referred-1@example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

採用ご担当者様

営業職に応募いたします。佐藤次郎です。
紹介コード：{code}
"""


@pytest.fixture(autouse=True)
def password(imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)


def web(port: int, apply_url: str = APPLY) -> str:
    return (f'[web]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n'
            f'[referral]\napply_url = "{apply_url}"\n')


def answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code in (302, 404)
    except httpx.HTTPError:
        return False


def test_a_referred_application_records_its_referrer_and_counts(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount) -> None:
    port = free_port()
    config = write_config(tmp_path, imap_account, extra=web(port))
    with DaemonThread(config) as running:
        daemon = running.daemon
        pool = TalentPool(daemon.store, daemon.clock)
        with daemon.lane, daemon.store.transaction():
            hanako, _ = pool.apply(Applicant("山田 花子", "hanako@example.net", (), "営業", "",
                                             "direct"), None)
            token = referrals.referral_token(daemon.store, daemon.clock, hanako["id"])
            again = referrals.referral_token(daemon.store, daemon.clock, hanako["id"])
        assert again == token  # one link per referrer
        link = referrals.referral_link(daemon.config.web.public_url, token)
        wait_until(lambda: answers(link), what="the web edge")
        followed = httpx.get(link)
        assert followed.status_code == 302
        location = followed.headers["location"]
        assert location.startswith("https://www.example.co.jp/apply?")
        query = parse_qs(urlsplit(location).query)
        assert query["job"] == ["sales"] and len(query["ref"]) == 1
        code = query["ref"][0]
        assert referrals.CODE.match(code) and code not in token
        assert httpx.head(link).status_code == 302
        # nothing in the request leads anywhere else; unknown and malformed tokens are 404s
        base = daemon.config.web.public_url
        for path in (f"/f/{token}?next=https://evil.example", f"/f/{token}#https://evil"):
            answer = httpx.get(base + path)
            assert answer.headers["location"] == location
        for bad in ("/f/" + "A" * 32, "/f/x", f"/f/{token}/https://evil.example",
                    "/f/%2F%2Fevil.example", f"/f/{token[:-2]}"):
            answer = httpx.get(base + bad)
            assert answer.status_code == 404 and "location" not in answer.headers, bad
            assert "リンクが見つかりません" in answer.text
        # a friend applies through the page; the mail quotes the code
        raw = APPLICATION.format(to=imap_account.address, code=code).replace("\n", "\r\n")
        (tmp_path / "application.eml").write_bytes(raw.encode())
        explained = subprocess.run([*MAILFLOW, "explain", str(tmp_path / "application.eml"),
                                    "-c", str(config), "--json"], capture_output=True,
                                   text=True, env=env_for(imap_account), check=True)
        plan = json.loads(explained.stdout)
        assert plan["referrer"] == hanako["id"] and plan["applicant"]["source"] == "referral"
        dovecot.append(imap_account.username, "INBOX", raw.encode())
        jiro = wait_until(lambda: pool.by_email("jiro.sato@example.net"),
                          what="the referred candidate")
        assert jiro["source"] == "referral" and jiro["referred_by"] == hanako["id"]
        assert jiro["applications"][-1]["source"] == "referral"
        [event] = daemon.store.find("events", "type", "referred")
        assert event["candidate_id"] == jiro["id"]
        assert event["data"]["referrer_id"] == hanako["id"]
        report = compute(daemon.store, daemon.config, None, None, clock=daemon.clock)
        assert report["referrals"] == 1
        assert report["by_source"]["referral"]["applications"] == 1
        assert report["by_source"]["direct"]["applications"] == 1
        assert report["applications"] == 2


def test_without_an_apply_url_every_referral_link_is_a_404(
        tmp_path: Path, imap_account: ImapAccount) -> None:
    port = free_port()
    config = write_config(tmp_path, imap_account, extra=web(port, ""))
    with DaemonThread(config) as running:
        daemon = running.daemon
        with daemon.lane, daemon.store.transaction():
            hanako, _ = TalentPool(daemon.store, daemon.clock).apply(
                Applicant("山田 花子", "hanako@example.net", (), "営業", "", "direct"), None)
            token = referrals.referral_token(daemon.store, daemon.clock, hanako["id"])
        link = referrals.referral_link(daemon.config.web.public_url, token)
        wait_until(lambda: answers(link), what="the web edge")
        assert httpx.get(link).status_code == 404


def test_a_follow_up_mail_carries_the_referral_link(tmp_path: Path, imap_account: ImapAccount,
                                                    smtp_sink: SmtpSink) -> None:
    path = write_config(tmp_path, imap_account, smtp_sink, extra=web(8025))
    path.write_text(path.read_text().replace(str(SHIPPED_RULES),
                                             str(site(tmp_path, RULE))))
    config = load_config(path)
    clock = FrozenClock(CREATED)
    lane = threading.RLock()
    with open_store(config.data_dir, config.store.engine) as store:
        outbox = Outbox(store, clock, config, lane)
        scheduler = FollowUpScheduler(store, clock, config, outbox, lane)
        pool = TalentPool(store, clock)
        hanako, _ = pool.apply(Applicant("Hanako", "hanako@example.net", (), "営業", "",
                                         "direct"), None)
        pool.consent_change(hanako, "newsletter", True, "consent page", "test")
        scheduler.tick()
        for when in (datetime(2026, 1, 13, 10, 1, tzinfo=TOKYO),
                     datetime(2026, 2, 10, 10, 1, tzinfo=TOKYO)):
            clock.set(when)
            scheduler.tick()
            outbox.deliver_due()
        links = []
        for message in smtp_sink.messages:
            mail = email.message_from_bytes(message.data, policy=email.policy.default)
            text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            [line] = [x for x in text.splitlines() if "/f/" in x]
            links.append(line.split(": ", 1)[1])
        assert len(links) == 2 and links[0] == links[1]
        assert links[0].startswith("http://127.0.0.1:8025/f/")
        assert "hanako" not in links[0].lower() and hanako["id"] not in links[0]
        token = links[0].rsplit("/", 1)[1]
        code = referrals.code_of(store, token)
        assert code is not None and referrals.referrer_of(store, code) == hanako["id"]


@pytest.mark.parametrize(("text", "found"), [
    ("紹介コード: ABCD2345", ["ABCD2345"]),
    ("紹介コード：abcd2345\n", ["ABCD2345"]),
    ("Referral code: ABCD2345", ["ABCD2345"]),
    ("https://www.example.co.jp/apply?job=1&ref=ABCD2345 から応募", ["ABCD2345"]),
    ("xref=ABCD2345", []),
    ("紹介コード: ABCD23456", []),  # nine characters: not a code
    ("ref=ABCD2345 紹介コード: WXYZ6789", ["WXYZ6789", "ABCD2345"]),
])
def test_the_code_is_found_where_the_application_page_puts_it(text: str,
                                                              found: list[str]) -> None:
    assert list(quoted_codes(Mail(subject="応募", text=text))) == found


def test_a_referral_apply_url_must_be_a_web_page(tmp_path: Path,
                                                 imap_account: ImapAccount) -> None:
    path = write_config(tmp_path, imap_account,
                        extra='[referral]\napply_url = "javascript:alert(1)"\n')
    with pytest.raises(ProblemsError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    line = path.read_text().splitlines().index('apply_url = "javascript:alert(1)"') + 1
    assert str(problem).startswith(f"{path}:{line}: ") and "http(s)://" in str(problem)
