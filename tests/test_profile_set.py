"""Issue 20 part 1: HR's corrections — `mailflow candidate set ID|EMAIL FIELD VALUE` and a
`#mailflow skills=…` line in the company's mail — change the record, win over what mails say,
and are recorded on the timeline and (the command's) in the audit log."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from harness import MAILFLOW, PASSWORD_ENV
from test_profile import NOW, _site

from mailflow.clock import FrozenClock, parse_iso
from mailflow.intake.classify import Mailbox
from mailflow.intake.plan import Trust, plan_inbox
from mailflow.intake.sources import load_sources
from mailflow.mail.parse import parse_mail
from mailflow.mailbox.pipeline import Incoming
from mailflow.pool import audit
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.profile.dictionary import load_skills
from mailflow.profile.extract import terms
from mailflow.profile.provenance import add_found
from mailflow.rejection.sent import SentMail
from mailflow.settings.config import load_config
from mailflow.starter import SHIPPED_RULES
from mailflow.store import open_store

SKILLS_TOML = (SHIPPED_RULES / "skills.toml").read_text(encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    config = _site(tmp_path, SKILLS_TOML)
    settings = load_config(config)
    store = open_store(settings.data_dir, settings.store.engine)
    pool = TalentPool(store, FrozenClock(parse_iso(NOW)))
    candidate, _ = pool.apply(Applicant("山田 太郎", "taro@example.net", ("09012345678",),
                                        "営業", "", "direct"), "<a1@example.net>")
    add_found(candidate, terms("Java 5年", load_skills(SHIPPED_RULES)), "mail", NOW)
    pool.save(candidate)
    store.close()
    return config


def _mailflow(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, *args, "-c", str(config)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, PASSWORD_ENV: "unused"})


def _show(config: Path) -> dict:
    done = _mailflow(config, "candidate", "show", "taro@example.net", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_candidate_set_changes_the_record_and_hr_wins(site: Path) -> None:
    done = _mailflow(site, "candidate", "set", "taro@example.net", "skills",
                     "python, ｊａｖａ、Rust")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(": skills = Python, Java, Rust (source hr)\n")
    assert _mailflow(site, "candidate", "set", "taro@example.net", "desired_role",
                     "バックエンドエンジニア").returncode == 0
    assert _mailflow(site, "candidate", "set", "taro@example.net", "phone",
                     "080-1111-2222").returncode == 0
    record = _show(site)
    assert record["skills"] == ["Python", "Java", "Rust"]  # canonical names, HR's order
    assert record["desired_role"] == "バックエンドエンジニア"
    assert record["phones"] == ["08011112222"]
    skills = record["profile"]["skills"]
    assert [(s["value"], [p["source"] for p in s["provenance"]]) for s in skills] == [
        ("Python", ["hr"]), ("Java", ["hr"]), ("Rust", ["hr"])]  # the mail's entry replaced
    assert record["profile"]["desired_role"]["provenance"][0]["source"] == "hr"
    corrected = [e for e in record["timeline"] if e["type"] == "corrected"]
    assert [e["field"] for e in corrected] == ["skills", "desired_role", "phone"]
    settings = load_config(site)
    store = open_store(settings.data_dir, settings.store.engine, read_only=True)
    try:
        entries = [e for _seq, e in audit.entries(store) if e["action"] == "correct"]
    finally:
        store.close()
    assert [e["detail"] for e in entries] == [{"field": "skills"}, {"field": "desired_role"},
                                              {"field": "phone"}]
    assert "Python" not in json.dumps(entries, ensure_ascii=False)  # no values in the audit log


@pytest.mark.parametrize(("args", "message"), [
    (("skill", "Java"), "Invalid value for 'FIELD'"),
    (("phone", "12"), "phone: not a Japanese phone number: '12'"),
    (("name", " "), "name: an empty value"),
])
def test_candidate_set_refuses_bad_input_with_exit_2(site: Path, args: tuple[str, str],
                                                     message: str) -> None:
    done = _mailflow(site, "candidate", "set", "taro@example.net", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_candidate_set_for_an_unknown_candidate_exits_1(site: Path) -> None:
    done = _mailflow(site, "candidate", "set", "nobody@example.net", "skills", "Java")
    assert done.returncode == 1 and "no candidate nobody@example.net" in done.stderr


def _hr_mail(line: str) -> bytes:
    return ("From: jobs@example.co.jp\r\nTo: 山田 太郎 <taro@example.net>\r\n"
            "Subject: =?UTF-8?B?6Z2i5o6l44Gu5pel56iL?=\r\nMessage-ID: <hr-1@example.co.jp>\r\n"
            "Date: Sun, 01 Mar 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f"山田様\r\n\r\n{line}\r\n面接の日程をご連絡します。\r\n").encode()


def test_a_mailflow_skills_line_in_sent_mail_sets_the_profile(site: Path) -> None:
    settings = load_config(site)
    store = open_store(settings.data_dir, settings.store.engine)
    try:
        pool = TalentPool(store, FrozenClock(parse_iso(NOW)))
        sent = SentMail(pool, settings, pool.clock)
        raw = _hr_mail("#mailflow skills=java,Python qualifications=簿記2級")
        sent_mail = parse_mail(raw)
        plan = sent.plan(sent_mail)
        assert plan.as_json()["corrections"] == [
            {"field": "skills", "value": ["Java", "Python"]},
            {"field": "qualifications", "value": ["日商簿記2級"]}]
        sent.carry_out(plan, sent_mail, Incoming("Sent", "sent", 1, 1, raw))
        candidate = pool.by_email("taro@example.net")
        assert candidate is not None
        assert candidate["skills"] == ["Java", "Python"]
        assert candidate["qualifications"] == ["日商簿記2級"]
        assert {p["source"] for p in candidate["provenance"]} == {"hr"}
        assert [e["data"]["by"] for e in pool.timeline(candidate["id"])
                if e["type"] == "corrected"] == ["#mailflow line", "#mailflow line"]
        after = add_found(candidate, terms("Go 3年", load_skills(SHIPPED_RULES)), "mail", NOW)
        assert after == [] and candidate["skills"] == ["Java", "Python"]  # HR's list stays
    finally:
        store.close()


class _OnePerson:
    """The pool as the INBOX plan sees it: one candidate, known by the thread <a1@example.net>."""

    def __init__(self) -> None:
        self.candidate = {"id": "c_1", "status": "applied"}

    def by_thread(self, message_ids: list[str]) -> dict | None:
        return self.candidate if "<a1@example.net>" in message_ids else None

    def match(self, applicant: Applicant) -> tuple[dict | None, str]:
        return None, ""


def _inbox_mail(sender: str, results: str) -> bytes:
    return (f"From: {sender}\r\nTo: jobs@example.co.jp\r\n{results}"
            "Subject: Re: application\r\nMessage-ID: <n1@example.co.jp>\r\n"
            "In-Reply-To: <a1@example.net>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "#mailflow skills=ｊａｖａ desired_role=SE\r\nよろしくお願いします。\r\n").encode()


def test_a_mailflow_skills_line_in_inbox_counts_only_when_the_company_wrote_it() -> None:
    trust = Trust("jobs@example.co.jp", ("example.co.jp",), ("mx.example.co.jp",))
    rules, mailbox = load_sources(SHIPPED_RULES), Mailbox("jobs@example.co.jp", ("example.co.jp",))
    skills = load_skills(SHIPPED_RULES)
    signed = "Authentication-Results: mx.example.co.jp; dmarc=pass header.from=example.co.jp\r\n"
    company = plan_inbox(parse_mail(_inbox_mail("hr@example.co.jp", signed)), _OnePerson(),
                         rules, mailbox, trust, dictionary=skills)
    assert company.corrections == (("skills", ["Java"], "ｊａｖａ"), ("desired_role", ["SE"], "SE"))
    assert "set skills (#mailflow line, source hr)" in company.effects
    forged = plan_inbox(parse_mail(_inbox_mail("hr@example.co.jp", "")), _OnePerson(), rules,
                        mailbox, trust, dictionary=skills)  # From us, but nobody vouches
    assert forged.corrections == ()
    applicant = plan_inbox(parse_mail(_inbox_mail("taro@example.net", signed)), _OnePerson(),
                           rules, mailbox, trust, dictionary=skills)
    assert applicant.corrections == ()
