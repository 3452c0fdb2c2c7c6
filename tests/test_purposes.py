"""Issue 18 parts 1–2: purposes validated everywhere (command, rule file, import), consent by a
reply keyword and by an import column, and no re-scout without `rescout` consent (a frozen
clock, the real outbox, an aiosmtpd sink)."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from harness import MAILFLOW, PASSWORD_ENV, write_config
from servers import ImapAccount, SmtpSink
from test_scheduler import REJECTED_AT, TOKYO, World

from mailflow.clock import FrozenClock, SystemClock
from mailflow.errors import ProblemsError
from mailflow.followups.replies import reply_listener, stop_word
from mailflow.followups.rules import load_followups
from mailflow.followups.scheduler import FollowUpScheduler
from mailflow.intake.applications import Applications
from mailflow.intake.importer import import_file, read_sheet
from mailflow.mail.parse import parse_mail
from mailflow.mailbox.pipeline import Incoming
from mailflow.outgoing.outbox import Outbox
from mailflow.pool import consent
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import PURPOSES, load_config
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store import open_store

KNOWN = "known: selection, talent_pool, rescout, career_relay, newsletter, network"
BAD_RULES = """\
[[followup]]
name = "news"
after = { event = "applied", delay = "1d" }
send = "rescout.txt.j2"
subject = "お知らせ"
purpose = "nonsense-purpose"

