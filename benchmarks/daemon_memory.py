"""The daemon's memory over the size of the pool (issue 22): its RSS after intake with 10,000
applications in the store beside the same with 100,000.

For each pool size a store is seeded in-process through the daemon's own domain code: each
seeded application is `TalentPool.apply` (the call `intake.applications` makes for a mail), in
transactions of 5,000, then the follow-up planner (`FollowUpScheduler.plan`) works through the
events they left, so the store is that of a daemon that took those applications and planned
their follow-ups. Then the real daemon (`mailflow run`, a child process, `[followups]
tick_seconds = 1`) starts against a throw-away Dovecot and an aiosmtpd sink on 127.0.0.1; once
it is READY (sd_notify) `--mails` new applications (tests/chaos/load.py's, distinct senders)
are APPENDed to INBOX, and it runs until every one is a candidate in the store and the follow-up
planner's cursor has passed their events (at least one follow-up tick after the intake). Then,
after `--settle` seconds more, its RSS is read (settled, `/proc/PID/status` VmRSS), it is
stopped, and its peak RSS is the kernel's (`os.wait4` ru_maxrss: the whole run, start-up
included). The two sizes are interleaved `--runs` times; medians. `--unplanned` leaves the
seeded events unplanned, so the daemon's first tick plans all of them (a store filled by an
import or a backfill while no daemon ran).

Figure: peak and settled RSS at the larger pool over the smaller; target <= 1.10x.

    python benchmarks/daemon_memory.py [--sizes 10000,100000] [--mails 1000] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from chaos.load import application  # noqa: E402
from figures import Figure, emit  # noqa: E402
from harness import MAILFLOW, PASSWORD_ENV, env_for, write_config  # noqa: E402
from servers import Dovecot, ImapAccount, SmtpSink  # noqa: E402
from startup import SECRETS  # noqa: E402

from mailflow.clock import SystemClock  # noqa: E402
from mailflow.followups.scheduler import CURSOR, FollowUpScheduler  # noqa: E402
from mailflow.pool.records import Applicant  # noqa: E402
from mailflow.pool.tagging import tagging_store  # noqa: E402
from mailflow.pool.talent import TalentPool  # noqa: E402
from mailflow.settings.config import load_config  # noqa: E402
from mailflow.store import configured_store, open_store  # noqa: E402

TARGET = 1.10
SEED_BATCH = 5000
AT = "2025-05-01T09:00:00+09:00"
EXTRA = """
[followups]
tick_seconds = 1
"""


def seed(config: Path, applications: int, planned: bool = True) -> int:
    """`applications` applications through the pool (and planned, unless not `planned`); the
    planner's cursor."""
    settings = load_config(config)
    clock = SystemClock()
    store = tagging_store(configured_store(settings), settings, clock)  # as the daemon opens it
    try:
        pool = TalentPool(store, clock)
        for start in range(0, applications, SEED_BATCH):
            with store.transaction():
                for i in range(start, min(applications, start + SEED_BATCH)):
                    pool.apply(Applicant(name=f"既存 {i}", email=f"seeded{i}@example.org",
                                         phones=(), position="営業", note="", source="direct"),
                               f"<seeded{i}@example.org>", AT)
        if planned:
            FollowUpScheduler(store, clock, settings, None).plan()
        return int((store.get("checkpoints", CURSOR) or {}).get("seq", 0))
    finally:
        store.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def progress(data_dir: Path, seeded: int, mails: int) -> tuple[int, bool]:
    """How many of the new applicants are candidates, and whether the follow-up planner has
    passed every event so far."""
    try:
        store = open_store(data_dir, read_only=True)
    except Exception:  # the daemon is mid-checkpoint: the next poll
        return 0, False
    try:
        taken = store.count("candidates") - seeded
        cursor = int((store.get("checkpoints", CURSOR) or {}).get("seq", 0))
        last = max((seq for seq, _doc in store.log("events", after=cursor)), default=cursor)
        return taken, taken >= mails and last == cursor
    except Exception:
        return 0, False
    finally:
        store.close()


