"""Issue 19 part 2: the KPIs as pure functions over a store built with known events — counts,
conversion, re-application rate, 紹介採用率, cost, slots, retention, per source and by month in
Asia/Tokyo (an event at 2026-01-31T15:30Z is February there) — and `mailflow report` equal to
`compute`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import MAILFLOW

from mailflow.clock import FrozenClock
from mailflow.kpi.report import compute
from mailflow.kpi.retention import add_months, retention
from mailflow.pool.talent import new_candidate
from mailflow.relay.ledger import ReferralLedger
from mailflow.settings.config import Config, load_config
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store import open_store
from mailflow.store.base import Store

NOW = datetime(2026, 9, 1, 3, 0, tzinfo=UTC)
KEY = "ledger-key-for-kpi-tests"
SOURCES = {"c1": "doda", "c2": "doda", "c3": "direct", "c4": "direct"}
# (candidate, event type, at (UTC), data)
EVENTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("c1", "applied", "2026-01-10T01:00:00Z", {"source": "doda", "position": "営業"}),
    ("c2", "applied", "2026-01-20T01:00:00Z", {"source": "doda", "position": "営業"}),
    ("c4", "applied", "2026-01-31T14:00:00Z", {"source": "direct"}),  # Jan 31 23:00 in Tokyo
    ("c3", "applied", "2026-01-31T15:30:00Z", {"source": "direct"}),  # Feb 1 00:30 in Tokyo
    ("c1", "rejected", "2026-01-15T02:00:00Z", {}),
    ("c1", "invited", "2026-01-15T02:00:00Z", {}),
    ("c2", "rejected", "2026-01-25T02:00:00Z", {}),
    ("c2", "invited", "2026-01-25T02:00:00Z", {}),
    ("c1", "relay_registered", "2026-01-17T02:00:00Z", {}),
    ("c1", "relay_introduced", "2026-01-27T02:00:00Z", {}),
    ("c1", "reapplied", "2026-02-10T02:00:00Z", {"source": "doda"}),
    ("c3", "hired", "2026-02-02T02:00:00Z", {"on": "2026-02-01", "via": "direct"}),
    ("c4", "hired", "2026-02-16T02:00:00Z", {"on": "2026-02-15", "via": "slot"}),
    ("c4", "left", "2026-05-01T02:00:00Z", {"on": "2026-04-30"}),
]
CLICKS = [("c1", "human", "2026-01-16T02:00:00Z"), ("c1", "scanner", "2026-01-15T02:00:05Z")]


def build(store: Store) -> None:
    """The known events, ten registrations in the ledger (one slot) and one slot redeemed."""
    with store.transaction():
        for cid, source in SOURCES.items():
            candidate = new_candidate(cid, "2026-01-01T00:00:00Z")
            candidate["source"] = source
            store.put("candidates", cid, candidate)
        for cid, kind, at, data in EVENTS:
            store.append("events", {"candidate_id": cid, "type": kind, "at": at, "data": data})
        for n, (cid, kind, at) in enumerate(CLICKS):
            store.put("clicks", f"k{n}", {"id": f"k{n}", "token": f"t{n}", "candidate_id": cid,
                                          "class": kind, "at": at})
    ledger = ReferralLedger(store, FrozenClock(datetime(2026, 1, 20, tzinfo=UTC)), 10,
                            lambda: KEY.encode())
    for n in range(12):
        ledger.credit_registration(f"r{n}", f"{n:024x}", f"reg-{n}", "2026-01-20T00:00:00Z")
    ledger.clock = FrozenClock(datetime(2026, 2, 16, tzinfo=UTC))
    ledger.redeem("hire of c4", candidate_id="c4", hired_on="2026-02-15")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "data")
    build(opened)
    yield opened
    opened.close()


def test_all_time_figures(store: Store) -> None:
    r = compute(store, Config(), None, None, now=NOW)
    assert (r["applications"], r["reapplications"], r["rejections"], r["invitations"]) == \
        (5, 1, 2, 2)
    assert (r["human_clicks"], r["scanner_clicks"], r["registrations"], r["introductions"]) == \
        (1, 1, 1, 1)
    assert r["reapplication_rate"] == 0.5  # c1 came back, of c1 and c2 rejected
    assert r["conversion"]["invited_per_rejection"] == 1.0
    assert r["conversion"]["human_click_per_invitation"] == 0.5
    assert r["conversion"]["introduction_per_registration"] == 1.0
    assert r["hires"] == 2 and r["hires_by_via"] == {"direct": 1, "slot": 1}
    assert r["referral_hire_rate"] == 0.5
    assert (r["slots_earned"], r["slots_redeemed"], r["slots_available"],
            r["progress_to_next"]) == (1, 1, 0, 2)
    assert r["cost_avoided_yen"] == 1_000_000
    assert r["cost_per_hire_yen"] == 400_000  # the slot hire cost nothing, the other 800,000
    assert r["cost_per_hire_change_yen"] == -400_000
    # c3 stayed; c4 left on 2026-04-30, before three months (2026-05-15) were up
    assert (r["retention_3m"], r["retention_6m"], r["retention_12m"]) == (0.5, 0.5, None)
    assert r["by_source"]["direct"] == {
        "applications": 2, "rejections": 0, "reapplications": 0, "registrations": 0,
        "hires": 2, "retention_3m": 0.5, "retention_6m": 0.5, "retention_12m": None}
    assert r["by_source"]["doda"]["applications"] == 3
    assert r["by_source"]["doda"]["reapplications"] == 1
    assert r["by_source"]["doda"]["retention_6m"] is None
    json.dumps(r)  # JSON-able


def test_months_are_tokyo_months(store: Store) -> None:
    r = compute(store, Config(), date(2026, 1, 1), date(2026, 2, 28), now=NOW)
    months = {row["month"]: row for row in r["by_month"]}
    assert list(months) == ["2026-01", "2026-02"]
    assert (months["2026-01"]["applications"], months["2026-01"]["rejections"],
            months["2026-01"]["registrations"], months["2026-01"]["hires"]) == (3, 2, 1, 0)
    assert (months["2026-02"]["applications"], months["2026-02"]["hires"]) == (2, 2)
    # 2026-01-31T15:30Z is February 1 in Tokyo: in February's first day, not January's last
    assert compute(store, Config(), date(2026, 2, 1), date(2026, 2, 1), now=NOW)[
        "applications"] == 1
    assert compute(store, Config(), date(2026, 1, 31), date(2026, 1, 31), now=NOW)[
        "applications"] == 1
    utc = Config.model_validate({"rules": {"timezone": "UTC"}})
    assert compute(store, utc, date(2026, 1, 31), date(2026, 1, 31), now=NOW)[
        "applications"] == 2


def test_a_period_counts_what_falls_in_it(store: Store) -> None:
    r = compute(store, Config(), date(2026, 2, 1), date(2026, 2, 28), now=NOW)
    assert (r["applications"], r["rejections"], r["hires"], r["reapplications"]) == (2, 0, 2, 1)
    assert r["reapplication_rate"] is None  # nobody rejected in February
    assert (r["slots_earned"], r["slots_redeemed"], r["slots_available"]) == (0, 1, 0)
    january = compute(store, Config(), None, date(2026, 1, 31), now=NOW)
    assert (january["slots_earned"], january["slots_redeemed"],
            january["slots_available"]) == (1, 0, 1)  # the balance as of the period's end
    assert january["cost_avoided_yen"] == 0


def test_retention_counts_only_hires_old_enough() -> None:
    today = date(2026, 9, 1)
    hires = [(date(2026, 1, 1), None), (date(2026, 2, 1), date(2026, 3, 1)),
             (date(2026, 7, 1), None)]
    assert retention(hires, 3, today) == 0.5  # the July hire is not three months old
    assert retention(hires, 12, today) is None
    assert retention([(date(2026, 1, 1), date(2026, 4, 1))], 3, today) == 1.0  # left on the day
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)


def test_an_empty_store_gives_an_empty_report(tmp_path: Path) -> None:
    opened = open_store(tmp_path / "empty")
    try:
        r = compute(opened, Config(), None, None, now=NOW)
    finally:
        opened.close()
    assert r["applications"] == 0 and r["by_source"] == {} and r["by_month"] == []
    assert r["reapplication_rate"] is None and r["slots_available"] == 0


# -- through the real command line ---------------------------------------------------------------


def site(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[rules]\ndir = "{SHIPPED_RULES}"\ntemplates_dir = "{SHIPPED_TEMPLATES}"\n',
                      encoding="utf-8")
    return config


def run(config: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clock = tmp_path / "clock"
    clock.write_text(NOW.isoformat(), encoding="utf-8")
    env = {**os.environ, "MAILFLOW_LEDGER_KEY": KEY, "MAILFLOW_CLOCK_FILE": str(clock)}
    return subprocess.run([*MAILFLOW, *args, "-c", str(config)], capture_output=True,
                          text=True, timeout=60, env=env)


def test_report_json_is_compute(tmp_path: Path) -> None:
    config = site(tmp_path)
    loaded = load_config(config)
    opened = open_store(loaded.data_dir)
    try:
        build(opened)
        expected = compute(opened, loaded, None, None, now=NOW)
        ranged = compute(opened, loaded, date(2026, 1, 1), date(2026, 3, 31), now=NOW)
    finally:
        opened.close()
    done = run(config, tmp_path, "report", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected
    for key in ("applications", "rejections", "invitations", "human_clicks", "scanner_clicks",
                "registrations", "slots_earned", "slots_redeemed", "slots_available",
                "cost_avoided_yen", "reapplication_rate", "hires", "by_source"):
        assert key in expected
    done = run(config, tmp_path, "report", "--from", "2026-01-01", "--to", "2026-03-31",
               "--json")
    assert json.loads(done.stdout) == ranged
    done = run(config, tmp_path, "report", "--from", "2026-01-01", "--to", "2026-03-31", "--csv")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["month"] for r in rows] == ["2026-01", "2026-02", "2026-03"]
    assert [int(r["applications"]) for r in rows] == [3, 2, 0]
    text = run(config, tmp_path, "report")
    assert text.returncode == 0 and "re-application rate" in text.stdout and "50.0%" in text.stdout
    assert run(config, tmp_path, "report", "--json", "--csv").returncode == 2
    assert run(config, tmp_path, "report", "--from", "2026-02-01", "--to", "2026-01-01"
               ).returncode == 2


def test_report_works_before_any_store(tmp_path: Path) -> None:
    done = run(site(tmp_path), tmp_path, "report", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["applications"] == 0
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())
