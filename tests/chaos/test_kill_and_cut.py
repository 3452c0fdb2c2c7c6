"""The daemon killed with SIGKILL at random moments, its IMAP and SMTP connections delayed,
stalled, cut and refused at random, Dovecot restarted under load, while applications, rejection
drafts, send-mode rejections, clicks and signed callbacks flow in; then one calm round, and the
oracle: nothing lost, nothing doubled, nothing stuck without an alert.

Short form (in `pytest`): a few kills. Full form (`make chaos`): at least 200 kills and 200
connection cuts; its counts are printed and written to chaos-report.txt in the test's tmp dir.
"""

from __future__ import annotations

import contextlib
import random
import time
from datetime import timedelta
from pathlib import Path

import pytest
from harness import wait_until
from servers import Dovecot, ImapAccount, SmtpSink

from mailflow.settings.config import load_config

from .load import Workload, seed_pool
from .oracle import Oracle, Verdict
from .proxy import Faults
from .site import ChaosSite, first_start

FORMS = {
    # kills and cuts at least, Dovecot restarts, inputs, the feed's pace (s), the calm round's
    # limit (s)
    "short": dict(kills=6, cuts=0, restarts=1, applications=30, drafts=10, outgoing=10,
                  callbacks=30, pace=0.08, settle=120),
    "full": dict(kills=210, cuts=210, restarts=8, applications=500, drafts=120, outgoing=120,
                 callbacks=400, pace=0.35, settle=600),
}
FAULTS = {"short": Faults(refuse=0.05, delay=0.1, stall=0.01, cut=0.08),
          "full": Faults(refuse=0.04, delay=0.1, stall=0.005, cut=0.08)}


@pytest.mark.timeout(3600)  # the full form: about 20 min on a busy machine
def test_kill9_and_a_bad_network_lose_nothing_and_double_nothing(
        tmp_path: Path, own_dovecot: Dovecot, own_account: ImapAccount, smtp_sink: SmtpSink,
        chaos_form: str, chaos_seed: int) -> None:
    form = FORMS[chaos_form]
    dice = random.Random(chaos_seed)
    with ChaosSite(tmp_path, own_dovecot, own_account, smtp_sink, chaos_seed,
                   FAULTS[chaos_form]) as site:
        assert site.config is not None
        seed_pool(site.config, form["drafts"], form["outgoing"], form["callbacks"])
        load = Workload(own_dovecot, own_account, site.base_url, site.clock,
                        load_config(site.config).data_dir, chaos_seed,
                        {k: form[k] for k in ("applications", "drafts", "outgoing", "callbacks")},
                        pace=form["pace"])
        first_start(site)
        load.start()
        restarts_at = set(dice.sample(range(form["kills"]), form["restarts"]))
        restarts = 0
        started = time.monotonic()
        while (site.kills < form["kills"] or not load.mail_done
               or sum(proxy.counts["cut"] for proxy in site.proxies) < form["cuts"]):
            site.start_daemon()
            time.sleep(dice.uniform(0.3, 5.0))
            if site.starts - 1 in restarts_at:
                own_dovecot.restart()  # under load: every session dropped at once
                restarts += 1
                time.sleep(dice.uniform(0.0, 2.0))
            site.kill_daemon()
        chaos_seconds = time.monotonic() - started

        # the calm round: a working network, the clock past every retry's backoff
        for proxy in site.proxies:
            proxy.calm()
        site.clock.advance(timedelta(hours=2))
        site.start_daemon()
        oracle = Oracle(site.config, own_dovecot, own_account, smtp_sink, "")

        def settled() -> Verdict | None:
            oracle.log_text = site.log_text()
            verdict = oracle.judge(load.inputs)
            done = len(load.inputs.callbacks_acked) == form["callbacks"]
            return verdict if done and verdict.settled() else None

        with contextlib.suppress(AssertionError):  # the verdict below says what is missing
            wait_until(settled, timeout=form["settle"], interval=3, what="the calm round")
        load.stop()
        assert site.stop_daemon() == 0, "the daemon did not stop cleanly on SIGTERM"
        oracle.log_text = site.log_text()
        verdict = oracle.judge(load.inputs)
        verified = oracle.verify_ledger(site.env())

    log = site.log_text()
    imap, smtp = (proxy.counts for proxy in site.proxies)
    verdict.counts.update({
        "kills": site.kills, "daemon starts": site.starts, "dovecot restarts": restarts,
        "imap cuts": imap["cut"], "smtp cuts": smtp["cut"], "cuts": imap["cut"] + smtp["cut"],
        "refused connections": imap["refused"] + smtp["refused"],
        "stalls": imap["stalled"] + smtp["stalled"], "delays": imap["delayed"] + smtp["delayed"],
        "tracebacks in the log": log.count("Traceback"),
        "log lines": log.count("\n"), "chaos seconds": int(chaos_seconds),
        "web requests unanswered": load.inputs.web_failures,
    })
    report = f"chaos ({chaos_form}, seed {chaos_seed}): {verdict.summary()}"
    (tmp_path / "chaos-report.txt").write_text(report + "\n", encoding="utf-8")
    print("\n" + report)
    assert verified.returncode == 0, f"ledger verify: {verified.stdout}{verified.stderr}"
    assert verdict.clean, report
    assert verdict.counts["drafts rewritten once"] >= 1, report
    assert verdict.counts["rejections sent once"] >= 1, report
    if chaos_form == "full":
        assert site.kills >= 200 and verdict.counts["cuts"] >= 200, report
