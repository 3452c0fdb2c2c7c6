"""Issue 18 part 4: retention applied — `mailflow purge --dry-run` lists exactly what is past its
period on a frozen clock and changes nothing; `purge` removes it (candidates and their
attachments, expired attachments of those kept, old quarantine, old sent bodies), keeps a file
another candidate still has; the daemon runs it once shortly after start and then at 03:00
Tokyo time. Both engines."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, wait_until, write_config
from servers import ImapAccount

from mailflow.clock import CLOCK_FILE_ENV, FrozenClock, iso
from mailflow.intake.documents import DocumentShelf
from mailflow.mail.parse import Attachment
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.privacy import desk
from mailflow.settings.config import load_config
from mailflow.store import open_store

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo
PRIVACY = '[privacy]\nnotified_purposes = ["selection"]\n'


def months_ago(n: int, days: int = 0) -> datetime:
    return NOW - timedelta(days=round(30.5 * n) + days)


def resume(text: str) -> Attachment:
    data = f"%PDF-1.4\n{text}\n".encode()
    return Attachment("履歴書.pdf", "application/pdf", len(data),
                      hashlib.sha256(data).hexdigest(), "2", data=data)


def build_pool(config_path: Path) -> dict[str, str]:
    """Candidates at known ages (ids by role), attachments on disk, quarantine and outbox."""
    config = load_config(config_path)
    store = open_store(config.data_dir, config.store.engine)
    clock = FrozenClock(months_ago(13))
    pool, shelf = TalentPool(store, clock), DocumentShelf(config.data_dir)
    ids: dict[str, str] = {}

    def person(role: str, when: datetime, status: str = "applied",
               files: tuple[Attachment, ...] = (), pooled: bool = False) -> None:
        clock.set(when)
        candidate, _ = pool.apply(Applicant(f"{role} 太郎", f"{role}@example.net", (), "営業",
                                            "", "direct"), f"<{role}@example.net>")
        pool.add_documents(candidate, [shelf.keep(a, None, iso(when)) for a in files])
        if status == "rejected":
            pool.record_rejection(candidate, "経験不足", "書類", None, None)
        if pooled:
            pool.consent_change(candidate, "talent_pool", True, "consent page", "req-1")
        ids[role] = candidate["id"]

    shared = resume("shared")
    try:
        person("gone", months_ago(13), "rejected", (resume("gone's own"), shared))
        person("pooled", months_ago(13), "rejected", pooled=True)  # consented: kept 3 years
        person("applied", months_ago(13))  # not rejected: kept 3 years
        person("old", months_ago(37))  # past 3 years
        person("recent", months_ago(7), "rejected", (resume("recent's"),))  # file past 6mo
        person("sharer", months_ago(1), files=(shared,))  # keeps the shared file
        for key, days in (("inbox:old", 31), ("inbox:new", 29)):
            store.put("quarantine", key, {"id": key[-3:], "key": key, "state": "quarantined",
                                          "role": "inbox", "attempts": 5, "reason": "x",
                                          "updated_at": iso(NOW - timedelta(days=days)),
                                          "raw": base64.b64encode(b"Subject: x\r\n\r\n").decode()})
        for record_id, state, days in (("o-old", "sent", 31), ("o-new", "sent", 2),
                                       ("o-queued", "queued", 40)):
            store.put("outbox", record_id, {
                "id": record_id, "message_id": f"<{record_id}@example.co.jp>",
                "to": ["someone@example.net"], "state": state, "candidate_id": None,
                "sent_at": iso(NOW - timedelta(days=days)) if state == "sent" else None,
                "updated_at": iso(NOW - timedelta(days=days)),
                "raw": base64.b64encode(b"Subject: hello\r\n\r\nbody").decode()})
    finally:
        store.close()
    ids["shared"], ids["gone_file"] = shared.sha256, resume("gone's own").sha256
    ids["recent_file"] = resume("recent's").sha256
    return ids


def files_of(data_dir: Path) -> dict[str, bytes]:
    """Every file's bytes but SQLite's shared-memory index (a reader may create it) and an
    empty WAL (likewise): what the store holds, byte for byte."""
    return {str(p.relative_to(data_dir)): p.read_bytes() for p in sorted(data_dir.rglob("*"))
            if p.is_file() and not p.name.endswith("-shm")
            and not (p.name.endswith("-wal") and p.stat().st_size == 0)}


def cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, *args, "-c", str(config)], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def site(tmp_path: Path, imap_account: ImapAccount, request: pytest.FixtureRequest,
         monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str], dict[str, str]]:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    config = write_config(tmp_path, imap_account, extra=PRIVACY)
    engine = getattr(request, "param", "sqlite")
    config.write_text(config.read_text(encoding="utf-8").replace(
        '[store]\npath = "data"', f'[store]\npath = "data"\nengine = "{engine}"'),
        encoding="utf-8")
    clock_file = tmp_path / "clock"
    clock_file.write_text(iso(NOW), encoding="utf-8")
    env = {**env_for(imap_account), CLOCK_FILE_ENV: str(clock_file)}
    return config, env, build_pool(config)


@pytest.mark.parametrize("site", ["sqlite", "tinydb"], indirect=True)
def test_dry_run_lists_exactly_what_is_past_retention_and_changes_nothing_then_purge_removes_it(
        site: tuple[Path, dict[str, str], dict[str, str]]) -> None:
    config, env, ids = site
    data_dir = config.parent / "data"
    before = files_of(data_dir)
    dry = cli(config, env, "purge", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    listed = {(i["what"], i["key"]) for i in report["items"]}
    assert listed == {("candidate", ids["gone"]), ("candidate", ids["old"]),
                      ("attachment", ids["recent_file"]), ("quarantine", "inbox:old"),
                      ("outbox", "o-old")}
    assert all(i["why"] for i in report["items"])
    assert files_of(data_dir) == before  # not a byte changed
    human = cli(config, env, "purge", "--dry-run")
    assert "would remove" in human.stdout and ids["gone"] in human.stdout

    done = cli(config, env, "purge", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["candidate"] == 2
    store = open_store(data_dir, load_config(config).store.engine, read_only=True)
    try:
        kept = {c["id"] for c in store.scan("candidates")}
        assert kept == {ids["pooled"], ids["applied"], ids["recent"], ids["sharer"]}
        recent = store.get("candidates", ids["recent"])
        assert recent is not None and recent["documents"][0]["stored"] is False
        assert store.get("quarantine", "inbox:old") is None
        assert store.get("quarantine", "inbox:new") is not None
        assert "raw" not in (store.get("outbox", "o-old") or {"raw": 1})
        assert "raw" in (store.get("outbox", "o-new") or {})
        assert "raw" in (store.get("outbox", "o-queued") or {})
        actions = [e["action"] for _s, e in store.log("audit")]
        assert actions.count("erase") == 2 and actions.count("purge") == 1
        erased = [e["detail"]["reason"] for _s, e in store.log("audit") if e["action"] == "erase"]
        assert all(r.startswith("retention: ") for r in erased)
    finally:
        store.close()
    on_disk = {p.name for p in (data_dir / "attachments").rglob("*") if p.is_file()}
    assert on_disk == {ids["shared"]}  # the sharer still has it; the others are gone
    again = json.loads(cli(config, env, "purge", "--dry-run", "--json").stdout)
    assert again["items"] == []


def test_the_daemon_purges_shortly_after_start_then_daily_at_three_in_the_morning(
        site: tuple[Path, dict[str, str], dict[str, str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config, _env, ids = site
    monkeypatch.setattr(desk, "START_DELAY_SECONDS", 0.2)
    monkeypatch.setattr(desk, "POLL_SECONDS", 0.1)
    monkeypatch.setenv(CLOCK_FILE_ENV, str(tmp_path / "clock"))
    clock_file = tmp_path / "clock"

    def purges(store: Any) -> int:
        return sum(1 for _s, e in store.log("audit") if e["action"] == "purge")

    with DaemonThread(config) as running:
        store = running.daemon.store
        wait_until(lambda: purges(store) == 1, what="the purge after start")
        assert store.get("candidates", ids["gone"]) is None
        assert store.get("settings", "privacy_purge")["last_run"] == iso(NOW)
        clock_file.write_text(iso(datetime(2026, 12, 1, 17, 59, tzinfo=UTC)))  # 02:59 JST
        with pytest.raises(AssertionError):
            wait_until(lambda: purges(store) > 1, timeout=1, what="no purge before 03:00")
        clock_file.write_text(iso(datetime(2026, 12, 1, 18, 0, tzinfo=UTC)))  # 03:00 JST
        wait_until(lambda: purges(store) == 2, what="the purge at 03:00")
        time_of = [e["at"] for _s, e in store.log("audit") if e["action"] == "purge"]
        assert time_of[-1].startswith("2026-12-01T18:00")
    # a restart the same night does not purge again
    with DaemonThread(config) as running, pytest.raises(AssertionError):
        wait_until(lambda: purges(running.daemon.store) > 2, timeout=1.5, what="nothing")


def test_next_due_is_the_first_quiet_hour_or_a_day_after_the_last_run() -> None:
    from zoneinfo import ZoneInfo

    tokyo = ZoneInfo("Asia/Tokyo")
    assert desk.next_due(None, tokyo) is None
    after_start = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # 14:00 JST
    assert desk.next_due(after_start, tokyo) == datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    at_three = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # 03:00 JST on the 2nd
    assert desk.next_due(at_three, tokyo) == at_three + timedelta(days=1)
