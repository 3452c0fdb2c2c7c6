"""`mailflow store migrate --to postgresql`: a SQLite store with 10,000 candidates and a ledger of
over 1,000 entries arrives whole in PostgreSQL — the same counts, the ledger verifies there —
also when the copy is killed half way and run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness import MAILFLOW
from postgres_server import Postgres

from mailflow.clock import FrozenClock
from mailflow.relay.ledger import ReferralLedger
from mailflow.settings.config import load_config
from mailflow.store import open_store
from mailflow.store.postgresql import PostgresStore

DSN_ENV = "MAILFLOW_STORE_DSN"
CANDIDATES, REGISTRATIONS = 10_000, 1_000


def _site(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text('[mailbox]\naddress = "jobs@example.co.jp"\n[store]\npath = "data"\n'
                      f'dsn_env = "{DSN_ENV}"\n[company]\nid = "acme"\n', encoding="utf-8")
    from datetime import UTC, datetime

    store = open_store(tmp_path / "data")
    try:
        with store.transaction():
            for n in range(CANDIDATES):
                store.put("candidates", f"c{n:05d}", {
                    "id": f"c{n:05d}", "name": f"候補者 {n}", "emails": [f"c{n}@example.jp"],
                    "phones": [], "relay_ref": f"r{n:05d}", "message_ids": [f"<{n}@x>"]})
                store.append("events", {"candidate_id": f"c{n:05d}", "type": "applied",
                                        "at": "2025-04-01T00:00:00Z"})
            store.put("settings", "followups-rate", {"minutes": {"2025-04-01T00:00": 3}})
        ledger = ReferralLedger.from_config(store, FrozenClock(datetime(2025, 5, 1, tzinfo=UTC)),
                                            load_config(config))
        for n in range(REGISTRATIONS):
            ledger.credit_registration(f"c{n:05d}", f"r{n:05d}", f"reg-{n}",
                                       "2025-04-01T00:00:00Z")
        assert ledger.verify() is None
    finally:
        store.close()
    return config


def _migrate(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, "store", "migrate", "--to", "postgresql", "--json", "-c",
                           str(config)], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_migrate_killed_half_way_then_again_gives_the_same_store(
        tmp_path: Path, postgres: Postgres) -> None:
    config = _site(tmp_path)
    env = {**os.environ, DSN_ENV: postgres.schema()}
    first = subprocess.Popen([sys.executable, "-m", "mailflow", "store", "migrate", "--to",
                              "postgresql", "-c", str(config)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert first.stderr is not None
    for line in first.stderr:  # half way through the candidates: kill -9
        if "candidates 5,000" in line:
            first.send_signal(signal.SIGKILL)
            break
    first.wait(60)
    assert first.returncode == -signal.SIGKILL
    done = _migrate(config, env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["same_counts"] and report["ledger_verified"]
    counts = report["counts"]
    assert counts["candidates"] == {"source": CANDIDATES, "target": CANDIDATES}
    assert counts["events"]["target"] == CANDIDATES
    assert counts["ledger"]["target"] == REGISTRATIONS + REGISTRATIONS // 10  # and the slots
    again = _migrate(config, env)  # idempotent: nothing doubled
    assert again.returncode == 0 and json.loads(again.stdout)["counts"] == counts

    moved = config.read_text(encoding="utf-8").replace(
        '[store]\npath = "data"\n', '[store]\npath = "data"\nengine = "postgresql"\n')
    config.write_text(moved, encoding="utf-8")
    verified = subprocess.run([*MAILFLOW, "ledger", "verify", "-c", str(config)],
                              capture_output=True, text=True, env=env)
    assert verified.returncode == 0 and "ledger verified" in verified.stdout
    shown = subprocess.run([*MAILFLOW, "candidate", "show", "c9999@example.jp", "--json", "-c",
                            str(config)], capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["name"] == "候補者 9999"
    with PostgresStore(env[DSN_ENV], read_only=True, company="beta") as other:
        assert other.count("candidates") == 0  # all of it went into acme's rows


def test_migrate_refuses_without_the_connection_string(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[mailbox]\naddress = "jobs@example.co.jp"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != DSN_ENV}
    done = _migrate(config, env)
    assert done.returncode == 2 and DSN_ENV in done.stderr
