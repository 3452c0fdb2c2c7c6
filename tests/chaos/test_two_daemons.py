"""Two daemons for different mailboxes of one company on one PostgreSQL schema (issue 23, Must
hold), each killed with SIGKILL at random moments and started again, while applications reach
both INBOXes, send-mode rejections both outbox folders (one shared outbox, drained by both),
and signed callbacks both web edges; then one calm round, and the oracle for each mailbox:
every application recorded once, every outbox mail at the SMTP server at most once (`unknown`
— killed mid-DATA — only as an alerted `unknown`, never resent), every acknowledged callback
credited once, and the company's ledger verifies.

Short form (in `pytest`): a few kills. Full form (`--chaos=full`, `make chaos`): at least 100.
"""

from __future__ import annotations

import collections
import contextlib
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import wait_until
from postgres_server import Postgres
from servers import Dovecot, ImapAccount, SmtpSink

from mailflow.settings.config import load_config

from .load import Workload, seed_pool
from .oracle import Oracle, Verdict, message_id
from .proxy import Faults
from .site import ChaosSite

DSN_ENV = "MAILFLOW_STORE_DSN"
FORMS: dict[str, dict[str, Any]] = {
    # kills at least, inputs per mailbox, the feed's pace (s), the calm round's limit (s)
    "short": dict(kills=8, applications=15, drafts=3, outgoing=10, callbacks=15, pace=0.1,
                  settle=90),
    "full": dict(kills=100, applications=200, drafts=20, outgoing=100, callbacks=150,
                 pace=0.3, settle=600),
}
CALM = Faults(refuse=0, delay=0, stall=0, cut=0)  # kill -9 is this test's fault
FIRST = (0, 1000)  # the two mailboxes number their inputs apart


def _on_postgres(site: ChaosSite, dsn: str) -> None:
    assert site.config is not None
    text = site.config.read_text(encoding="utf-8")
    assert '[store]\npath = "data"\n' in text
    site.config.write_text(text.replace(
        '[store]\npath = "data"\n',
        f'[store]\npath = "data"\nengine = "postgresql"\ndsn_env = "{DSN_ENV}"\n'),
        encoding="utf-8")
    site.env_extra[DSN_ENV] = dsn


WATCHING = "inbox: watching INBOX"


def _start_watching(site: ChaosSite) -> None:
    """Started, and past its first look at INBOX (and past installing its SIGTERM handler)."""
    before = site.log_text().count(WATCHING)
    site.start_daemon()
    wait_until(lambda: site.log_text().count(WATCHING) > before, timeout=60,
               what=f"{site.root.name} to watch INBOX")


@pytest.mark.timeout(3600)
def test_two_daemons_on_one_database_across_kill9_lose_nothing_and_double_nothing(
        tmp_path: Path, postgres: Postgres, own_dovecot: Dovecot, own_account: ImapAccount,
        smtp_sink: SmtpSink, chaos_form: str, chaos_seed: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    form = FORMS[chaos_form]
    dice = random.Random(chaos_seed)
    dsn = postgres.schema()
    monkeypatch.setenv(DSN_ENV, dsn)  # the oracle's and the seeding's reads
    accounts = [own_account, own_dovecot.add_user("chaos-b", own_account.password)]
    totals = {k: form[k] for k in ("applications", "drafts", "outgoing", "callbacks")}
    with contextlib.ExitStack() as stack:
        sites = []
        for i, account in enumerate(accounts):
            (tmp_path / "ab"[i]).mkdir()
            site = stack.enter_context(ChaosSite(tmp_path / "ab"[i], own_dovecot, account,
                                                 smtp_sink, chaos_seed + 10 * i, CALM))
            _on_postgres(site, dsn)
            sites.append(site)
        loads = []
        for site, first in zip(sites, FIRST, strict=True):
            assert site.config is not None
            seed_pool(site.config, form["drafts"], form["outgoing"], form["callbacks"], first)
            loads.append(Workload(own_dovecot, site.account, site.base_url, site.clock,
                                  load_config(site.config).data_dir, chaos_seed + first,
                                  totals, pace=form["pace"], first=first))
        for site in sites:
            _start_watching(site)
        time.sleep(3)  # the other folders' first checkpoints (INBOX's is the first)
        for load in loads:
            load.start()

        kills = 0
        started = time.monotonic()
        while kills < form["kills"] or not all(load.mail_done for load in loads):
            time.sleep(dice.uniform(0.5, 4.0))
            site = dice.choice(sites)
            site.kill_daemon()
            kills += 1
            time.sleep(dice.uniform(0.0, 1.5))
            site.start_daemon()
        chaos_seconds = time.monotonic() - started

        # the calm round: both running, the clock past every retry's backoff
        site.kill_daemon()  # the last started: started again, to be seen watching
        _start_watching(site)
        for site in sites:
            site.clock.advance(timedelta(hours=2))
        oracles = [Oracle(site.config, own_dovecot, site.account, smtp_sink, "")
                   for site in sites if site.config is not None]

        def judged() -> list[Verdict]:
            verdicts = []
            logs = "".join(site.log_text() for site in sites)  # either may alert either's mail
            for oracle, load in zip(oracles, loads, strict=True):
                oracle.log_text = logs
                verdicts.append(oracle.judge(load.inputs))
            return verdicts

        def settled() -> list[Verdict] | None:
            verdicts = judged()
            done = all(len(load.inputs.callbacks_acked) == form["callbacks"] for load in loads)
            return verdicts if done and all(v.settled() for v in verdicts) else None

        with contextlib.suppress(AssertionError):  # the verdicts below say what is missing
            wait_until(settled, timeout=form["settle"], interval=3, what="the calm round")
        for load in loads:
            load.stop()
        stopped = [site.stop_daemon() for site in sites]
        verdicts = judged()
        verified = oracles[0].verify_ledger(sites[0].env())
        starts = sum(site.starts for site in sites)
        logs = "".join(site.log_text() for site in sites)

    at_sink = collections.Counter(message_id(m.data) for m in smtp_sink.messages)
    counts = collections.Counter[str]()
    for verdict in verdicts:
        counts.update(verdict.counts)
    counts.update({"kills": kills, "daemon starts": starts, "chaos seconds": int(chaos_seconds),
                   "tracebacks in the logs": logs.count("Traceback"),
                   "mails at the sink": sum(at_sink.values())})
    report = (f"two daemons ({chaos_form}, seed {chaos_seed}): "
              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + "; "
              + "; ".join(f"{'ab'[i]}: lost {v.lost[:5]} doubled {v.doubled[:5]} "
                          f"unalerted {v.unalerted[:5]}" for i, v in enumerate(verdicts)))
    (tmp_path / "chaos-report.txt").write_text(report + "\n", encoding="utf-8")
    print("\n" + report)
    assert stopped == [0, 0], f"SIGTERM: exit statuses {stopped}"
    assert verified.returncode == 0, f"ledger verify: {verified.stdout}{verified.stderr}"
    assert "ledger verified" in verified.stdout, verified.stdout
    assert all(v.clean for v in verdicts), report
    assert [mid for mid, times in at_sink.items() if times > 1] == [], report
    outgoing = 2 * form["outgoing"]
    sent = counts["rejections sent once"]
    assert sent + counts["rejections unknown, alerted"] == outgoing, report
    assert sent >= 1 and counts["callbacks acknowledged"] == 2 * form["callbacks"], report
    assert counts["applications in"] == 2 * form["applications"], report
    assert kills >= form["kills"], report
