"""An end-to-end mixed hour compressed into minutes (issue 22): everything flowing at once into
one real daemon, then every effect checked.

One run starts a throw-away Dovecot and an aiosmtpd sink on 127.0.0.1 (tests/servers.py) and the
real daemon (`mailflow run`, a child process) in `[rejection] mode = "both"` (rewrite mode for
Drafts and send mode for the outbox folder at the same time), with a web port and a clock file
(`$MAILFLOW_CLOCK_FILE`, tests/chaos/site.py's `MovingClock`). The pool is seeded with the
rejectees and the invited candidates the partner calls back about; then, all at once:

- `--applications` applications APPENDed to INBOX (MULTIAPPEND chunks), every `--sample`-th
  timed from the APPEND's OK until its candidate is in the store (a read-only open, polled);
- `--drafts` rejection drafts appended to Drafts and `--outbox` rejections to the outbox folder;
- `--clicks` `GET /r/{token}` on the links the rejections issue (read from the store as they
  appear) and `--callbacks` signed `registered` callbacks, each from `--concurrency` requests in
  flight, every HTTP round trip timed;
- a follow-up rule (`notify_hr` an hour after `registered`, for the `--followups` candidates
  tagged for it): once the callbacks are in, the clock moves two hours on and they come due.

When everything has settled the daemon is stopped (its peak RSS from `os.wait4`) and the chaos
oracle (tests/chaos/oracle.py) checks each application recorded once, each draft rewritten once,
each outbox rejection sent once (the sink), every callback credited once and every click kept;
`mailflow ledger --json` must count one registration per callback and verify, and the sink must
hold exactly one follow-up per tagged candidate. Any wrong effect: exit 1. Intake is shown beside
a bare fetch + stdlib parse of the same INBOX afterwards (benchmarks/intake.py's baseline).

    python benchmarks/mixed_hour.py [--applications 10000] [--drafts 500] [--outbox 500]
        [--clicks 5000] [--callbacks 1000] [--followups 500] [--concurrency 10] [--sample 50]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import email
import email.policy
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import httpx  # noqa: E402
import psutil  # noqa: E402
from chaos.load import (  # noqa: E402
    CALLBACKS,
    CANDIDATE_NAME,
    Inputs,
    application,
    callback_ref,
    draft_address,
    outgoing_address,
    rejection,
)
from chaos.oracle import Oracle  # noqa: E402
from chaos.site import OUTBOX_FOLDER, MovingClock  # noqa: E402
from figures import Figure, emit  # noqa: E402
from harness import MAILFLOW, PASSWORD_ENV, wait_until, write_config  # noqa: E402
from intake import baseline  # noqa: E402
from servers import Dovecot, ImapAccount, SmtpSink, free_port, wait_for_port  # noqa: E402

from mailflow.clock import CLOCK_FILE_ENV, SystemClock, iso  # noqa: E402
from mailflow.pool.talent import TalentPool, new_candidate  # noqa: E402
from mailflow.relay.callbacks import SIGNATURE_HEADER, sign  # noqa: E402
from mailflow.settings.config import load_config  # noqa: E402
from mailflow.starter import SHIPPED_RULES  # noqa: E402
from mailflow.store import open_store  # noqa: E402
from mailflow.store.base import Store  # noqa: E402

SECRET = "bench-relay-secret"
TAG = "mixed-hour-followup"
CHUNK = 50  # applications per MULTIAPPEND
PER_CLIENT = 5  # connections per httpx.AsyncClient (see benchmarks/callbacks.py)
FOLLOW_UP = f"""
[[followup]]
name = "mixed-hour"
description = "the mixed hour's follow-up: HR hears of a registration an hour later"
after = {{ event = "registered", delay = "1h" }}
when = {{ tags_any = ["{TAG}"] }}
notify_hr = "an hour since this registration"
once = true
"""
EXTRA = """
[web]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
public_rate_per_second = 1000000
public_burst = 1000000

[rejection]
mode = "both"
outbox_folder = "{outbox}"
quiet_seconds = 0

[followups]
tick_seconds = 1
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "24:00"
holidays = ""
per_hour = 1000000
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def candidate_id(kind: str, n: int) -> str:
    return f"c_{kind}{n:04d}"


