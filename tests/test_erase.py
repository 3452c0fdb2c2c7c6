"""Issue 18 part 5: `mailflow erase` — after a person's application went through the real daemon
against Dovecot (résumé kept, rejection sent with its link over SMTP, Career Relay registration
credited), no byte of their name, email or phone is left anywhere in the data directory, in any
of the forms mail and storage give them; the ledger verifies and counts the same; the KPIs'
events still count; the person's mail leaves the mailbox as configured. Both engines.
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import stat
import subprocess
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr
from pathlib import Path
from typing import Any

import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, wait_until, write_config
from servers import Dovecot, ImapAccount, SmtpSink, free_port
from test_callbacks import event, post
from test_send_mode import SEND_MODE, folder, outbox_name

from mailflow.demo import samples

NAME, EMAIL, PHONE = "渡辺 精一", "seiichi.watanabe@example.net", "090-2468-1357"
RESUME = (f"%PDF-1.4\n% 履歴書\n氏名: {NAME}\nメール: {EMAIL}\n電話: {PHONE}\n").encode()


def application(to: str) -> bytes:
    """Their application in ISO-2022-JP with a résumé that names them (UTF-8 inside)."""
    message = MIMEMultipart()
    message.attach(MIMEText(f"採用ご担当者様\n\nWebエンジニア職に応募いたします。{NAME}と申します。\n"
                            f"電話: {PHONE}\n\nよろしくお願いいたします。\n{NAME}\n",
                            "plain", "iso-2022-jp"))
    resume = MIMEApplication(RESUME, "pdf")
    resume.add_header("Content-Disposition", "attachment",
                      filename=("utf-8", "", f"履歴書_{NAME.replace(' ', '')}.pdf"))
    message.attach(resume)
    message["From"] = formataddr((str(Header(NAME, "iso-2022-jp")), EMAIL))
    message["To"] = to
    message["Subject"] = Header(f"【応募】Webエンジニア職 {NAME}", "iso-2022-jp")  # type: ignore[assignment]
    message["Message-ID"] = "<watanabe-apply@example.net>"
    return message.as_bytes()


def rejection(account: ImapAccount) -> bytes:
    message = MIMEText(f"{NAME} 様\n\nこの度はご応募いただきありがとうございました。\n"
                       "慎重に選考いたしました結果、誠に残念ながら今回はご期待に沿えない結果となりました。\n"
                       "#mailflow reason=経験年数 rescout=yes\n\n--\n株式会社サンプル 人事部\n",
                       "plain", "iso-2022-jp")
    message["From"] = account.address
    message["To"] = formataddr((str(Header(NAME, "iso-2022-jp")), EMAIL))
    message["Subject"] = Header("選考結果のご連絡", "iso-2022-jp")  # type: ignore[assignment]
    message["Message-ID"] = "<watanabe-reject@example.co.jp>"
    return message.as_bytes()


# -- the needles ---------------------------------------------------------------------------------


def _b64_runs(data: bytes) -> set[bytes]:
    """What `data` looks like inside a longer base64 stream, at each of the 3 alignments."""
    runs = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data)
        start, end = -(-8 * shift // 6), 8 * (shift + len(data)) // 6
        runs.add(encoded[start:end])
    return {r for r in runs if len(r) >= 8}


def _jis(text: str) -> bytes:
    """The ISO-2022-JP bytes of `text` between its escape sequences (as inside a longer line)."""
    return text.encode("iso-2022-jp").removeprefix(b"\x1b$B").removesuffix(b"\x1b(B")


def needles() -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    for value in (NAME, NAME.replace(" ", ""), NAME.replace(" ", "\u3000"), EMAIL, PHONE,
                  PHONE.replace("-", "")):
        forms = {"utf-8": value.encode(), "cp932": value.encode("cp932"),
                 "json": json.dumps(value).strip('"').encode()}
        if not value.isascii():
            forms["iso-2022-jp"] = _jis(value)
        for form, data in list(forms.items()):
            for run in _b64_runs(data):
                forms[f"base64({form})"] = run
                for twice in _b64_runs(run):  # a base64 part inside a mail kept as base64
                    forms[f"base64(base64({form}))"] = twice
        for form, data in forms.items():
            found.setdefault(data, f"{value!r} as {form}")
            found.setdefault(data.lower(), f"{value!r} as {form}, lower case")
    return found


def traces(data_dir: Path) -> list[str]:
    """Every needle found in any file of the data directory, with where."""
    hits = []
    wanted = needles()
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path.relative_to(data_dir)}: {what}" for needle, what in wanted.items()
                 if needle in data]
    return hits


# -- the test ------------------------------------------------------------------------------------


def cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, *args, "-c", str(config)], env=env, capture_output=True,
                          text=True, timeout=120)


def kpis(store: Any) -> collections.Counter[tuple[str, str, str]]:
    """Events by type, source and month: what the report counts."""
    return collections.Counter((e["type"], str((e.get("data") or {}).get("source")), e["at"][:7])
                               for _seq, e in store.log("events"))


def mailbox_has(dovecot: Dovecot, account: ImapAccount, name: str) -> list[bytes]:
    return [raw for raw in folder(dovecot, account, name) if EMAIL.encode() in raw]


def disclose(config: Path, env: dict[str, str], target: Path) -> None:
    """`export-person` (法33) through the running daemon: their record, timeline, mails and
    résumé, owner-only; a folder that is not empty is refused; the export is in the audit log."""
    done = cli(config, env, "export-person", EMAIL, str(target), "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads((target / "person.json").read_text(encoding="utf-8"))
    assert record["candidate"]["name"] == NAME and record["candidate"]["emails"] == [EMAIL]
    types = {e["type"] for e in record["timeline"]}
    assert {"candidate_created", "applied", "rejected", "relay_registered"} <= types
    assert record["consents"]["career_relay"]["state"] == "granted"
    assert record["ledger"] and record["callbacks"] and record["links"]
    (sent,) = [m for m in record["outbox"] if m["purpose"] == "rejection"]
    assert b"/r/" in (target / sent["mail_file"]).read_bytes()
    (document,) = record["attachments"]
    assert (target / document["file"]).read_bytes() == RESUME
    files = [p for p in target.rglob("*")]
    assert {stat.S_IMODE(p.stat().st_mode) for p in files if p.is_file()} == {0o600}
    assert {stat.S_IMODE(p.stat().st_mode) for p in [target, *files] if p.is_dir()} == {0o700}
    again = cli(config, env, "export-person", EMAIL, str(target))
    assert again.returncode == 1 and "not an empty folder" in again.stderr


@pytest.mark.parametrize(("engine", "mailbox"), [("sqlite", "move"), ("tinydb", "delete")])
def test_erase_leaves_no_byte_of_the_person_and_the_aggregates_count_the_same(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, smtp_sink: SmtpSink,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, engine: str,
        mailbox: str) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    env = env_for(imap_account)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, imap_account, smtp_sink, extra=(
        f'[web]\nlisten = "127.0.0.1:{port}"\npublic_url = "{base}"\n\n'
        f'[privacy]\nerase_mailbox = "{mailbox}"\nerase_folder = "Erased"\n\n' + SEND_MODE))
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('[store]\npath = "data"',
                                   f'[store]\npath = "data"\nengine = "{engine}"'),
                      encoding="utf-8")
    user, address = imap_account.username, imap_account.address
    data_dir = tmp_path / "data"
    with DaemonThread(config) as running:
        store = running.daemon.store
        dovecot.append(user, "INBOX", application(address))
        dovecot.append(user, "INBOX", samples.job_board_notification().replace(
            samples.RECRUITING.encode(), address.encode()))  # someone else, who stays
        wait_until(lambda: store.count("candidates") == 2, what="two candidates")
        dovecot.append(user, outbox_name(imap_account), rejection(imap_account))
        wait_until(lambda: [m for m in smtp_sink.messages if EMAIL in m.rcpt_tos],
                   what="the rejection sent")
        person = wait_until(lambda: (c := store.find("candidates", "emails", EMAIL))
                            and c[0].get("relay_ref") and c[0], what="the referral code")
        assert person["documents"][0]["stored"] and traces(data_dir)  # the data is spread
        answer = post(base, event("evt-watanabe", person["relay_ref"]))
        assert answer.status_code == 200, answer.text
        wait_until(lambda: mailbox_has(dovecot, imap_account, "Sent"), what="the Sent copy")
        disclose(config, env, tmp_path / "disclosed")
        ledger_before = json.loads(cli(config, env, "ledger", "--json").stdout)
        entries_before = [e for _s, e in store.log("ledger")]
        kpis_before = kpis(store)

        done = cli(config, env, "erase", EMAIL, "--reason", f"{NAME}さんご本人からの依頼", "--json")
        assert done.returncode == 0, done.stderr
        removed = json.loads(done.stdout)["removed"]
        assert removed["candidate"] == 1 and removed["attachments"] == 1
        assert removed["events_redacted"] >= 4 and removed["outbox"] >= 1

        listed = json.loads(cli(config, env, "candidates", "--json").stdout)
        assert [c["emails"] for c in listed] == [["hanako.sato@example.org"]]
        verify = cli(config, env, "ledger", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert json.loads(cli(config, env, "ledger", "--json").stdout) == ledger_before
        assert [e for _s, e in store.log("ledger")] == entries_before
        assert kpis(store) == kpis_before
        audit = {e["action"]: e for _s, e in store.log("audit")}
        assert audit["erase"]["target"] == person["id"]
        assert "〇〇" in audit["erase"]["detail"]["reason"]
        assert audit["export-person"]["target"] == person["id"]
        assert traces(data_dir) == []  # while the daemon runs: WAL and SHM included
    assert traces(data_dir) == []  # and once it has stopped
    for name in ("INBOX", "Sent", outbox_name(imap_account)):
        assert mailbox_has(dovecot, imap_account, name) == [], name
    moved = mailbox_has(dovecot, imap_account, "Erased")
    assert len(moved) == (2 if mailbox == "move" else 0)  # the application and the Sent copy
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("mailflow"))
    assert not [what for needle, what in needles().items()
                if needle.decode("utf-8", "replace") in logged], "a log line names the person"


@pytest.mark.parametrize("engine", ["sqlite", "tinydb"])
def test_what_erase_keeps_and_what_it_gives_up_in_a_store_of_its_own(
        tmp_path: Path, engine: str) -> None:
    import threading
    from datetime import UTC, datetime

    from mailflow.clock import FrozenClock
    from mailflow.errors import MailflowError
    from mailflow.outgoing.outbox import Outbox
    from mailflow.pool.records import Applicant
    from mailflow.pool.talent import TalentPool
    from mailflow.privacy.erase import NoSuchCandidate, erase
    from mailflow.settings.config import Config
    from mailflow.store import open_store

    data_dir = tmp_path / "data"
    store = open_store(data_dir, engine)
    clock = FrozenClock(datetime(2026, 11, 20, tzinfo=UTC))
    pool = TalentPool(store, clock)
    config = Config.model_validate({"store": {"path": str(data_dir)},
                                    "mailbox": {"address": "jobs@example.co.jp"}})
    outbox = Outbox(store, clock, config, threading.RLock())
    try:
        person, _ = pool.apply(Applicant(NAME, EMAIL, ("09024681357",), "営業", "", "direct"),
                               "<a1@example.net>")
        pool.apply(Applicant(NAME, EMAIL, (), "営業", "", "direct"), "<a2@example.net>")
        pool.record_stage(person, "一次面接", "2026-11-20T00:00:00Z", "sent",
                          interviewer="佐藤", note=f"{NAME}さんは良い")
        namesake, _ = pool.apply(Applicant(NAME, "other@example.net", (), "", "", "direct"),
                                 "<b@example.net>")
        queued = outbox.queue(f"To: {EMAIL}\r\nSubject: x\r\n\r\nhi".encode(), to=[EMAIL],
                              purpose="followup:x")
        store.put("examples", "k1", {"id": "e1", "key": "k1", "label": "rejection",
                                     "subject": "選考結果", "sentences": [f"{NAME}様、残念です"]})
        events_before = [(e["type"], e["at"]) for _s, e in store.log("events")]

        done = erase(store, clock, data_dir, person["id"], "request", "cli:test")

        assert done.removed["candidate"] == 1 and done.scrubbed is True
        assert [(e["type"], e["at"]) for _s, e in store.log("events")] == events_before
        theirs = [e for e in store.find("events", "candidate_id", person["id"])]
        assert {e["type"] for e in theirs} == {"candidate_created", "applied", "merged", "stage"}
        assert all(e.get("erased") for e in theirs)
        stage = next(e for e in theirs if e["type"] == "stage")
        assert stage["data"] == {"stage": "一次面接", "source": "sent"}  # no interviewer, note
        record = store.get("outbox", queued["id"])
        assert record is not None and record["state"] == "failed" and "raw" not in record
        assert record["to"] == [] and record["message_id"] == queued["message_id"]
        with pytest.raises(MailflowError, match="body was removed"):
            outbox.resend(queued["id"])
        assert store.get("examples", "k1")["sentences"] == ["〇〇様、残念です"]
        assert store.get("candidates", namesake["id"]) is not None  # same name, another person
        with pytest.raises(NoSuchCandidate):
            erase(store, clock, data_dir, EMAIL, "again", "cli:test")
    finally:
        store.close()