def run_daemon(config: Path, account: ImapAccount, dovecot: Dovecot, seeded: int, mails: int,
               first: int, settle: float) -> tuple[float, float, float]:
    """One daemon over `mails` new applications: (peak MB, settled MB, seconds to settle)."""
    data_dir = load_config(config).data_dir
    notify = config.parent / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.unlink(missing_ok=True)
    listener.bind(str(notify))
    listener.settimeout(0.05)
    log = (config.parent / "daemon.log").open("ab")
    process = subprocess.Popen([*MAILFLOW, "run", "-c", str(config), "--log-level", "WARNING"],
                               env={**env_for(account), **SECRETS, "NOTIFY_SOCKET": str(notify)},
                               stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while "READY=1" not in _recv(listener):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("daemon_memory: no READY=1; see " + log.name)
        started = time.perf_counter()
        for chunk in range(first, first + mails, 100):
            dovecot.append_many(account.username, "INBOX",
                                [application(n, account.address)
                                 for n in range(chunk, min(first + mails, chunk + 100))])
        deadline = time.monotonic() + 600
        while not progress(data_dir, seeded, mails)[1]:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"daemon_memory: intake did not settle "
                                 f"({progress(data_dir, seeded, mails)[0]} of {mails}); see "
                                 + log.name)
            time.sleep(0.25)
        seconds = time.perf_counter() - started
        time.sleep(settle)
        settled = rss_mb(process.pid)
    finally:
        process.terminate()
        _pid, _status, usage = os.wait4(process.pid, 0)
        process.returncode = 0
        listener.close()
        log.close()
    return usage.ru_maxrss / 1024, settled, seconds


def _recv(listener: socket.socket) -> list[str]:
    try:
        return listener.recv(4096).decode().splitlines()
    except TimeoutError:
        return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="two pool sizes")
    parser.add_argument("--mails", type=int, default=1000, help="new applications per run")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--unplanned", action="store_true",
                        help="seed without planning: the daemon's first tick plans them all")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before settled RSS")
    args = parser.parse_args()
    small, large = sorted(int(s) for s in args.sizes.split(","))
    peaks: dict[int, list[float]] = {small: [], large: []}
    settled: dict[int, list[float]] = {small: [], large: []}
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as tmp, Dovecot("sdbox") as dovecot, \
            SmtpSink() as sink:
        work, first = Path(tmp), 0
        for run in range(args.runs):
            for size in (small, large):
                account = dovecot.add_user(f"m{size}r{run}", "secret")
                os.environ[PASSWORD_ENV] = account.password
                (work / f"{size}-{run}").mkdir()
                config = write_config(work / f"{size}-{run}", account, sink,
                                      idle_seconds=540, silence_alarm_seconds=1800, extra=EXTRA)
                began = time.perf_counter()
                cursor = seed(config, size, not args.unplanned)
                print(f"seeded {size:,} applications (planner at seq {cursor:,}) in "
                      f"{time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
                peak, rest, seconds = run_daemon(config, account, dovecot, size, args.mails,
                                                 first, args.settle)
                first += args.mails
                peaks[size].append(peak)
                settled[size].append(rest)
                print(f"{size:,}: {args.mails:,} mails in {seconds:.1f} s, peak {peak:.1f} MB, "
                      f"settled {rest:.1f} MB", file=sys.stderr, flush=True)
    peak_mb = {n: statistics.median(v) for n, v in peaks.items()}
    rest_mb = {n: statistics.median(v) for n, v in settled.items()}
    print("| pool | peak RSS MB | settled RSS MB |\n|---|---:|---:|")
    for n in (small, large):
        print(f"| {n:,} applications + {args.mails:,} new | {peak_mb[n]:.1f} | "
              f"{rest_mb[n]:.1f} |")
    case = ", first tick plans them" if args.unplanned else ""
    emit(*(Figure("daemon_memory", f"daemon {what} RSS, {large:,} applications{case}", mb[large],
                  "MB", f"the same, {small:,}", mb[small], mb[large] / mb[small], TARGET, "<=")
           for what, mb in (("peak", peak_mb), ("settled", rest_mb))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
