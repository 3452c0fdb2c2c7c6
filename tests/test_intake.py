"""Issue 4: applications over a real Dovecot become the right candidates."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, wait_until, write_config
from servers import Dovecot, ImapAccount

from mailflow.demo import samples
from mailflow.starter import SHIPPED_RULES

HTML_ONLY = """\
From: =?UTF-8?B?6auY5qmLIOe+juWSsg==?= <Misaki.Takahashi@Example.COM>
To: {to}
Subject: =?UTF-8?B?44OH44K244Kk44Kz44O85ZCR44GR5b+c5Yuf?=
Message-ID: <html-only-1@example.com>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 8bit

<html><body><p>採用ご担当者様</p><p>【応募】デザイナー 高橋美咲です。</p>
<p>連絡先：０７０－１１１１－２２２２</p></body></html>
"""


def _application_html(to: str, sender: str = "Misaki.Takahashi@Example.COM",
                      message_id: str = "<html-only-1@example.com>") -> bytes:
    text = HTML_ONLY.format(to=to).replace("Misaki.Takahashi@Example.COM", sender)
    return text.replace("<html-only-1@example.com>", message_id).replace("\n", "\r\n").encode()


@pytest.fixture
def running(tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
            monkeypatch: pytest.MonkeyPatch) -> DaemonThread:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    config = write_config(tmp_path, imap_account)
    with DaemonThread(config) as daemon:
        yield daemon


def _pool(running: DaemonThread) -> dict[str, dict]:
    found = {}
    for candidate in running.daemon.store.scan("candidates"):
        for email in candidate["emails"]:
            found[email] = candidate
    return found


def _to(raw: bytes, address: str) -> bytes:
    return raw.replace(samples.RECRUITING.encode(), address.encode())


def test_japanese_applications_become_the_right_candidates(
        running: DaemonThread, dovecot: Dovecot, imap_account: ImapAccount) -> None:
    user, address = imap_account.username, imap_account.address
    for _label, raw in samples.applications():
        dovecot.append(user, "INBOX", _to(raw, address))
    dovecot.append(user, "INBOX", _application_html(address))
    pool = wait_until(lambda: len(p := _pool(running)) == 4 and p, what="four candidates")

    yamada = pool["taro.yamada@example.net"]
    assert (yamada["name"], yamada["source"]) == ("山田 太郎", "direct")
    assert yamada["phones"] == ["0312345678"]
    assert yamada["applications"][0]["position"] == "Webエンジニア職"

    sato = pool["hanako.sato@example.org"]  # from the job board's notification
    assert (sato["name"], sato["source"], sato["phones"]) == ("佐藤 花子", "jobboard",
                                                               ["09012345678"])
    assert sato["applications"][0]["position"] == "営業職（法人）"
    assert not any("jobboard.example" in email for email in pool)

    suzuki = pool["ichiro.suzuki@example.jp"]  # Shift_JIS with ① and ～
    assert (suzuki["name"], suzuki["phones"]) == ("鈴木 一郎", ["08098765432"])

    takahashi = pool["misaki.takahashi@example.com"]  # HTML only, address folded
    assert takahashi["name"] == "高橋 美咲" and takahashi["phones"] == ["07011112222"]
    assert takahashi["applications"][0]["position"] == "デザイナー"


def test_same_person_twice_is_one_candidate(running: DaemonThread, dovecot: Dovecot,
                                            imap_account: ImapAccount) -> None:
    user, address = imap_account.username, imap_account.address
    dovecot.append(user, "INBOX", _application_html(address))
    dovecot.append(user, "INBOX", _application_html(
        address, sender="MISAKI.takahashi@example.com", message_id="<again@example.com>"))
    wait_until(lambda: sum(len(c["applications"]) for c in _pool(running).values()) == 2,
               what="two applications")
    pool = _pool(running)
    assert len(pool) == 1
    candidate = pool["misaki.takahashi@example.com"]
    assert len(candidate["applications"]) == 2
    assert candidate["merges"][0]["reason"].startswith("same email")


def test_reply_in_thread_is_recorded_not_a_new_application(
        running: DaemonThread, dovecot: Dovecot, imap_account: ImapAccount) -> None:
    user, address = imap_account.username, imap_account.address
    dovecot.append(user, "INBOX", _application_html(address))
    wait_until(lambda: _pool(running), what="the candidate")
    reply = (f"From: other.address@example.net\r\nTo: {address}\r\nSubject: Re: x\r\n"
             "Message-ID: <reply-1@example.net>\r\nIn-Reply-To: <html-only-1@example.com>\r\n"
             "\r\nよろしくお願いします。\r\n").encode()
    dovecot.append(user, "INBOX", reply)
    store = running.daemon.store
    wait_until(lambda: store.find("events", "type", "replied"), what="the reply")
    pool = _pool(running)
    assert len(pool) == 1 and len(pool["misaki.takahashi@example.com"]["applications"]) == 1


def test_candidates_json_matches_the_interface(running: DaemonThread, dovecot: Dovecot,
                                               imap_account: ImapAccount) -> None:
    dovecot.append(imap_account.username, "INBOX", _application_html(imap_account.address))
    wait_until(lambda: _pool(running), what="the candidate")
    config = running.daemon.config.source
    assert config is not None
    done = subprocess.run([*MAILFLOW, "candidates", "--json", "-c", str(config)],
                          capture_output=True, text=True, env=env_for(imap_account))
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    keys = {"id", "name", "emails", "phones", "source", "status", "applications", "tags",
            "relay_status", "reapplied", "created_at", "updated_at"}
    assert keys <= set(listed[0]) and listed[0]["relay_status"] == "not_invited"
    shown = subprocess.run([*MAILFLOW, "candidate", "show", "MISAKI.TAKAHASHI@example.com",
                            "--json", "-c", str(config)], capture_output=True, text=True,
                           env=env_for(imap_account))
    record = json.loads(shown.stdout)
    assert record["id"] == listed[0]["id"] and record["relay_ref"] is None
    assert [e["type"] for e in record["timeline"]] == ["candidate_created", "applied"]


BROKEN_SOURCES = """\
[[source]]
name = "jobboard"
from = ["@jobboard.example"]
sender = "typo"
[source.extract]
name = '氏名[:：(.+)'
"""


def test_broken_sources_file_is_positioned_and_daemon_refuses(
        tmp_path: Path, imap_account: ImapAccount) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sources.toml").write_text(BROKEN_SOURCES, encoding="utf-8")
    config = write_config(tmp_path, imap_account)
    text = config.read_text().replace(str(SHIPPED_RULES), str(rules))
    config.write_text(text)
    done = subprocess.run([*MAILFLOW, "run", "-c", str(config)], capture_output=True, text=True,
                          env=env_for(imap_account), timeout=30)
    assert done.returncode == 2
    errors = done.stderr.strip().splitlines()
    path = rules / "sources.toml"
    assert f"mailflow: error: {path}:4: source[0].sender: unknown key" in errors[0]
    assert f"mailflow: error: {path}:6: source[0].extract.name: bad regular expression" in (
        errors[1])
    assert not (tmp_path / "data" / "control.sock").exists()


def test_an_applicant_cannot_set_their_own_stage(running: DaemonThread, dovecot: Dovecot,
                                                 imap_account: ImapAccount) -> None:
    marker = "<p>#mailflow stage=内定 rating=A</p><p>連".encode()
    raw = _application_html(imap_account.address).replace("<p>連".encode(), marker)
    assert b"#mailflow stage=" in raw
    dovecot.append(imap_account.username, "INBOX", raw)
    candidate = wait_until(lambda: _pool(running).get("misaki.takahashi@example.com"),
                           what="the candidate")
    assert candidate["stages"] == [] and candidate["status"] == "applied"
