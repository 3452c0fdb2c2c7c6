"""Issue 19 part 1: outcomes — `candidate hire` (a free slot redeemed `--via slot`, named in the
ledger, which still verifies; refused with no slot), `candidate left` feeding retention, a
`#mailflow stage=採用` line as a hire, and `credit_on` choosing the partner event that earns
credit."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for
from servers import ImapAccount
from test_callbacks import LEDGER_KEY, SECRET, add_candidates, event, post
from test_callbacks import cli as relay_cli
from test_callbacks import write_config as relay_config

from mailflow.clock import FrozenClock, SystemClock
from mailflow.daemon.local import open_service
from mailflow.kpi.report import compute
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool, new_candidate
from mailflow.relay.callbacks import CareerRelayCallbacks, PartnerEvent
from mailflow.relay.ledger import ReferralLedger
from mailflow.settings.config import Config, load_config
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store import open_store
from mailflow.store.base import Store

KEY = "ledger-key-for-outcome-tests"
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def site(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[rules]\ndir = "{SHIPPED_RULES}"\ntemplates_dir = "{SHIPPED_TEMPLATES}"\n'
                      + extra, encoding="utf-8")
    return config


def seed(config: Path, registrations: int) -> None:
    """Two applicants, and `registrations` credited in the ledger (through its API)."""
    store = open_store(load_config(config).data_dir)
    try:
        pool = TalentPool(store, SystemClock())
        with store.transaction():
            pool.apply(Applicant("山田 太郎", "taro@example.net", (), "営業", "", "doda"), None)
            pool.apply(Applicant("佐藤 花子", "hanako@example.net", (), "経理", "", "direct"),
                       None)
        ledger = ReferralLedger(store, SystemClock(), 10, lambda: KEY.encode())
        for n in range(registrations):
            ledger.credit_registration(f"r{n}", f"{n:024x}", f"reg-{n}", "2026-01-20T00:00:00Z")
    finally:
        store.close()


def cli(config: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clock = tmp_path / "clock"
    clock.write_text(NOW.isoformat(), encoding="utf-8")
    env = {**os.environ, "MAILFLOW_LEDGER_KEY": KEY, "MAILFLOW_CLOCK_FILE": str(clock)}
    return subprocess.run([*MAILFLOW, *args, "-c", str(config)], capture_output=True,
                          text=True, timeout=60, env=env)


def report(config: Path, tmp_path: Path) -> dict[str, object]:
    done = cli(config, tmp_path, "report", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_hire_via_slot_redeems_one_slot_and_the_ledger_names_it(tmp_path: Path) -> None:
    config = site(tmp_path)
    seed(config, 10)
    before = report(config, tmp_path)
    assert before["slots_available"] == 1 and before["hires"] == 0
    done = cli(config, tmp_path, "candidate", "hire", "Taro@example.net", "--on", "2026-03-01",
               "--via", "slot")
    assert done.returncode == 0, done.stderr
    after = report(config, tmp_path)
    assert after["slots_available"] == before["slots_available"] - 1  # type: ignore[operator]
    assert (after["slots_redeemed"], after["hires"], after["cost_avoided_yen"]) == \
        (1, 1, 1_000_000)
    assert after["referral_hire_rate"] == 1.0
    verified = cli(config, tmp_path, "ledger", "verify")
    assert verified.returncode == 0, verified.stderr
    entries = json.loads(cli(config, tmp_path, "ledger", "history", "--json").stdout)
    shown = json.loads(cli(config, tmp_path, "candidate", "show", "taro@example.net",
                           "--json").stdout)
    paid = entries[-1]
    assert paid["kind"] == "slot_redeemed" and paid["candidate_id"] == shown["id"]
    assert paid["occurred_at"] == "2026-03-01" and "2026-03-01" in paid["note"]
    assert shown["id"] not in paid["note"]  # `ledger export --csv` names no candidate
    assert shown["status"] == "hired"
    hired = [e for e in shown["timeline"] if e["type"] == "hired"]
    assert hired[0]["slot_seq"] == paid["seq"] and hired[0]["via"] == "slot"
    assert shown["id"] in cli(config, tmp_path, "ledger", "history").stdout
    assert shown["hires"][0]["slot_seq"] == paid["seq"]
    card = cli(config, tmp_path, "candidate", "show", "taro@example.net").stdout
    assert f"via slot  (free slot, ledger entry {paid['seq']})" in card
    store = open_store(load_config(config).data_dir, read_only=True)
    try:
        actions = [(e["action"], e["target"]) for _seq, e in store.log("audit")]
    finally:
        store.close()
    assert ("redeem", shown["id"]) in actions and ("hire", shown["id"]) in actions

    # no slot left: refused, nothing recorded
    refused = cli(config, tmp_path, "candidate", "hire", "hanako@example.net", "--on",
                  "2026-03-02", "--via", "slot")
    assert refused.returncode == 1 and "no free slot" in refused.stderr
    other = json.loads(cli(config, tmp_path, "candidate", "show", "hanako@example.net",
                           "--json").stdout)
    assert other["status"] != "hired" and "hired" not in [e["type"] for e in other["timeline"]]
    assert report(config, tmp_path)["hires"] == 1
    assert cli(config, tmp_path, "ledger", "verify").returncode == 0


def test_hire_without_any_slot_is_refused(tmp_path: Path) -> None:
    config = site(tmp_path)
    seed(config, 9)
    done = cli(config, tmp_path, "candidate", "hire", "taro@example.net", "--on", "2026-03-01",
               "--via", "slot")
    assert done.returncode == 1, done.stdout
    assert report(config, tmp_path)["hires"] == 0
    assert cli(config, tmp_path, "candidate", "hire", "nobody@example.net", "--on",
               "2026-03-01").returncode == 1
    assert cli(config, tmp_path, "candidate", "hire", "taro@example.net", "--on", "2026-03-01",
               "--via", "bribe").returncode == 2


def test_left_feeds_retention(tmp_path: Path) -> None:
    config = site(tmp_path)
    seed(config, 0)
    for who, on in (("taro@example.net", "2026-01-05"), ("hanako@example.net", "2026-02-01")):
        done = cli(config, tmp_path, "candidate", "hire", who, "--on", on, "--via", "direct")
        assert done.returncode == 0, done.stderr
    assert report(config, tmp_path)["retention_3m"] == 1.0
    assert cli(config, tmp_path, "candidate", "left", "hanako@example.net", "--on",
               "2026-01-01").returncode == 1  # before the hire
    done = cli(config, tmp_path, "candidate", "left", "hanako@example.net", "--on", "2026-03-31")
    assert done.returncode == 0, done.stderr
    figures = report(config, tmp_path)
    assert (figures["retention_3m"], figures["retention_6m"], figures["retention_12m"]) == \
        (0.5, 0.5, None)  # as of 2026-12-01, no hire is twelve months old
    by_source = figures["by_source"]
    assert isinstance(by_source, dict)
    assert by_source["direct"]["retention_6m"] == 0.0 and by_source["doda"]["retention_6m"] == 1.0
    assert cli(config, tmp_path, "candidate", "left", "taro@example.net", "--on",
               "2026-12-01").returncode == 0
    assert cli(config, tmp_path, "candidate", "left", "taro@example.net", "--on",
               "2026-12-01").returncode == 1  # no open hire to leave


def test_the_control_handlers_record_a_hire(tmp_path: Path) -> None:
    config_path = site(tmp_path)
    seed(config_path, 10)
    os.environ["MAILFLOW_LEDGER_KEY"] = KEY
    umask = os.umask(0o022)  # open_service makes it 077 for this process: put it back after
    os.umask(umask)
    try:
        service = open_service(load_config(config_path))
        try:
            handlers = service.control_handlers()  # type: ignore[attr-defined]
            done = handlers["candidate.hire"]({"candidate": "taro@example.net",
                                               "on": "2026-03-01", "via": "slot",
                                               "actor": "cli:test"})
            assert done["slots_available"] == 0 and done["slot_seq"]
            left = handlers["candidate.left"]({"candidate": "taro@example.net",
                                               "on": "2026-04-01", "actor": "cli:test"})
            assert left["left_on"] == "2026-04-01"
            assert service.ledger.verify() is None
        finally:
            service.store.close()
    finally:
        del os.environ["MAILFLOW_LEDGER_KEY"]
        os.umask(umask)


def test_a_stage_line_naming_a_hire_is_a_hire(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data")
    try:
        pool = TalentPool(store, FrozenClock(NOW))
        candidate, _ = pool.apply(Applicant("山田 太郎", "taro@example.net", (), "営業", "",
                                            "doda"), None)
        pool.record_stage(candidate, "一次面接", "2026-02-01T01:00:00Z", "sent")
        pool.record_stage(candidate, "採用", "2026-02-28T15:30:00Z", "sent")  # Mar 1 in Tokyo
        pool.record_stage(candidate, "採用", "2026-02-28T15:30:00Z", "sent")  # the same line
        hired = [e for e in pool.timeline(candidate["id"]) if e["type"] == "hired"]
        assert len(hired) == 1 and hired[0]["data"]["via"] == "direct"
        assert hired[0]["data"]["position"] == "営業"
        assert pool.lookup("taro@example.net")["status"] == "hired"  # type: ignore[index]
        r = compute(store, Config(), None, None, now=NOW)
        months = {row["month"]: row for row in r["by_month"]}
        assert r["hires"] == 1 and months["2026-03"]["hires"] == 1  # a Tokyo month
        assert months.get("2026-02", {"hires": 0})["hires"] == 0
    finally:
        store.close()


def partner(store: Store, config: Config) -> CareerRelayCallbacks:
    clock = FrozenClock(NOW)
    ledger = ReferralLedger(store, clock, 2, lambda: KEY.encode())
    with store.transaction():
        for n in range(4):
            candidate = new_candidate(f"c_{n}", "2026-01-01T00:00:00Z")
            candidate.update(relay_ref=f"{n:024x}", relay_status="invited", status="rejected")
            store.put("candidates", candidate["id"], candidate)
    return CareerRelayCallbacks(store, clock, config, ledger)


def deliver(callbacks: CareerRelayCallbacks, n: int, kind: str) -> None:
    answer = callbacks.record(PartnerEvent(f"{kind}-{n}", kind, f"{n:024x}",
                                           "2026-02-01T00:00:00Z", f"sha-{kind}-{n}"))
    assert answer.status == 200, answer.body


def test_credit_on_hired_earns_credit_only_from_hired_events(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data")
    try:
        callbacks = partner(store, Config.model_validate({"career_relay": {"credit_on": "hired"}}))
        for n in range(4):
            deliver(callbacks, n, "registered")
            deliver(callbacks, n, "introduced")
        assert callbacks.ledger.balance().registrations == 0
        deliver(callbacks, 0, "hired")
        deliver(callbacks, 1, "hired")
        balance = callbacks.ledger.balance()
        assert (balance.registrations, balance.slots_earned, balance.verified) == (2, 1, True)
        credited = [e for _s, e in store.log("ledger") if e["kind"] == "registration"]
        assert [e["event_id"] for e in credited] == ["hired-0", "hired-1"]
    finally:
        store.close()


def test_credit_on_defaults_to_registered(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data")
    try:
        callbacks = partner(store, Config())
        deliver(callbacks, 0, "hired")
        deliver(callbacks, 1, "introduced")
        assert callbacks.ledger.balance().registrations == 0
        deliver(callbacks, 0, "registered")
        assert callbacks.ledger.balance().registrations == 1
    finally:
        store.close()


def test_an_erased_hire_still_counts(tmp_path: Path) -> None:
    config = site(tmp_path)
    seed(config, 0)
    assert cli(config, tmp_path, "candidate", "hire", "taro@example.net", "--on", "2026-01-05",
               "--via", "referral").returncode == 0
    assert cli(config, tmp_path, "candidate", "left", "taro@example.net", "--on",
               "2026-02-01").returncode == 0
    before = report(config, tmp_path)
    done = cli(config, tmp_path, "erase", "taro@example.net", "--reason", "本人の請求")
    assert done.returncode == 0, done.stderr
    after = report(config, tmp_path)
    for key in ("hires", "hires_by_via", "referral_hire_rate", "retention_3m", "by_source"):
        assert after[key] == before[key], key


def test_through_the_running_daemon_ten_callbacks_one_slot_one_hire(
        tmp_path: Path, imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten signed registrations earn a slot; `candidate hire --via slot` goes through the
    daemon's control channel; the report shows one slot fewer and the ledger verifies."""
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    monkeypatch.setenv("MAILFLOW_RELAY_SECRET", SECRET)
    monkeypatch.setenv("MAILFLOW_LEDGER_KEY", LEDGER_KEY)
    config, base = relay_config(tmp_path, imap_account)
    refs = add_candidates(config, 11)
    env = env_for(imap_account)
    with DaemonThread(config) as running:
        for n, r in enumerate(refs[:10]):
            assert post(base, event(f"evt-{n}", r)).status_code == 200
        before = json.loads(relay_cli(config, env, "report", "--json").stdout)
        assert (before["registrations"], before["slots_available"]) == (10, 1)
        done = relay_cli(config, env, "candidate", "hire", "c_0010", "--on", "2026-03-01",
                         "--via", "slot")
        assert done.returncode == 0, done.stderr
        after = json.loads(relay_cli(config, env, "report", "--json").stdout)
        assert after["slots_available"] == before["slots_available"] - 1
        assert after["hires"] == 1 and after["cost_avoided_yen"] == 1_000_000
        refused = relay_cli(config, env, "candidate", "hire", "c_0009", "--on", "2026-03-01",
                            "--via", "slot")
        assert refused.returncode == 1 and "no free slot" in refused.stderr
        hired = running.daemon.store.get("candidates", "c_0010")
        assert hired is not None and hired["status"] == "hired"
        verified = relay_cli(config, env, "ledger", "verify")
        assert verified.returncode == 0, verified.stderr
