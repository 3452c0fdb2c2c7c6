"""Durable partner callbacks per second, beside a bare endpoint of the same framework.

The real daemon (`mailflow run`, a child process, watching a real Dovecot on 127.0.0.1) takes
N signed `registered` callbacks for N distinct candidates from a concurrent client (httpx
AsyncClient, C requests in flight); every 200 means the event, the status change and the ledger
entry were committed (SQLite WAL, synchronous=FULL). The same client then posts the same bodies
to a trivial Starlette app on uvicorn with the same settings (a child process too), which only
reads the body and answers 200. Prints a markdown table: requests per second, p50 and p99
latency; afterwards `mailflow ledger --json` must count all N registrations and verify.

    python benchmarks/callbacks.py [--count 5000] [--concurrency 50] [--check]

`--check` exits 1 below 500 durable callbacks per second (the target of issue 9).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import httpx  # noqa: E402
import psutil  # noqa: E402
from figures import Figure, emit  # noqa: E402
from harness import PASSWORD_ENV, write_config  # noqa: E402
from servers import Dovecot, free_port, wait_for_port  # noqa: E402

from mailflow.clock import SystemClock, iso  # noqa: E402
from mailflow.pool.talent import TalentPool, new_candidate  # noqa: E402
from mailflow.relay.callbacks import SIGNATURE_HEADER, sign  # noqa: E402
from mailflow.settings.config import load_config  # noqa: E402
from mailflow.store import open_store  # noqa: E402

TARGET = 500.0  # durable callbacks/s (issue 9)
TARGET_RATIO = 0.9  # of the bare endpoint's rate (issue 22)
SECRET = "bench-relay-secret"
WARM_UP = 200
PER_CLIENT = 5  # connections per httpx.AsyncClient
PATH = "/callbacks/career-relay"

BARE_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

async def callback(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"ok": True})

app = Starlette(routes=[Route("/callbacks/career-relay", callback, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off",
            access_log=False, log_config=None, proxy_headers=False, server_header=False,
            ws="none")
"""


def candidates(config: Path, count: int) -> list[str]:
    store = open_store(load_config(config).data_dir)
    pool = TalentPool(store, SystemClock())
    refs = []
    try:
        with store.transaction():
            for n in range(count):
                candidate = new_candidate(f"c_{n:06d}", iso(SystemClock().now()))
                candidate.update(relay_ref=f"{n:024x}", relay_status="invited")
                pool.save(candidate)
                refs.append(candidate["relay_ref"])
    finally:
        store.close()
    return refs


def requests_for(refs: list[str], prefix: str) -> list[tuple[bytes, dict[str, str]]]:
    now = int(time.time())
    signed = []
    for n, ref in enumerate(refs):
        body = json.dumps({"id": f"{prefix}-{n}", "type": "registered", "ref": ref,
                           "occurred_at": "2025-04-01T09:00:00+09:00"}).encode()
        signed.append((body, {SIGNATURE_HEADER: sign(SECRET.encode(), body, now),
                              "Content-Type": "application/json"}))
    return signed


