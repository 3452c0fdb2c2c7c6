"""`GET /r/{token}` per second, beside a bare endpoint of the same framework (issue 10).

One run starts a throw-away Dovecot (`tests/servers.py`) and the real daemon (`mailflow run`, a
child process, with a web port; `[web] public_rate_per_second` and `public_burst` set to
1,000,000 so the per-client rate limit does not cap the run: every request comes from
127.0.0.1). Links are issued beforehand with mailflow's own `RelayDesk` (one per candidate,
an hour before the run, so no click falls in the "within seconds of sending" window). A
concurrent client (httpx AsyncClient, `--concurrency` requests in flight on keep-alive
connections, `follow_redirects=False`, a Safari User-Agent and Accept-Language) then requests:

- **bare**: a trivial Starlette app on uvicorn with the daemon's uvicorn settings (a child
  process too) that answers 302 to a fixed Location;
- **mailflow, one link per click**: every request the first click on its own link, classified
  human (each records the click and moves the candidate from `invited` to `clicked`, one
  SQLite transaction, synchronous=FULL);
- **mailflow, `--links` links**: the same requests spread over `--links` links (about 100, one
  per candidate), so each link is clicked ~50 times; at these rates the repeats on one link come
  within a second of each other and are classified scanner ("repeat within a second"), and each
  click reads all the earlier clicks of its link.

Every answer must be a 302 to the configured registration URL; afterwards the store must hold
one click per request, by class as expected. Prints a markdown table (requests/s, p50 and p99
latency, server CPU per request, rate against the bare endpoint; pooled over the rounds).

    python benchmarks/links.py [--requests 5000] [--concurrency 50] [--links 100] [--rounds 3]
                               [--check] [--profile /tmp/links.prof]

The rows are measured in `--rounds` interleaved rounds (bare, then both mailflow rows, each
round on new links) and pooled, because the shared VM's load and disk latency drift; each round
also times a bare SQLite commit (WAL, synchronous=FULL) beside the store, the fsync that every
click pays.

`--check` exits 1 when a mailflow row is below half the bare endpoint's rate (the target of
issue 10). `--profile FILE` runs the daemon under cProfile (its rows are then not the verdict's
numbers) and prints its top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import io
import os
import platform
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import httpx  # noqa: E402
import psutil  # noqa: E402
from figures import Figure, emit  # noqa: E402
from harness import PASSWORD_ENV  # noqa: E402
from harness import write_config as harness_config  # noqa: E402
from servers import Dovecot, free_port, wait_for_port  # noqa: E402

from mailflow.clock import FrozenClock, iso  # noqa: E402
from mailflow.pool.talent import TalentPool, new_candidate  # noqa: E402
from mailflow.relay.desk import RejectionFacts, RelayDesk  # noqa: E402
from mailflow.settings.config import load_config  # noqa: E402
from mailflow.store import open_store  # noqa: E402

TARGET_RATIO = 0.9  # of the bare endpoint's rate (issue 22; issue 10 asked 0.5)
WARM_UP = 200
PER_CLIENT = 5  # connections per httpx.AsyncClient (see benchmarks/callbacks.py)
UNLIMITED = 1_000_000
REGISTER = "https://career-relay.example.jp/register?lang=ja"
COMPANY = "acme-001"
BROWSER = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 "
                         "(KHTML, like Gecko) Version/17.0 Safari/605.1.15",
           "Accept-Language": "ja-JP,ja;q=0.9"}

BARE_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

LOCATION = "https://career-relay.example.jp/register?lang=ja&company=acme-001&ref=0123456789ab"

async def follow(request: Request) -> RedirectResponse:
    return RedirectResponse(LOCATION, 302)

app = Starlette(routes=[Route("/r/{token:path}", follow, methods=["GET", "HEAD"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off",
            access_log=False, log_config=None, proxy_headers=False, server_header=False,
            ws="none")
"""

Result = tuple[float, list[float], dict[int, int]]


def write_config(directory: Path, account: object, port: int) -> Path:
    return harness_config(directory, account, extra=(  # type: ignore[arg-type]
        f'[web]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n'
        f"public_rate_per_second = {UNLIMITED}\npublic_burst = {UNLIMITED}\n\n"
        f'[career_relay]\nregister_url = "{REGISTER}"\ncompany_id = "{COMPANY}"\n'))