def seed(config: Path, args: argparse.Namespace) -> None:
    """The rejectees (Drafts, outbox) and the invited candidates the partner calls back about,
    the first `--followups` of those tagged for the follow-up (as tests/chaos/load.py seeds)."""
    settings = load_config(config)
    store = open_store(settings.data_dir, settings.store.engine)
    pool, now = TalentPool(store, SystemClock()), iso(SystemClock().now())
    try:
        with store.transaction():
            for kind, count, address in (("d", args.drafts, draft_address),
                                         ("o", args.outbox, outgoing_address)):
                for n in range(count):
                    candidate = new_candidate(candidate_id(kind, n), now)
                    candidate.update(name=CANDIDATE_NAME,
                                     name_normalized=CANDIDATE_NAME.replace(" ", ""),
                                     emails=[address(n)])
                    pool.save(candidate)
            for n in range(args.callbacks):
                candidate = new_candidate(candidate_id("r", n), now)
                candidate.update(relay_ref=callback_ref(n), relay_status="invited",
                                 status="rejected", tags=[TAG] if n < args.followups else [])
                pool.save(candidate)
    finally:
        store.close()


def reading(data_dir: Path) -> Store | None:
    try:
        return open_store(data_dir, read_only=True)
    except Exception:  # the daemon is mid-checkpoint: try again on the next poll
        return None


class Feed:
    """What went in and when, shared by the feeding threads and the pollers."""

    def __init__(self) -> None:
        self.inputs = Inputs()
        self.appended: dict[int, float] = {}  # sampled application → APPEND OK (perf_counter)
        self.intake_ms: list[float] = []
        self.click_ms: list[float] = []
        self.callback_ms: list[float] = []
        self.tokens: list[str] = []
        self.web_seconds: dict[str, float] = {}
        self.callbacks_done = threading.Event()
        self.mail_done = threading.Event()
        self.peak_rss = 0
        self.stopping = False  # the settling timed out: the web flows give up