[[followup]]
name = "tagging"
after = { event = "applied", delay = "1d" }
when = { consent = ["rescout", "rescuot"] }
tag_add = ["x"]
"""


def _config(directory: Path, rules: Path = SHIPPED_RULES) -> Path:
    path = directory / "config.toml"
    path.write_text(f'[mailbox]\nhost = "127.0.0.1"\nsecurity = "none"\n'
                    f'password_env = "{PASSWORD_ENV}"\naddress = "jobs@example.co.jp"\n\n'
                    f'[store]\npath = "data"\n\n[rules]\ndir = "{rules}"\n'
                    f'templates_dir = "{SHIPPED_TEMPLATES}"\n', encoding="utf-8")
    return path


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, *args, "-c", str(config)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, PASSWORD_ENV: "unused"})


# -- purposes validated ---------------------------------------------------------------------


def test_an_unknown_purpose_in_a_rule_file_is_named_with_file_and_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "followups.toml").write_text(BAD_RULES, encoding="utf-8")
    path = rules / "followups.toml"
    with pytest.raises(ProblemsError) as caught:
        load_followups(rules, SHIPPED_TEMPLATES, PURPOSES)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:6: followup[0].purpose: unknown purpose 'nonsense-purpose'; {KNOWN} "
        "(got 'nonsense-purpose')",
        f"{path}:11: followup[1].when.consent: unknown purpose 'rescuot'; {KNOWN}"]
    assert load_followups(rules, SHIPPED_TEMPLATES).rules  # not checked without purposes
    done = _run(_config(tmp_path, rules), "rules", "check")  # the start-up check names them
    assert done.returncode == 2
    assert f"{path}:6: followup[0].purpose: unknown purpose 'nonsense-purpose'" in done.stderr
    assert f"{path}:11:" in done.stderr


def test_the_consent_command_refuses_an_unknown_purpose(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = open_store(load_config(config).data_dir)
    try:
        TalentPool(store, SystemClock()).apply(
            Applicant("山田 太郎", "taro@example.net", (), "営業", "", "direct"), None)
    finally:
        store.close()
    done = _run(config, "consent", "taro@example.net", "nonsense-purpose", "grant", "--how", "x")
    assert done.returncode == 2
    assert done.stderr.strip() == f"mailflow: error: unknown purpose 'nonsense-purpose'; {KNOWN}"
    done = _run(config, "consent", "taro@example.net", "rescout", "grant", "--how", "電話で確認")
    assert done.returncode == 0, done.stderr
    store = open_store(load_config(config).data_dir, read_only=True)
    try:
        (candidate,) = TalentPool(store, SystemClock()).all()
        entry = candidate["consents"]["rescout"]
        assert entry["how"] == "電話で確認"
        assert entry["evidence"].startswith("admin command by cli:")
        (_seq, audited), = store.log("audit")
        assert (audited["action"], audited["target"]) == ("consent", candidate["id"])
        assert audited["detail"] == {"purpose": "rescout", "state": "granted",
                                     "reason": "電話で確認"}
        assert list(store.log("events"))[-1][1]["type"] == "consent"
    finally:
        store.close()


def test_import_consent_columns_are_validated_and_recorded_with_file_and_line(
        tmp_path: Path) -> None:
    sheet = read_sheet("氏名,メール,同意,同意撤回\n"
                       "A,a@example.net,rescout;career_relay,\n"
                       "B,b@example.net,rescout、nonsense,\n"
                       "C,c@example.net,,talent_pool\n", TOKYO, "list.csv", PURPOSES)
    assert [(p.line, p.column, p.message) for p in sheet.refused] == [
        (3, "consent", f"unknown purpose 'nonsense'; {KNOWN}")]
    assert [(r.granted, r.withdrawn) for r in sheet.rows] == [
        (("rescout", "career_relay"), ()), ((), ("talent_pool",))]
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("氏名,メール,同意\nA,a@example.net,rescout\nC,c@example.net,rescout\n",
                        encoding="utf-8")
    config = load_config(_config(tmp_path))
    store = open_store(config.data_dir)
    clock = FrozenClock(datetime(2026, 1, 5, 10, 0, tzinfo=TOKYO))
    try:
        pool = TalentPool(store, clock)
        c, _ = pool.apply(Applicant("C", "c@example.net", (), "", "", "direct"), None)
        with store.transaction():  # C withdrew before: an old list never overrides that
            pool.consent_change(c, "rescout", False, consent.PAGE, "request rq_1")
        report = import_file(store, clock, TOKYO, csv_file, purposes=config.privacy.purposes)
        # C's row changes nothing (C's withdrawal stands): unchanged, not merged
        assert (report["created"], report["merged"], report["unchanged"],
                report["refused"]) == (1, 0, 1, [])
        a, c = pool.by_email("a@example.net"), pool.by_email("c@example.net")
        assert a is not None and c is not None
        assert a["consents"]["rescout"] == {"state": "granted", "at": "2026-01-05T01:00:00.000000Z",
                                            "how": "import", "evidence": "import list.csv line 2"}
        assert c["consents"]["rescout"]["state"] == "withdrawn"
        assert "consent" in [e["type"] for e in pool.timeline(a["id"])]
        again = import_file(store, clock, TOKYO, csv_file, purposes=config.privacy.purposes)
        assert again["unchanged"] == 2
    finally:
        store.close()


# -- a reply keyword withdraws --------------------------------------------------------------


def _reply(body: str, subject: str = "Re: 新しいポジションのご案内") -> bytes:
    return (f"From: hanako@example.net\r\nTo: jobs@example.co.jp\r\nSubject: {subject}\r\n"
            "Message-ID: <reply-7@example.net>\r\nIn-Reply-To: <app-1@example.net>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" + body).encode()


def test_stop_words_are_read_in_the_candidates_own_text_only() -> None:
    assert stop_word(parse_mail(_reply("今後のご連絡は不要です。\r\n"))) == "連絡は不要"
    assert stop_word(parse_mail(_reply("配信停止をお願いします\r\n"))) == "配信停止"
    assert stop_word(parse_mail(_reply("ありがとうございます\r\n", "配信 停止"))) == "配信停止"
    quoted = "ぜひお話ししたいです。\r\n\r\n> 配信停止はこちら\r\n> 連絡不要の場合は…\r\n"
    assert stop_word(parse_mail(_reply(quoted))) is None


def test_a_reply_saying_stop_withdraws_rescout_and_newsletter(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    store = open_store(config.data_dir)
    clock = FrozenClock(datetime(2026, 1, 5, 10, 0, tzinfo=TOKYO))
    try:
        pool = TalentPool(store, clock)
        hanako, _ = pool.apply(Applicant("Hanako", "hanako@example.net", (), "", "", "direct"),
                               "<app-1@example.net>")
        stage = Applications(pool, config, None, on_reply=[reply_listener(
            store, clock, config, None)])  # as the daemon wires it
        stage.handle(Incoming("INBOX", "inbox", 1, 1, _reply("配信停止でお願いします。\r\n")))
        current = pool.get(hanako["id"])
        assert current is not None
        for purpose in ("rescout", "newsletter"):
            entry = current["consents"][purpose]
            assert (entry["state"], entry["how"], entry["evidence"]) == (
                "withdrawn", "reply keyword", "reply <reply-7@example.net>: 配信停止")
        assert set(current["consents"]) == {"rescout", "newsletter"}  # nothing else, no grant
    finally:
        store.close()


# -- no re-scout without `rescout` ----------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """As tests/test_scheduler.py's world, but `rescout` is not a notified purpose."""
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    path = write_config(tmp_path, imap_account, smtp_sink)
    config = load_config(path)
    assert "rescout" not in config.privacy.notified_purposes
    store = open_store(config.data_dir, config.store.engine)
    clock = FrozenClock(REJECTED_AT)
    lane = threading.RLock()
    outbox = Outbox(store, clock, config, lane)
    try:
        yield World(config, path, store, clock, outbox,
                    FollowUpScheduler(store, clock, config, outbox, lane), smtp_sink)
    finally:
        store.close()


def test_no_rescout_without_rescout_consent(world: World) -> None:
    silent = world.candidate("Silent")  # said nothing: rescout is not notified, so it is not held
    granted = world.candidate("Granted")
    withdrew = world.candidate("Withdrew")
    with world.store.transaction():
        for person, words in ((granted, [True]), (withdrew, [True, False])):
            current = world.pool.get(person["id"])
            assert current is not None
            for word in words:
                world.pool.consent_change(current, "rescout", word, consent.PAGE, "request rq_t")
    world.at(REJECTED_AT + timedelta(hours=1))
    world.at(REJECTED_AT + timedelta(days=1, minutes=1))
    world.at(datetime(2025, 11, 4, 10, 0, tzinfo=TOKYO))  # the first weekday after 6 months
    assert [m["To"] for m in world.mails_to("Granted")] == ["granted@example.net"]
    mail = world.mails_to("Granted")[0]
    text = mail.get_content()  # type: ignore[attr-defined]
    assert f"{world.config.web.public_url}/c/" in text  # the consent page, from the template
    for person in (silent, withdrew):
        assert world.mails_to(str(person["name"])) == []
        row = world.rows(person["id"])["rescout-6-months"]
        assert row["state"] == "skipped"
        assert row["reason"].startswith("no consent for 'rescout'")
