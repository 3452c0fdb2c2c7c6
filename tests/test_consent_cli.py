"""Issue 11: an admin records a candidate's own word on a purpose (consent per purpose)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from harness import MAILFLOW

from mailflow.clock import SystemClock
from mailflow.pool.consent import state
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import load_config
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store import open_store


def test_consent_withdrawn_and_granted_with_when_and_how(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[privacy]\nnotified_purposes = ["selection", "rescout"]\n\n'
                      f'[rules]\ndir = "{SHIPPED_RULES}"\n'
                      f'templates_dir = "{SHIPPED_TEMPLATES}"\n')
    store = open_store(load_config(config).data_dir)
    try:
        TalentPool(store, SystemClock()).apply(
            Applicant("山田 太郎", "taro@example.net", (), "営業", "", "direct"), None)
    finally:
        store.close()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*MAILFLOW, *args, "-c", str(config)], capture_output=True,
                              text=True, timeout=60)

    done = run("consent", "Taro@example.net", "rescout", "withdraw", "--how", "電話 2026-11-20")
    assert done.returncode == 0, done.stderr
    done = run("consent", "taro@example.net", "career_relay", "grant", "--how", "メール")
    assert done.returncode == 0, done.stderr
    shown = json.loads(run("candidate", "show", "taro@example.net", "--json").stdout)
    assert shown["consents"]["rescout"]["state"] == "withdrawn"
    assert shown["consents"]["rescout"]["how"] == "電話 2026-11-20"
    assert [e["type"] for e in shown["timeline"]].count("consent") == 2
    candidate = {"consents": shown["consents"]}
    assert not state(candidate, "rescout", ["rescout"]).holds  # withdrawal beats the notice
    assert state(candidate, "career_relay", []).holds  # a grant opens a purpose
    assert run("consent", "nobody@example.net", "rescout", "grant", "--how", "x").returncode == 1
