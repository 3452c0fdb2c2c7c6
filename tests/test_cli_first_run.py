"""Issue 17: the command line on a new installation (no store yet) and polished for people.

Read commands show an empty pool, not an error; `mailflow` alone prints help; `-c` stands before
the command as well as after it; `candidate show` is a card and `candidates` a table; an unknown
`--status` is a usage error; every command and option says what it is for.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import click
import pytest
from harness import MAILFLOW
from rich.cells import cell_len

from mailflow.cli import _register, cli
from mailflow.clock import SystemClock
from mailflow.demo import samples
from mailflow.followups.vocabulary import STATUSES
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import load_config
from mailflow.store import open_store

CONFIG = '[rules]\ntimezone = "Asia/Tokyo"\n'
CSV = "name,email,position\n山田 太郎,taro@example.net,営業\n"

# a new installation: (command, exit status, what stdout says)
FIRST_RUN = [
    (["rules", "test", "--at", "2026-01-15"], 0, "no follow-up would be due"),
    (["rules", "test", "--at", "2026-01-15", "--json"], 0, "[]"),
    (["rules", "check"], 0, "ok"),
    (["rules", "suggest"], 0, "nothing to suggest"),
    (["candidates"], 0, "the talent pool is empty"),
    (["candidates", "--search", "山田", "--status", "rejected"], 0, "no candidate matches"),
    (["ledger"], 0, "registrations    0"),
    (["ledger", "--json"], 0, '"registrations": 0'),
    (["ledger", "history"], 0, "the ledger is empty"),
    (["ledger", "verify"], 0, "ledger verified: empty"),
    (["ledger", "export", "--csv"], 0, "seq,kind,at"),
    (["quarantine", "list"], 0, "quarantine is empty"),
    (["quarantine", "list", "--all", "--json"], 0, "[]"),
    (["outbox"], 0, "nothing waiting in the outbox"),
    (["outbox", "list", "--all"], 0, "outbox is empty"),
    (["outbox", "--json"], 0, "[]"),
    (["import", "--dry-run", "pool.csv"], 0, "would import 1 row(s)"),
    (["explain", "application.eml"], 0, "inbox: application"),
    (["explain", "draft.eml", "--folder", "drafts"], 0, "drafts: rejection decision"),
]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "MAILFLOW_CONFIG"}


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A new installation: a config, nothing else (no data directory)."""
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def _seed(site: Path) -> dict[str, str]:
    store = open_store(load_config(site / "config.toml").data_dir)
    try:
        pool = TalentPool(store, SystemClock())
        taro, _ = pool.apply(Applicant("山田 太郎", "taro@example.net", ("03-1234-5678",),
                                       "Webエンジニア（バックエンド）", "", "direct"), "<m1@x>")
        pool.record_stage(taro, "一次面接", "2026-01-20T01:00:00.000000Z", "sent",
                          interviewer="佐藤")
        taro = pool.get(taro["id"]) or taro
        pool.record_rejection(taro, "スキル不足", "一次面接", None, "<m2@x>")
        pool.record_consent({"candidate": "taro@example.net", "purpose": "rescout",
                             "word": "withdraw", "how": "電話"})
        chris, _ = pool.apply(Applicant("Chris Montgomery", "chris@example.com", (),
                                        "Senior Software Engineer for the Backend Platform",
                                        "", "jobboard"), None)
    finally:
        store.close()
    return {"taro": taro["id"], "chris": chris["id"]}