def feed_mail(dovecot: Dovecot, account: ImapAccount, args: argparse.Namespace,
              feed: Feed) -> None:
    """Applications in chunks, a rejection draft and an outbox rejection in between, so that
    all three flows run through the whole feed."""
    user, i = account.username, feed.inputs
    outbox = OUTBOX_FOLDER.replace("/", account.delimiter)
    chunks = max(1, -(-args.applications // CHUNK))
    for c in range(chunks):
        numbers = range(c * CHUNK, min(args.applications, (c + 1) * CHUNK))
        dovecot.append_many(user, "INBOX", [application(n, account.address) for n in numbers])
        appended = time.perf_counter()
        for n in numbers:
            i.applications.append(n)
            if n % args.sample == 0:
                feed.appended[n] = appended
        share = slice(c * args.drafts // chunks, (c + 1) * args.drafts // chunks)
        for n in range(args.drafts)[share]:
            dovecot.append(user, "Drafts", rejection(account, draft_address(n),
                                                     f"<draft-{n}@example.co.jp>"),
                           flags=[b"\\Draft"])
            i.drafts.append(n)
        share = slice(c * args.outbox // chunks, (c + 1) * args.outbox // chunks)
        for n in range(args.outbox)[share]:
            dovecot.append(user, outbox, rejection(account, outgoing_address(n),
                                                   f"<out-{n}@example.co.jp>"))
            i.outgoing.append(n)
    feed.mail_done.set()


def watch_store(data_dir: Path, feed: Feed, stop: threading.Event, links: int) -> None:
    """Times the sampled applications into the store, and reads the links issued so far (once
    a second, until all `links` are there)."""
    looked = 0.0
    while not stop.wait(0.05):
        store = reading(data_dir)
        if store is None:
            continue
        try:
            for n, appended in list(feed.appended.items()):
                if store.find("candidates", "emails", f"applicant{n}@example.net"):
                    feed.intake_ms.append((time.perf_counter() - appended) * 1000)
                    del feed.appended[n]
            if len(feed.tokens) < links and time.monotonic() - looked >= 1:
                looked = time.monotonic()
                ids = [candidate_id("d", n) for n in feed.inputs.drafts]
                ids += [candidate_id("o", n) for n in feed.inputs.outgoing]
                feed.tokens = [key for cid in ids
                               for key in store.find_keys("tokens", "candidate_id", cid)
                               if (store.get("tokens", key) or {}).get("relay_ref")]
        except Exception:  # a read racing a checkpoint: the next poll
            pass
        finally:
            store.close()


def watch_rss(pid: int, feed: Feed, stop: threading.Event) -> None:
    process = psutil.Process(pid)
    while not stop.wait(0.2):
        try:
            feed.peak_rss = max(feed.peak_rss, process.memory_info().rss)
        except psutil.Error:
            return


async def web(base: str, args: argparse.Namespace, clock: MovingClock, feed: Feed) -> None:
    limits = httpx.Limits(max_connections=PER_CLIENT, max_keepalive_connections=PER_CLIENT)
    clients = [httpx.AsyncClient(base_url=base, limits=limits, timeout=60)
               for _ in range(-(-args.concurrency // PER_CLIENT))]
    i = feed.inputs

    async def callbacks() -> None:
        pending = iter(range(args.callbacks))
        now = int(clock.now().timestamp())

        async def worker(client: httpx.AsyncClient) -> None:
            for n in pending:
                event_id = f"evt-{n}"
                body = json.dumps({"id": event_id, "type": "registered", "ref": callback_ref(n),
                                   "occurred_at": "2025-04-01T09:00:00+09:00"}).encode()
                headers = {SIGNATURE_HEADER: sign(SECRET.encode(), body, now),
                           "Content-Type": "application/json"}
                i.callbacks_sent.add(event_id)
                started = time.perf_counter()
                answer = await client.post(CALLBACKS, content=body, headers=headers)
                feed.callback_ms.append((time.perf_counter() - started) * 1000)
                i.callback_answers[answer.status_code] += 1
                if answer.status_code == 200:
                    i.callbacks_acked.add(event_id)

        started = time.perf_counter()
        await asyncio.gather(*(worker(clients[n // PER_CLIENT])
                               for n in range(args.concurrency)))
        feed.web_seconds["callbacks"] = time.perf_counter() - started
        feed.callbacks_done.set()

    async def clicks() -> None:
        while not feed.tokens:
            if feed.stopping:
                return
            await asyncio.sleep(0.1)
        pending = iter(range(args.clicks))

        async def worker(client: httpx.AsyncClient) -> None:
            for n in pending:
                token = feed.tokens[n % len(feed.tokens)]
                i.clicks_tried[token] += 1
                started = time.perf_counter()
                answer = await client.get(f"/r/{token}", follow_redirects=False)
                feed.click_ms.append((time.perf_counter() - started) * 1000)
                if answer.status_code == 302:
                    i.clicks_acked[token] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(clients[n // PER_CLIENT])
                               for n in range(args.concurrency)))
        feed.web_seconds["clicks"] = time.perf_counter() - started

    try:
        await asyncio.gather(callbacks(), clicks())
    finally:
        for client in clients:
            await client.aclose()


def follow_ups(sink: SmtpSink, account: ImapAccount) -> collections.Counter[str]:
    """The follow-up notices at the sink, by candidate id."""
    found: collections.Counter[str] = collections.Counter()
    for message in sink.messages:
        if account.address not in message.rcpt_tos:
            continue
        mail = email.message_from_bytes(message.data, policy=email.policy.default)
        body = mail.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        if "mixed-hour" in text:
            found.update(word.strip("()") for word in text.split() if word.startswith("(c_r"))
    return found


def rewritten(dovecot: Dovecot, account: ImapAccount) -> int:
    with dovecot.client(account.username) as client:
        client.select_folder("Drafts", readonly=True)
        return len(client.search(["HEADER", "X-Mailflow-Relay", ""]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--applications", type=int, default=10_000)
    parser.add_argument("--drafts", type=int, default=500)
    parser.add_argument("--outbox", type=int, default=500)
    parser.add_argument("--clicks", type=int, default=5000)
    parser.add_argument("--callbacks", type=int, default=1000)
    parser.add_argument("--followups", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=10, help="per web flow")
    parser.add_argument("--sample", type=int, default=50, help="time every n-th application")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to settle")
    args = parser.parse_args()
    if args.followups > args.callbacks:
        parser.error("--followups cannot exceed --callbacks (they follow registrations)")
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    directory = Path(tempfile.mkdtemp(prefix="mixed-hour-"))
    dovecot, sink = Dovecot(), SmtpSink()
    feed, stop = Feed(), threading.Event()
    daemon: subprocess.Popen[bytes] | None = None
    try:
        dovecot.start()
        sink.start()
        account = dovecot.add_user("mixed", "secret")
        rules = directory / "rules"
        shutil.copytree(SHIPPED_RULES, rules)
        (rules / "followups.toml").write_text(FOLLOW_UP, encoding="utf-8")  # this rule alone
        port = free_port()
        config = write_config(directory, account, sink, extra=EXTRA.format(
            port=port, outbox=OUTBOX_FOLDER))
        config.write_text(config.read_text(encoding="utf-8").replace(
            f'dir = "{SHIPPED_RULES}"', f'dir = "{rules}"'), encoding="utf-8")
        data_dir = load_config(config).data_dir
        seed(config, args)
        clock = MovingClock(directory / "clock.txt")
        clock.start()
        env = {**os.environ, PASSWORD_ENV: account.password, CLOCK_FILE_ENV: str(clock.path),
               "MAILFLOW_RELAY_SECRET": SECRET, "MAILFLOW_LEDGER_KEY": "bench-ledger-key"}
        log = (directory / "daemon.log").open("ab")
        command = [*MAILFLOW, "run", "-c", str(config), "--log-level", "WARNING"]

        def checkpoints() -> int:
            store = reading(data_dir)
            if store is None:
                return 0
            try:
                return store.count("checkpoints")
            finally:
                store.close()

        # a first start: the daemon takes only mail that arrives after it first saw INBOX
        first = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        wait_until(lambda: checkpoints() >= 2, timeout=60, what="the first checkpoints")
        first.terminate()
        first.wait(60)

        daemon = subprocess.Popen(command, env=env, stdout=log, stderr=log,
                                  stdin=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", port, 60)
        threading.Thread(target=watch_rss, args=(daemon.pid, feed, stop), daemon=True).start()
        threading.Thread(target=watch_store, args=(data_dir, feed, stop, args.drafts + args.outbox),
                         daemon=True).start()
        began = time.perf_counter()
        mail = threading.Thread(target=feed_mail, args=(dovecot, account, args, feed))
        mail.start()
        web_thread = threading.Thread(target=asyncio.run, args=(web(
            f"http://127.0.0.1:{port}", args, clock, feed),), daemon=True)
        web_thread.start()
        feed.callbacks_done.wait(args.timeout)
        due_from = time.perf_counter()
        clock.advance(timedelta(hours=2))  # the follow-ups come due, the mail still flowing
        done: dict[str, float] = {}
        deadline = time.monotonic() + args.timeout
        seeded = args.drafts + args.outbox + args.callbacks
        i = feed.inputs
        while len(done) < 4 and time.monotonic() < deadline:
            time.sleep(0.25)
            now = time.perf_counter() - began
            store = reading(data_dir)
            if store is not None:
                try:
                    if (feed.mail_done.is_set() and "applications" not in done
                            and store.count("candidates") >= seeded + args.applications):
                        done["applications"] = now
                finally:
                    store.close()
            if "rejections" not in done and feed.mail_done.is_set():
                sent = sum(1 for m in sink.messages if any(
                    to.startswith("outgoing") for to in m.rcpt_tos))
                if sent >= args.outbox and rewritten(dovecot, account) >= args.drafts:
                    done["rejections"] = now
            if "followups" not in done and sum(follow_ups(sink, account).values()) >= (
                    args.followups):
                done["followups"] = time.perf_counter() - due_from
            if "web" not in done and not web_thread.is_alive():
                done["web"] = now
        feed.stopping = True
        mail.join(60)
        web_thread.join(60)
        time.sleep(2)  # a late double would show
        stop.set()
        daemon.terminate()
        _pid, status, usage = os.wait4(daemon.pid, 0)
        daemon.returncode = os.waitstatus_to_exitcode(status)
        clock.stop()
        log.close()

        oracle = Oracle(config, dovecot, account, sink,
                        (directory / "daemon.log").read_text(errors="replace"))
        verdict = oracle.judge(i)
        ledger = subprocess.run([*MAILFLOW, "ledger", "--json", "-c", str(config)], env=env,
                                capture_output=True, text=True, timeout=120)
        balance = json.loads(ledger.stdout or "{}")
        notices = follow_ups(sink, account)
        bare = baseline(dovecot, account.username, 200, parse=True)
    finally:
        stop.set()
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
        sink.stop()
        dovecot.close()
        shutil.rmtree(directory, ignore_errors=True)

    wrong = list(verdict.lost) + list(verdict.doubled) + list(verdict.unalerted)
    wrong += [f"flow {flow} did not settle in {args.timeout:.0f} s" for flow in
              ("applications", "rejections", "followups", "web") if flow not in done]
    if balance.get("registrations") != args.callbacks or not balance.get("verified"):
        wrong.append(f"ledger: {balance or ledger.stderr[-300:]}, expected {args.callbacks} "
                     "verified registrations")
    tagged = {candidate_id("r", n) for n in range(args.followups)}
    wrong += [f"follow-up for {cid} sent {notices[cid]} times" for cid in tagged
              if notices[cid] != 1]
    wrong += [f"follow-up for untagged {cid}" for cid in notices if cid not in tagged]
    if len(i.callbacks_acked) != args.callbacks or i.callback_answers.keys() != {200}:
        wrong.append(f"callback answers {dict(i.callback_answers)}")
    if sum(i.clicks_acked.values()) != args.clicks:
        wrong.append(f"{sum(i.clicks_acked.values())} of {args.clicks} clicks answered 302")
    if daemon.returncode != 0:
        wrong.append(f"daemon exit {daemon.returncode}")

    peak_mb = max(feed.peak_rss, usage.ru_maxrss * 1024) / 2**20
    rates = {
        "applications": args.applications / done.get("applications", float("inf")),
        "rejections": (args.drafts + args.outbox) / done.get("rejections", float("inf")),
        "clicks": args.clicks / feed.web_seconds.get("clicks", float("inf")),
        "callbacks": args.callbacks / feed.web_seconds.get("callbacks", float("inf")),
        "followups": args.followups / done.get("followups", float("inf")),
    }
    p99 = {"intake": percentile(feed.intake_ms, 0.99), "clicks": percentile(feed.click_ms, 0.99),
           "callbacks": percentile(feed.callback_ms, 0.99)}
    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs; the mixed hour: {args.applications:,} applications, "
          f"{args.drafts:,} drafts + {args.outbox:,} outbox rejections, {args.clicks:,} clicks, "
          f"{args.callbacks:,} callbacks, {args.followups:,} follow-ups, all at once; settled "
          f"after {max(done.values(), default=0):.1f} s; daemon peak RSS {peak_mb:.0f} MB")
    print(f"oracle: {verdict.summary()}; ledger {balance}")
    print()
    print("| flow | count | per second | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for flow, count, times in (
            ("applications (APPEND → candidate recorded, sampled)", args.applications,
             feed.intake_ms),
            ("rejections (Drafts rewritten + outbox sent)", args.drafts + args.outbox, []),
            ("clicks `GET /r/{token}`", args.clicks, feed.click_ms),
            ("callbacks `POST /callbacks/career-relay`", args.callbacks, feed.callback_ms),
            ("follow-ups (after the clock moved on)", args.followups, [])):
        rate = rates[flow.split()[0].replace("-", "")]
        p50 = f"{percentile(times, 0.5):.1f}" if times else "–"
        high = f"{percentile(times, 0.99):.1f}" if times else "–"
        print(f"| {flow} | {count:,} | {rate:,.1f} | {p50} | {high} |")
    print(f"| bare fetch + stdlib parse of the INBOX afterwards | {bare.messages:,} | "
          f"{bare.rate:,.0f} | – | – |")
    print()
    print("every effect correct" if not wrong else
          f"{len(wrong)} effects wrong:\n- " + "\n- ".join(wrong[:30]))

    emit(Figure("mixed_hour", "effects wrong", float(len(wrong)), "", target=0, op="<=",
                on="value"),
         Figure("mixed_hour", "applications recorded/s (mixed)", rates["applications"], "msg/s",
                "bare fetch + stdlib parse", bare.rate, rates["applications"] / bare.rate),
         Figure("mixed_hour", "intake APPEND → recorded, p99", p99["intake"], "ms"),
         Figure("mixed_hour", "rejections handled/s (mixed)", rates["rejections"], "mail/s"),
         Figure("mixed_hour", "clicks/s (mixed)", rates["clicks"], "req/s"),
         Figure("mixed_hour", "clicks, p99 (mixed)", p99["clicks"], "ms"),
         Figure("mixed_hour", "callbacks/s (mixed)", rates["callbacks"], "req/s"),
         Figure("mixed_hour", "callbacks, p99 (mixed)", p99["callbacks"], "ms"),
         Figure("mixed_hour", "follow-ups sent/s (mixed)", rates["followups"], "mail/s"),
         Figure("mixed_hour", "daemon peak RSS (mixed)", peak_mb, "MB"))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
