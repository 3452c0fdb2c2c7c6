"""1, 2 and 4 daemons on one PostgreSQL database, beside one daemon on SQLite (issue 23, 6).

One throw-away Dovecot, aiosmtpd sink and PostgreSQL cluster on 127.0.0.1 (tests/servers.py,
tests/postgres_server.py). Per setup — one `mailflow run` daemon on SQLite (the baseline), then
N = 1, 2, 4 daemons sharing one new PostgreSQL schema (one company), each daemon its own Dovecot
mailbox, data directory and web edge, started as in tests/test_multidaemon.py — three loads run
one after the other:

- intake: `--mails` applications appended across the mailboxes (intake.application: mostly
  distinct senders, one in eight a re-application), timed until the shared store holds every
  distinct sender as a candidate;
- callbacks: `--callbacks` signed `registered` callbacks for seeded candidates, spread round-robin
  over the daemons' web edges, `--concurrency` in flight in all (callbacks.load); every answer
  must be 200; requests per second and the p99 latency;
- outbox: `--outbox` queued records written into the shared store in one transaction while the
  daemons run, drained by their delivery rounds (`Store.claim`, FOR UPDATE SKIP LOCKED) to the
  SMTP sink; timed until the sink has them all, and each Message-ID must arrive exactly once.
  Which daemon claimed how many is printed.

Figures: each PostgreSQL setup against the SQLite daemon, and N = 2, 4 against N = 1 (no targets:
the machine has 2 cores, so 4 daemons and the server share them).

    python benchmarks/postgresql_daemons.py [--daemons 1,2,4] [--mails 400] [--callbacks 1500]
                                            [--outbox 1200] [--concurrency 40]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from callbacks import PER_CLIENT, SECRET, load, percentile, requests_for  # noqa: E402
from figures import Figure, emit  # noqa: E402
from harness import PASSWORD_ENV, wait_until, write_config  # noqa: E402
from intake import application, sender_of  # noqa: E402
from postgres_server import Postgres  # noqa: E402
from servers import Dovecot, ImapAccount, SmtpSink, free_port, wait_for_port  # noqa: E402

from mailflow.clock import SystemClock, iso  # noqa: E402
from mailflow.outgoing.outbox import Outbox  # noqa: E402
from mailflow.pool.talent import TalentPool, new_candidate  # noqa: E402
from mailflow.settings.config import load_config  # noqa: E402
from mailflow.store import Store, configured_store, store_path  # noqa: E402
from mailflow.store.postgresql import PostgresStore  # noqa: E402
from mailflow.store.sqlite import SqliteStore  # noqa: E402

DSN_ENV = "MAILFLOW_STORE_DSN"
PASSWORD = "secret"
APPEND_CHUNK = 50


@dataclass
class Daemon:
    config: Path
    account: ImapAccount
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.config.parent / "daemon.log"

    def start(self, env: dict[str, str]) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mailflow", "run", "-c", str(self.config),
                 "--log-level", "INFO"], env=env, stdout=log, stderr=log)

    def ready(self) -> None:
        wait_until(lambda: "inbox: watching INBOX" in self.log.read_text(
            encoding="utf-8", errors="replace"), timeout=90,
            what=f"{self.config.parent.name} to watch INBOX")
        wait_for_port("127.0.0.1", self.port, 30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


@dataclass
class Result:
    name: str
    daemons: int
    intake: float = 0.0  # mails/s
    callbacks: float = 0.0  # req/s
    p99: float = 0.0  # ms
    outbox: float = 0.0  # mails/s
    claimed: dict[str, int] = field(default_factory=dict)


def configure(directory: Path, account: ImapAccount, sink: SmtpSink, dsn: str | None) -> Daemon:
    directory.mkdir(parents=True)
    port = free_port()
    path = write_config(directory, account, sink, extra=f'[web]\nlisten = "127.0.0.1:{port}"\n')
    if dsn is not None:
        path.write_text(path.read_text(encoding="utf-8").replace(
            '[store]\npath = "data"\n',
            f'[store]\npath = "data"\nengine = "postgresql"\ndsn_env = "{DSN_ENV}"\n'),
            encoding="utf-8")
    return Daemon(path, account, port)


def direct_store(daemon: Daemon, dsn: str | None) -> Store:
    """The shared store as another process writes to it while the daemons run: on PostgreSQL a
    connection of no mailbox; on SQLite the file itself, past the daemon's writer lock (WAL lets
    the two write one after the other)."""
    if dsn is not None:
        return PostgresStore(dsn)
    data = load_config(daemon.config).data_dir
    data.mkdir(mode=0o700, exist_ok=True)
    return SqliteStore(store_path(data, "sqlite"))


def seed(store: Store, count: int) -> list[str]:
    """`count` invited candidates with a relay reference each, for the callbacks."""
    pool, now = TalentPool(store, SystemClock()), iso(SystemClock().now())
    refs = []
    with store.transaction():
        for n in range(count):
            candidate = new_candidate(f"cb_{n:06d}", now)
            ref = f"{n:024x}"
            candidate["relay_ref"], candidate["relay_status"] = ref, "invited"
            pool.save(candidate)
            refs.append(ref)
    return refs


def candidates(daemon: Daemon, env: dict[str, str]) -> int:
    os.environ[DSN_ENV] = env.get(DSN_ENV, "")
    store = configured_store(load_config(daemon.config), read_only=True)
    try:
        return store.count("candidates")
    finally:
        store.close()


def intake(dovecot: Dovecot, daemons: list[Daemon], env: dict[str, str], mails: int,
           seeded: int) -> float:
    """Mails appended across the mailboxes (one thread each) until all are candidates."""
    expected = seeded + len({sender_of(n) for n in range(mails)})

    def fill(i: int, daemon: Daemon) -> None:
        mine = [application(n, daemon.account.address) for n in range(i, mails, len(daemons))]
        for at in range(0, len(mine), APPEND_CHUNK):
            dovecot.append_many(daemon.account.username, "INBOX", mine[at:at + APPEND_CHUNK])

    started = time.perf_counter()
    threads = [threading.Thread(target=fill, args=(i, d)) for i, d in enumerate(daemons)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_until(lambda: candidates(daemons[0], env) >= expected, timeout=600, interval=0.2,
               what=f"{expected} candidates")
    return mails / (time.perf_counter() - started)


def callbacks(daemons: list[Daemon], refs: list[str], concurrency: int) -> tuple[float, float]:
    """Requests per second and p99 ms, the signed callbacks spread over the web edges."""
    signed = requests_for(refs, "evt")
    share = max(PER_CLIENT, concurrency // len(daemons))

    async def all_of() -> list[tuple[float, list[float], dict[int, int]]]:
        return await asyncio.gather(*(
            load(f"http://127.0.0.1:{d.port}", signed[i::len(daemons)], share)
            for i, d in enumerate(daemons)))

    started = time.perf_counter()
    results = asyncio.run(all_of())
    elapsed = time.perf_counter() - started
    statuses: collections.Counter[int] = collections.Counter()
    for _elapsed, _latencies, answered in results:
        statuses.update(answered)
    if statuses != {200: len(refs)}:
        raise SystemExit(f"callbacks: answers {dict(statuses)}, expected {len(refs)} x 200")
    latencies = [x for _elapsed, lat, _answered in results for x in lat]
    return len(refs) / elapsed, percentile(latencies, 0.99) * 1000


def outbox(daemons: list[Daemon], dsn: str | None, sink: SmtpSink,
           count: int) -> tuple[float, dict[str, int]]:
    """A backlog queued in one transaction, drained by the daemons; mails/s and who claimed."""
    sink.clear()
    store = direct_store(daemons[0], dsn)
    cfg = load_config(daemons[0].config)
    try:
        box = Outbox(store, SystemClock(), cfg, threading.RLock())
        with store.transaction():
            queued = [box.queue(f"From: {cfg.mailbox.address}\r\nTo: c{n}@example.net\r\n"
                                f"Subject: result {n}\r\nMIME-Version: 1.0\r\nContent-Type: "
                                f"text/plain; charset=utf-8\r\n\r\n残念ながら {n}\r\n".encode(),
                                to=[f"c{n}@example.net"], purpose="rejection")
                      for n in range(count)]
        started = time.perf_counter()
        sink.wait_for(count, timeout=600)
        elapsed = time.perf_counter() - started
        time.sleep(2.5)  # more delivery rounds on every daemon: nothing more goes out
        ids = [m.data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
               for m in sink.messages]
        if sorted(ids) != sorted(d["message_id"] for d in queued):
            raise SystemExit(f"outbox: {len(ids)} mails at the sink, {len(set(ids))} distinct, "
                             f"expected each of {count} once")
        claimed = collections.Counter(
            mailbox_of((store.get("outbox", d["id"]) or {}).get("claimed_by")) for d in queued)
    finally:
        store.close()
    return count / elapsed, dict(claimed)


def mailbox_of(holder: object) -> str:
    """The user of a holder (`imap://user@host:port/INBOX`); SQLite claims name none."""
    return str(holder).split("//", 1)[-1].split("@", 1)[0] if holder else "one daemon"


def run_setup(name: str, dovecot: Dovecot, sink: SmtpSink, root: Path, n: int,
              dsn: str | None, args: argparse.Namespace) -> Result:
    env = {**os.environ, PASSWORD_ENV: PASSWORD, "MAILFLOW_RELAY_SECRET": SECRET,
           "MAILFLOW_LEDGER_KEY": "bench-ledger-key"}
    if dsn is not None:
        env[DSN_ENV] = dsn
    daemons = [configure(root / name / f"d{i}", dovecot.add_user(f"{name}-d{i}", PASSWORD),
                         sink, dsn) for i in range(n)]
    seeder = direct_store(daemons[0], dsn)
    try:
        refs = seed(seeder, args.callbacks)
    finally:
        seeder.close()
    result = Result(name, n)
    try:
        for daemon in daemons:
            daemon.start(env)
        for daemon in daemons:
            daemon.ready()
        print(f"{name}: {n} daemon(s) watching", file=sys.stderr)
        result.intake = intake(dovecot, daemons, env, args.mails, len(refs))
        result.callbacks, result.p99 = callbacks(daemons, refs, args.concurrency)
        result.outbox, result.claimed = outbox(daemons, dsn, sink, args.outbox)
    finally:
        for daemon in daemons:
            daemon.stop()
    print(f"{name}: intake {result.intake:.0f} mails/s, callbacks {result.callbacks:.0f}/s "
          f"(p99 {result.p99:.0f} ms), outbox {result.outbox:.0f} mails/s {result.claimed}",
          file=sys.stderr)
    return result


def figures(results: list[Result], args: argparse.Namespace) -> list[Figure]:
    lite, one = results[0], next(r for r in results if r.daemons == 1 and r.name != "sqlite")
    loads = (("intake", "intake", "mails/s", args.mails),
             ("callbacks", "callbacks", "req/s", args.callbacks),
             ("p99", "callbacks, p99", "ms", args.callbacks),
             ("outbox", "outbox drained", "mails/s", args.outbox))
    out = []
    for attr, what, unit, size in loads:
        for r in results[1:]:
            value = getattr(r, attr)
            base = getattr(lite, attr)
            out.append(Figure("postgresql_daemons", f"{what}, {size:,}, PostgreSQL {r.daemons} "
                              f"daemon(s)", value, unit, "1 daemon on SQLite", base,
                              value / base if base else None))
            if r.daemons > 1:
                out.append(Figure("postgresql_daemons", f"{what}, {size:,}, PostgreSQL "
                                  f"{r.daemons} daemons against 1", value, unit,
                                  "1 daemon on PostgreSQL", getattr(one, attr),
                                  value / getattr(one, attr) if getattr(one, attr) else None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--daemons", default="1,2,4")
    parser.add_argument("--mails", type=int, default=400)
    parser.add_argument("--callbacks", type=int, default=1500)
    parser.add_argument("--outbox", type=int, default=1200)
    parser.add_argument("--concurrency", type=int, default=40)
    args = parser.parse_args()
    counts = [int(n) for n in args.daemons.split(",")]
    if 1 not in counts:
        raise SystemExit("--daemons must include 1 (the figures compare against it)")
    with (tempfile.TemporaryDirectory(prefix="pg-daemons-") as tmp, Dovecot() as dovecot,
          SmtpSink() as sink, Postgres() as pg):
        root = Path(tmp)
        results = [run_setup("sqlite", dovecot, sink, root, 1, None, args)]
        results += [run_setup(f"pg{n}", dovecot, sink, root, n, pg.schema(), args)
                    for n in counts]
    print(f"\n{os.cpu_count()} cores, Python {platform.python_version()}, load "
          f"{os.getloadavg()[0]:.1f}; {args.mails:,} mails, {args.callbacks:,} callbacks "
          f"({args.concurrency} in flight), {args.outbox:,} outbox records\n")
    print("| store | daemons | intake mails/s | callbacks/s | callback p99 ms | outbox mails/s "
          "| outbox claimed by |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        who = ", ".join(f"{k} {v}" for k, v in sorted(r.claimed.items()))
        print(f"| {'SQLite' if r.name == 'sqlite' else 'PostgreSQL'} | {r.daemons} | "
              f"{r.intake:,.0f} | {r.callbacks:,.0f} | {r.p99:,.0f} | {r.outbox:,.0f} | {who} |")
    emit(*figures(results, args))


if __name__ == "__main__":
    main()
