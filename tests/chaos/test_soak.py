"""The soak: the daemon runs two hours of accelerated time (FileClock) under a steady mixed
load (applications, rejection drafts, send-mode rejections, clicks, signed callbacks, and a
follow-up one hour after each application) while its resident memory, open file descriptors,
Dovecot's server-side sessions and the log's size are sampled. After the warm-up (the first
quarter) memory and descriptors stay flat, sessions never pile up, the log grows with the work
and no faster, and the oracle still finds nothing lost or doubled.

Short form (in `pytest`): 50 s of load at 144 times real speed. Full form (`make soak`): 20 min at
6 times; the curves are printed and written to soak-curves.txt in the test's tmp dir.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from harness import wait_until
from servers import Dovecot, ImapAccount, SmtpSink

from mailflow.settings.config import load_config
from mailflow.starter import SHIPPED_RULES

from .load import Workload, seed_pool
from .oracle import Oracle
from .proxy import Faults
from .site import ChaosSite, first_start

CALM = Faults(refuse=0, delay=0, stall=0, cut=0)
FORMS = {"short": dict(seconds=50, speed=144, every=3.0, pace=0.12),
         "full": dict(seconds=1200, speed=6, every=20.0, pace=0.3)}
FOLLOW_UP = """
[[followup]]
name = "soak-hour-after-applying"
description = "the soak's follow-up: HR hears of each application an hour later"
after = { event = "applied", delay = "1h" }
notify_hr = "an hour since this application"
once = true
"""
ALL_DAY = """
[followups]
tick_seconds = 1
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "24:00"
holidays = ""
per_hour = 100000
"""
MIB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    second: float  # real seconds since the start
    minute: float  # accelerated minutes since the start
    rss: int
    fds: int
    threads: int
    sessions: int  # Dovecot's server-side IMAP sessions
    log_bytes: int
    inputs: int  # mails and web requests fed so far


def dovecot_sessions(dovecot: Dovecot) -> int:
    """IMAP sessions on the server side: `doveadm who -1` lists one line per connection."""
    listed = dovecot.doveadm("who", "-1", ok_codes=(0, 68))
    return sum(1 for line in listed.splitlines()[1:] if line.strip())


def table(samples: list[Sample]) -> str:
    rows = ["second  minute  rss_MiB  fds  threads  dovecot_sessions  log_KiB  inputs"]
    rows += [f"{s.second:6.0f}  {s.minute:6.0f}  {s.rss / MIB:7.1f}  {s.fds:3d}  {s.threads:7d}  "
             f"{s.sessions:16d}  {s.log_bytes / 1024:7.0f}  {s.inputs:6d}" for s in samples]
    return "\n".join(rows)


def rules_with_a_follow_up(directory: Path) -> Path:
    rules = directory / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    with (rules / "followups.toml").open("a", encoding="utf-8") as file:
        file.write(FOLLOW_UP)
    return rules


@pytest.mark.timeout(3600)  # the full form: 20 min of load
def test_an_accelerated_soak_keeps_memory_descriptors_and_sessions_flat(
        tmp_path: Path, own_dovecot: Dovecot, own_account: ImapAccount, smtp_sink: SmtpSink,
        soak_form: str) -> None:
    form = FORMS[soak_form]
    totals = {"applications": 100_000, "drafts": 600, "outgoing": 600, "callbacks": 3000}
    with ChaosSite(tmp_path, own_dovecot, own_account, smtp_sink, 0, CALM, extra=ALL_DAY,
                   speed=form["speed"], rules=rules_with_a_follow_up(tmp_path)) as site:
        assert site.config is not None
        seed_pool(site.config, totals["drafts"], totals["outgoing"], totals["callbacks"])
        first_start(site)
        load = Workload(own_dovecot, own_account, site.base_url, site.clock,
                        load_config(site.config).data_dir, 7, totals, pace=form["pace"])
        daemon = psutil.Process(site.start_daemon().pid)
        wait_until(lambda: site.log_text().count("mailflow running") >= 2, timeout=60,
                   what="the daemon to run")
        began, began_at = site.clock.now(), time.monotonic()
        load.start()
        samples: list[Sample] = []
        while time.monotonic() - began_at < form["seconds"]:
            time.sleep(form["every"])
            i = load.inputs
            samples.append(Sample(
                time.monotonic() - began_at, (site.clock.now() - began).total_seconds() / 60,
                daemon.memory_info().rss, daemon.num_fds(), daemon.num_threads(),
                dovecot_sessions(own_dovecot), site.log_path.stat().st_size,
                len(i.applications) + len(i.drafts) + len(i.outgoing)
                + len(i.callbacks_sent) + sum(i.clicks_tried.values())))
        load.stop()
        oracle = Oracle(site.config, own_dovecot, own_account, smtp_sink, "")

        def drained() -> bool:  # the last inputs handled, the outbox's queue sent
            oracle.log_text = site.log_text()
            return oracle.judge(load.inputs).settled()

        with contextlib.suppress(AssertionError):  # the verdict below says what is missing
            wait_until(drained, timeout=60, interval=2, what="the last inputs")
        follow_ups = sum(1 for m in smtp_sink.messages if own_account.address in m.rcpt_tos)
        assert site.stop_daemon() == 0
        oracle.log_text = site.log_text()
        verdict = oracle.judge(load.inputs)

    curves = table(samples)
    (tmp_path / "soak-curves.txt").write_text(curves + "\n", encoding="utf-8")
    print(f"\nsoak ({soak_form}, x{form['speed']}): follow-ups to HR {follow_ups}; "
          f"{verdict.summary()}\n{curves}")
    warm = samples[len(samples) // 4:]
    settled = warm[: max(2, len(warm) // 3)]
    later = warm[len(warm) // 3:]
    rss_settled = statistics.median(s.rss for s in settled)
    assert max(s.rss for s in later) <= rss_settled * 1.15 + 8 * MIB, curves
    assert max(s.fds for s in later) <= max(s.fds for s in settled) + 4, curves
    assert max(s.threads for s in later) <= max(s.threads for s in settled) + 4, curves
    assert max(s.sessions for s in samples) <= 8, curves  # about one per watched folder
    fed = samples[-1].inputs - samples[0].inputs
    assert fed > 0 and samples[-1].log_bytes - samples[0].log_bytes <= 600 * fed, curves
    assert samples[-1].minute >= 60, "less than an hour of accelerated time"
    assert follow_ups > 0, "no follow-up came due"
    assert verdict.clean, verdict.summary()