def issue_links(config: Path, count: int) -> list[tuple[str, str]]:
    """`count` invited candidates with one link each, issued an hour ago: (token, ref)."""
    store = open_store(load_config(config).data_dir)
    clock = FrozenClock(datetime.now(UTC) - timedelta(hours=1))
    pool, desk = TalentPool(store, clock), RelayDesk(store, clock, "http://127.0.0.1")
    links = []
    try:
        with store.transaction():
            for n in range(count):
                candidate = new_candidate(f"c_{n:06d}", iso(clock.now()))
                candidate["emails"] = [f"applicant{n}@example.net"]
                pool.save(candidate)
                invite = desk.issue(candidate, RejectionFacts("経験不足"))
                links.append((invite.token, invite.relay_ref))
    finally:
        store.close()
    return links


async def load(base: str, paths: list[str], concurrency: int) -> Result:
    """`concurrency` requests in flight, each worker on a keep-alive connection; the workers
    share AsyncClients of `PER_CLIENT` connections."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    pending = iter(paths)
    limits = httpx.Limits(max_connections=PER_CLIENT, max_keepalive_connections=PER_CLIENT)

    async def worker(client: httpx.AsyncClient) -> None:
        for path in pending:
            started = time.perf_counter()
            answer = await client.get(path)
            latencies.append(time.perf_counter() - started)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            if answer.status_code == 302 and not answer.headers["location"].startswith(
                    REGISTER.split("?")[0]):
                statuses[-1] = statuses.get(-1, 0) + 1  # a redirect elsewhere

    clients = [httpx.AsyncClient(base_url=base, limits=limits, timeout=60, headers=BROWSER,
                                 follow_redirects=False)
               for _ in range(-(-concurrency // PER_CLIENT))]
    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker(clients[n // PER_CLIENT]) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    return elapsed, latencies, statuses


def measure(server: subprocess.Popen[bytes], base: str, paths: list[str],
            concurrency: int) -> tuple[Result, float]:
    """The load's result, and the server process's CPU seconds spent meanwhile."""
    process = psutil.Process(server.pid)
    before = sum(process.cpu_times()[:2])
    result = asyncio.run(load(base, paths, concurrency))
    return result, sum(process.cpu_times()[:2]) - before


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(name: str, concurrency: int, result: Result, cpu: float, bare_rate: float) -> str:
    elapsed, latencies, statuses = result
    count = len(latencies)
    if statuses != {302: count}:
        raise SystemExit(f"{name}: answers {statuses}, expected {count} x 302")
    p50, p99 = statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000
    rate, cpu_ms = count / elapsed, cpu / count * 1000
    return (f"| {name} | {count:,} | {concurrency} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | "
            f"{cpu_ms:.2f} | {rate / bare_rate:.2f}x |")


def rate_of(result: Result) -> float:
    return len(result[1]) / result[0]


def pooled(results: list[tuple[Result, float]]) -> tuple[Result, float]:
    """Rounds taken together: their times, latencies, answers and CPU added up."""
    statuses: collections.Counter[int] = collections.Counter()
    for (_elapsed, _latencies, answers), _cpu in results:
        statuses.update(answers)
    return ((sum(r[0][0] for r in results), [x for r in results for x in r[0][1]],
             dict(statuses)), sum(r[1] for r in results))


def commit_ms(directory: Path, commits: int = 100) -> float:
    """Median time of one tiny SQLite commit (WAL, synchronous=FULL) beside the store: the
    fsync the daemon pays per click, as the disk allows at that moment."""
    path = directory / "probe.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
        times = []
        for n in range(commits):
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?)", (n,))
            conn.execute("COMMIT")
            times.append(time.perf_counter() - started)
    finally:
        conn.close()
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="per row and round")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--links", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    count, concurrency, rounds = args.requests, args.concurrency, args.rounds
    names = ("bare Starlette on uvicorn (answers 302)",
             "mailflow `GET /r/{token}`, one link per click (human, sets `clicked`)",
             f"mailflow `GET /r/{{token}}`, {args.links} links, {count // args.links} clicks "
             "each per round (repeats: scanner)")

    with tempfile.TemporaryDirectory() as tmp, Dovecot() as dovecot:
        directory = Path(tmp)
        account = dovecot.add_user("bench", "secret")
        port = free_port()
        config = write_config(directory, account, port)
        started = time.perf_counter()
        links = [f"/r/{token}" for token, _ref in
                 issue_links(config, WARM_UP + rounds * count + args.links)]
        issued = time.perf_counter() - started
        warm, shared_links = links[:WARM_UP], links[len(links) - args.links:]
        shared = [shared_links[n % args.links] for n in range(count)]
        env = {**os.environ, PASSWORD_ENV: account.password,
               "MAILFLOW_RELAY_SECRET": "bench-relay-secret",
               "MAILFLOW_LEDGER_KEY": "bench-ledger-key"}
        log = (directory / "daemon.log").open("ab")
        profiler = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
        daemon = subprocess.Popen([sys.executable, *profiler, "-m", "mailflow", "run", "-c",
                                   str(config), "--log-level", "WARNING"],
                                  env=env, stdout=log, stderr=log)
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)])
        measured: list[list[tuple[Result, float]]] = [[], [], []]
        probes = []
        try:
            wait_for_port("127.0.0.1", port, 30)
            wait_for_port("127.0.0.1", bare_port, 30)
            base, bare_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
            asyncio.run(load(base, warm, concurrency))
            asyncio.run(load(bare_base, warm, concurrency))
            for n in range(rounds):  # interleaved: the shared VM's load drifts
                fresh = links[WARM_UP + n * count:WARM_UP + (n + 1) * count]
                measured[0].append(measure(bare, bare_base, fresh, concurrency))
                probes.append(commit_ms(directory))
                measured[1].append(measure(daemon, base, fresh, concurrency))
                measured[2].append(measure(daemon, base, shared, concurrency))
        finally:
            for process in (daemon, bare):
                process.terminate()
                process.wait(60)
            log.close()

        store = open_store(load_config(config).data_dir)
        try:
            clicks = collections.Counter((c["class"], c["reason"]) for c in
                                         store.find("clicks", "class", "human")
                                         + store.find("clicks", "class", "scanner"))
            clicked = sum(c.get("relay_status") == "clicked" for c in store.scan("candidates"))
        finally:
            store.close()

    total = WARM_UP + 2 * rounds * count
    humans = sum(n for (kind, _), n in clicks.items() if kind == "human")
    if sum(clicks.values()) != total or humans < WARM_UP + rounds * count:
        raise SystemExit(f"store after the run: {dict(clicks)}, expected {total} clicks, at "
                         f"least {WARM_UP + rounds * count} human")
    results = [pooled(rows) for rows in measured]
    bare_rate = rate_of(results[0][0])
    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs; {len(links):,} links issued in {issued:.1f} s; "
          f"per-client rate limit set to {UNLIMITED:,}/s, burst {UNLIMITED:,} (does not cap "
          f"the run){'; daemon under cProfile' if args.profile else ''}")
    print(f"{rounds} rounds of {count:,} requests per row, interleaved; per round, mailflow "
          "rows vs bare: " + ", ".join(
              "/".join(f"{rate_of(measured[k][n][0]) / rate_of(measured[0][n][0]):.2f}x"
                       for k in (1, 2)) for n in range(rounds))
          + "; bare SQLite commit (WAL, FULL) beside the store, median ms per round: "
          + ", ".join(f"{ms:.2f}" for ms in probes))
    print("clicks in the store after the run (incl. warm-up): " + ", ".join(
        f"{kind} ({reason}) {n:,}" for (kind, reason), n in sorted(clicks.items()))
        + f"; candidates `clicked`: {clicked:,}")
    print()
    print("| endpoint | requests | in flight | requests/s | p50 ms | p99 ms | server CPU ms "
          "per request | vs bare |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, (result, cpu) in zip(names, results, strict=True):
        print(row(name, concurrency, result, cpu, bare_rate))

    emit(*(fig for (result, _cpu), what in zip(results[1:], ("one link per click (human)",
                                                           "repeated links (scanner)"),
                                                strict=True)
           for fig in (Figure("links", f"`GET /r/{{token}}`, {what}, req/s", rate_of(result),
                              "req/s", "bare Starlette 302", bare_rate,
                              rate_of(result) / bare_rate, TARGET_RATIO),
                       Figure("links", f"`GET /r/{{token}}`, {what}, p99",
                              percentile(result[1], 0.99) * 1000, "ms", "bare Starlette 302",
                              percentile(results[0][0][1], 0.99) * 1000))))
    if args.profile:
        out = io.StringIO()
        stats = pstats.Stats(str(args.profile), stream=out)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    worst = min(rate_of(result) for result, _cpu in results[1:]) / bare_rate
    if args.check and worst < TARGET_RATIO:
        print(f"below target: {worst:.2f}x < {TARGET_RATIO:.2f}x the bare endpoint's rate",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
