"""Issue 20 part 3: the candidate's re-application intent (再応募意向) in their own word — a
choice on the consent page, over real HTTP against the running daemon, and a reply saying
「希望する」 or 「希望しない」, read from a real Dovecot by the daemon — recorded as
`reapply_intent` with when, how and evidence, apart from HR's `rescout_ok`, and followed by the
tag rules (スカウト対象)."""

from __future__ import annotations

import re

import httpx
from harness import DaemonThread, wait_until
from servers import Dovecot, ImapAccount
from test_callbacks import env  # noqa: F401  (fixture)
from test_consent_page import form_of, post_form, rejected, site  # noqa: F401  (fixture)

from mailflow.followups.replies import intent_word
from mailflow.mail.parse import parse_mail
from mailflow.pool.records import Applicant, Candidate
from mailflow.pool.talent import TalentPool

TARGET = "スカウト対象"


def _reply(body: str, subject: str = "Re: 選考結果のご連絡",
           message_id: str = "<reply-9@example.net>") -> bytes:
    return (f"From: hanako@example.net\r\nTo: jobs@example.co.jp\r\nSubject: {subject}\r\n"
            f"Message-ID: {message_id}\r\nIn-Reply-To: <app-9@example.net>\r\n"
            "Date: Mon, 02 Mar 2026 10:00:00 +0900\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" + body).encode()


def test_the_wish_is_read_in_the_candidates_own_text() -> None:
    assert intent_word(parse_mail(_reply("今後も求人のご案内を希望します。\r\n"))) == (
        True, "希望します")
    assert intent_word(parse_mail(_reply("ご案内は 希望 しません\r\n"))) == (False, "希望しません")
    assert intent_word(parse_mail(_reply("希望する／希望しない：希望しない\r\n")))[0] is False  # type: ignore[index]
    quoted = "ありがとうございました。\r\n\r\n> ご案内を希望する方はご返信ください\r\n"
    assert intent_word(parse_mail(_reply(quoted))) is None
    assert intent_word(parse_mail(_reply("了解です\r\n", "Re: ご案内を希望する方へ"))) is None


def _candidate(running: DaemonThread, candidate_id: str) -> Candidate:
    found = TalentPool(running.daemon.store, running.daemon.clock).get(candidate_id)
    assert found is not None
    return found


def test_the_consent_page_records_the_wish_and_the_tags_follow(
        site: tuple[DaemonThread, str]) -> None:  # noqa: F811
    running, base = site
    candidate_id, link = rejected(running)
    page = httpx.get(link).text
    assert "今後、新しい求人が出たときのご案内を希望されますか？" in page
    assert 'name="intent" value="yes">' in page and 'name="intent" value="no">' in page
    assert "reapply_intent" not in _candidate(running, candidate_id)  # GET changes nothing
    action, csrf, shown, ticked = form_of(page)
    fields = [("csrf", csrf), *[("shown", p) for p in shown],
              *[("consent", p) for p in [*ticked, "rescout"]], ("intent", "yes")]
    answer = post_form(action, fields, {"Origin": base})
    assert answer.status_code == 200 and "保存しました" in answer.text
    assert 'name="intent" value="yes" checked>' in answer.text
    candidate = _candidate(running, candidate_id)
    intent = candidate["reapply_intent"]
    assert (intent["wish"], intent["how"]) == (True, "consent page")
    assert re.fullmatch(r"request rq_[0-9a-f]{12} at \d{4}-.*Z", intent["evidence"])
    assert candidate["rescout_ok"] is None  # HR's view stays apart
    assert TARGET in candidate["tags"]  # wish and rescout consent: a scout target
    _action, csrf, shown, ticked = form_of(httpx.get(link).text)
    fields = [("csrf", csrf), *[("shown", p) for p in shown],
              *[("consent", p) for p in ticked], ("intent", "no")]
    assert post_form(action, fields, {"Origin": base}).status_code == 200
    candidate = _candidate(running, candidate_id)
    assert candidate["reapply_intent"]["wish"] is False
    assert TARGET not in candidate["tags"]
    timeline = TalentPool(running.daemon.store, running.daemon.clock).timeline(candidate_id)
    assert [e["data"]["wish"] for e in timeline if e["type"] == "reapply_intent"] == [True,
                                                                                      False]


def test_a_reply_saying_kibou_through_the_daemon_records_the_wish(
        site: tuple[DaemonThread, str], dovecot: Dovecot,  # noqa: F811
        imap_account: ImapAccount) -> None:
    running, _base = site
    daemon = running.daemon
    with daemon.lane:
        hanako, _ = TalentPool(daemon.store, daemon.clock).apply(
            Applicant("佐藤 花子", "hanako@example.net", (), "営業", "", "direct"),
            "<app-9@example.net>")
    dovecot.append(imap_account.username, "INBOX",
                   _reply("お世話になっております。\r\n今後も求人のご案内を希望します。\r\n"))
    wait_until(lambda: "reapply_intent" in _candidate(running, hanako["id"]),
               what="the reply's wish recorded")
    intent = _candidate(running, hanako["id"])["reapply_intent"]
    assert (intent["wish"], intent["how"]) == (True, "reply")
    assert intent["evidence"] == "reply <reply-9@example.net>: 希望します"
    dovecot.append(imap_account.username, "INBOX",
                   _reply("やはりご案内は希望しません。\r\n", message_id="<reply-10@example.net>"))
    wait_until(lambda: _candidate(running, hanako["id"])["reapply_intent"]["wish"] is False,
               what="the second reply's wish recorded")
    consents = _candidate(running, hanako["id"]).get("consents", {})
    assert consents == {}  # a reply records the wish, never a consent