def test_read_commands_on_a_new_installation(site: Path) -> None:
    (site / "pool.csv").write_text(CSV, encoding="utf-8")
    (site / "application.eml").write_bytes(samples.direct_application_jis())
    (site / "draft.eml").write_bytes(samples.rejection_draft(samples.RECRUITING))
    for args, status, says in FIRST_RUN:
        done = _run(site, *args)
        assert done.returncode == status, f"{args}: {done.stdout}{done.stderr}"
        assert says in done.stdout, f"{args}: {done.stdout}"
        assert "Traceback" not in done.stderr and "no store" not in done.stderr, args
    listed = _run(site, "candidates", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    assert not (site / "data").exists()  # reading made nothing


def test_candidate_show_on_a_new_installation_says_there_is_none(site: Path) -> None:
    done = _run(site, "candidate", "show", "x")
    assert done.returncode == 1
    assert done.stderr.strip() == "mailflow: error: no candidate x"
    done = _run(site, "rules", "test", "--at", "2026-01-15", "--candidate", "x@example.net")
    assert done.returncode == 1 and "no candidate" in done.stderr and "no store" not in done.stderr


def test_mailflow_alone_prints_help(site: Path) -> None:
    done = _run(site)
    assert done.returncode in (0, 2)
    assert "Usage: mailflow" in done.stdout + done.stderr and "candidates" in done.stdout
    assert "error:" not in done.stdout + done.stderr
    group = _run(site, "quarantine")  # a group alone: its help, no error line
    assert "Usage: mailflow quarantine" in group.stdout + group.stderr
    assert "error:" not in group.stdout + group.stderr


def test_config_before_the_command(site: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    _seed(site)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    config = str(site / "config.toml")
    before = _run(elsewhere, "-c", config, "candidates", "--json")
    after = _run(elsewhere, "candidates", "--json", "-c", config)
    assert before.returncode == 0, before.stderr
    assert before.stdout == after.stdout and len(json.loads(before.stdout)) == 2
    # both given: the one after the command's name wins
    assert _run(elsewhere, "-c", "missing.toml", "candidates", "-c", config).returncode == 0
    done = _run(elsewhere, "-c", config, "candidates", "-c", "missing.toml")
    assert done.returncode == 2 and "missing.toml" in done.stderr
    # a group's subcommands see it too
    assert _run(elsewhere, "-c", config, "ledger", "verify").returncode == 0
    assert _run(elsewhere, "ledger", "-c", config, "history").returncode == 0
    assert _run(elsewhere, "-c", config, "candidate", "show", "taro@example.net").returncode == 0


def test_candidate_show_is_a_readable_card(site: Path) -> None:
    ids = _seed(site)
    done = _run(site, "candidate", "show", "taro@example.net")
    assert done.returncode == 0, done.stderr
    card = done.stdout
    for python in ("None", "False", "True", "['", "{'", "[]", "{}"):
        assert python not in card, f"{python!r} in\n{card}"
    assert f"candidate {ids['taro']}" in card
    assert "JST" in card or "+09:00" in card
    assert "2026-01-20 10:00 JST" in card  # the stage, stored in UTC, in the configured zone
    for label in ("emails", "phones", "status", "rescout ok", "Career Relay", "timeline",
                  "consents", "rejection"):
        assert label in card, label
    assert "03-1234-5678" in card and "スキル不足" in card and "withdrawn" in card
    assert "rescout ok      not said" in card
    shown = json.loads(_run(site, "candidate", "show", "taro@example.net", "--json").stdout)
    assert shown["rescout_ok"] is None and shown["reapplied"] is False  # --json as it was
    assert [e["type"] for e in shown["timeline"]][:2] == ["candidate_created", "applied"]


def test_candidates_is_a_table_with_a_header(site: Path) -> None:
    _seed(site)
    done = _run(site, "candidates")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "RELAY", "SOURCE", "NAME", "POSITION", "EMAIL"]
    assert len(rows) == 2 and done.stderr.strip() == "2 candidate(s)"
    taro = next(row for row in rows if "taro@example.net" in row)
    chris = next(row for row in rows if "chris@example.com" in row)
    starts = {"NAME": ("山田 太郎", "Chris"), "POSITION": ("Webエンジニア", "Senior"),
              "EMAIL": ("taro@", "chris@")}
    for column, values in starts.items():  # aligned in terminal cells
        at = cell_len(header[:header.index(column)])
        for row, value in zip((taro, chris), values, strict=True):
            assert cell_len(row[:row.index(value)]) == at, f"{column}:\n{done.stdout}"
    assert "Senior Software…  " in chris  # cut after a word (not "Enginee…"), an ellipsis
    assert "Webエンジニア（バックエ…" in taro  # Japanese: cut after any character


def test_an_unknown_status_is_a_usage_error(site: Path) -> None:
    done = _run(site, "candidates", "--status", "bogus")
    assert done.returncode == 2
    assert done.stderr.startswith("mailflow: error: ") and len(done.stderr.splitlines()) == 1
    for status in STATUSES:
        assert status in done.stderr
    assert _run(site, "candidates", "--status", "rejected").returncode == 0


def _commands(group: click.Group, path: str) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = [(path, group)]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, f"{path} {name}")
        else:
            found.append((f"{path} {name}", command))
    return found


def test_every_command_and_option_has_help() -> None:
    _register()
    commands = _commands(cli, "mailflow")
    assert len(commands) > 20
    for path, command in commands:
        assert (command.help or command.short_help or "").strip(), f"{path}: no help"
        for param in command.params:
            if isinstance(param, click.Option):
                assert (param.help or "").strip(), f"{path} {'/'.join(param.opts)}: no help"