async def load(base: str, requests: list[tuple[bytes, dict[str, str]]],
               concurrency: int) -> tuple[float, list[float], dict[int, int]]:
    """`concurrency` requests in flight, each worker on a keep-alive connection; the workers
    share AsyncClients of `PER_CLIENT` connections (one httpx pool of 50 connections spends more
    CPU on itself than the server under test does: 270 requests/s against the bare app)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=PER_CLIENT, max_keepalive_connections=PER_CLIENT)

    async def worker(client: httpx.AsyncClient) -> None:
        for request in pending:
            started = time.perf_counter()
            answer = await client.send(request)
            latencies.append(time.perf_counter() - started)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

    clients = [httpx.AsyncClient(base_url=base, limits=limits, timeout=60)
               for _ in range(-(-concurrency // PER_CLIENT))]
    # built before the clock starts: the client's own work is not what is measured
    pending = iter([clients[0].build_request("POST", PATH, content=body, headers=headers)
                    for body, headers in requests])
    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker(clients[n // PER_CLIENT]) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    return elapsed, latencies, statuses


def measure(server: subprocess.Popen[bytes], base: str,
            requests: list[tuple[bytes, dict[str, str]]], concurrency: int
            ) -> tuple[tuple[float, list[float], dict[int, int]], float]:
    """The load's result, and the server process's CPU seconds spent meanwhile."""
    process = psutil.Process(server.pid)
    before = sum(process.cpu_times()[:2])
    result = asyncio.run(load(base, requests, concurrency))
    return result, sum(process.cpu_times()[:2]) - before


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(name: str, count: int, concurrency: int,
        result: tuple[float, list[float], dict[int, int]], cpu: float) -> str:
    elapsed, latencies, statuses = result
    if statuses != {200: count}:
        raise SystemExit(f"{name}: answers {statuses}, expected {count} x 200")
    p50, p99 = statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000
    rate, cpu_ms = count / elapsed, cpu / count * 1000
    return (f"| {name} | {count:,} | {concurrency} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | "
            f"{cpu_ms:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, Dovecot() as dovecot:
        directory = Path(tmp)
        account = dovecot.add_user("bench", "secret")
        port = free_port()
        config = write_config(directory, account, extra=(
            f'[web]\nlisten = "127.0.0.1:{port}"\n'))
        refs = candidates(config, args.count + WARM_UP)
        env = {**os.environ, PASSWORD_ENV: account.password, "MAILFLOW_RELAY_SECRET": SECRET,
               "MAILFLOW_LEDGER_KEY": "bench-ledger-key"}
        log = (directory / "daemon.log").open("ab")
        daemon = subprocess.Popen([sys.executable, "-m", "mailflow", "run", "-c", str(config),
                                   "--log-level", "WARNING"], env=env, stdout=log, stderr=log)
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)])
        try:
            wait_for_port("127.0.0.1", port, 30)
            wait_for_port("127.0.0.1", bare_port, 30)
            base, bare_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
            warm = requests_for(refs[args.count:], "warm")
            asyncio.run(load(base, warm, args.concurrency))
            asyncio.run(load(bare_base, warm, args.concurrency))
            measured = requests_for(refs[:args.count], "evt")
            bare_result, bare_cpu = measure(bare, bare_base, measured, args.concurrency)
            durable, durable_cpu = measure(daemon, base, measured, args.concurrency)
            ledger = subprocess.run([sys.executable, "-m", "mailflow", "ledger", "--json", "-c",
                                     str(config)], env=env, capture_output=True, text=True)
        finally:
            for process in (daemon, bare):
                process.terminate()
                process.wait(30)
            log.close()
        balance = json.loads(ledger.stdout)
        expected = args.count + WARM_UP
        if balance["registrations"] != expected or not balance["verified"]:
            raise SystemExit(f"ledger: {balance}, expected {expected} verified registrations")

    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs; ledger after the run: {balance['registrations']:,} "
          f"registrations, {balance['slots_earned']:,} slots, verified")
    print()
    print("| endpoint | requests | in flight | requests/s | p50 ms | p99 ms | server CPU ms "
          "per request |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(row("bare Starlette on uvicorn (reads the body, answers 200)", args.count,
              args.concurrency, bare_result, bare_cpu))
    print(row("mailflow `POST /callbacks/career-relay` (durable)", args.count, args.concurrency,
              durable, durable_cpu))
    rate, bare_rate = args.count / durable[0], args.count / bare_result[0]
    emit(Figure("callbacks", "durable callbacks/s", rate, "req/s", "bare Starlette 200",
                bare_rate, rate / bare_rate, TARGET_RATIO),
         Figure("callbacks", "durable callbacks, p99", percentile(durable[1], 0.99) * 1000, "ms",
                "bare Starlette 200", percentile(bare_result[1], 0.99) * 1000))
    if args.check and rate < TARGET:
        print(f"below target: {rate:.0f} < {TARGET:.0f} durable callbacks/s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
