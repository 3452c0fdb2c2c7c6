"""Daemon start-up: from exec of `mailflow run` to its READY=1 (sd_notify: the store open, every
rule file loaded, every watched folder logged in) against a throw-away Dovecot on 127.0.0.1, with
N candidates already in the store, beside the same start with an empty store, interleaved, median
of `--runs` (1 by default). The store is seeded in-process through the store API, then opened
once by the daemon's own tagging store (`pool.tagging`), so each timed start is a restart with the
tag rules already applied. Target (issue 22): ready in under 1 s with 50,000 candidates.

    python benchmarks/daemon_ready.py [--candidates 50000] [--runs 1]
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
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Figure, emit  # noqa: E402
from harness import MAILFLOW, PASSWORD_ENV, env_for, write_config  # noqa: E402
from servers import Dovecot, ImapAccount  # noqa: E402
from startup import SECRETS  # noqa: E402

from mailflow.clock import SystemClock  # noqa: E402
from mailflow.pool.tagging import tagging_store  # noqa: E402
from mailflow.settings.config import load_config  # noqa: E402
from mailflow.store import configured_store  # noqa: E402

TARGET_MS = 1000.0
AT = "2025-05-01T09:00:00+09:00"


def candidate(i: int) -> dict[str, object]:
    return {"id": f"c{i:07d}", "name": f"候補者 {i}", "name_normalized": f"候補者{i}",
            "emails": [f"candidate{i}@example.jp"], "phones": [], "source": "direct",
            "status": "applied", "applications": [{"position": "営業", "applied_at": AT,
                                                    "source": "direct",
                                                    "message_ids": [f"<m{i}@example.jp>"]}],
            "rescout_ok": True, "tags": [], "relay_status": "not_invited", "reapplied": False,
            "consents": {}, "message_ids": [f"<m{i}@example.jp>"], "created_at": AT,
            "updated_at": AT}


def site(work: Path, account: ImapAccount, candidates: int) -> Path:
    """A config whose store holds `candidates` candidates (each with its `applied` event)."""
    work.mkdir()
    path = write_config(work, account, idle_seconds=540, silence_alarm_seconds=1800)
    config = load_config(path)
    store = configured_store(config)
    try:
        for start in range(0, candidates, 10_000):
            with store.transaction():
                for i in range(start, min(candidates, start + 10_000)):
                    doc = candidate(i)
                    store.put("candidates", str(doc["id"]), doc)
                    store.append("events", {"candidate_id": doc["id"], "type": "applied",
                                            "at": AT, "data": {}})
        tagging_store(store, config, SystemClock())  # the tag rules applied, as the daemon does
    finally:
        store.close()
    return path


def cpu_ms(pid: int) -> float:
    """The process's CPU time so far (user + system), from /proc: steadier than the wall clock
    on a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def ready_ms(config: Path, account: ImapAccount, notify: Path) -> tuple[float, float]:
    """One start: exec to READY=1 on our notify socket, and the CPU time it took; then the
    daemon is stopped."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.unlink(missing_ok=True)
    listener.bind(str(notify))
    listener.settimeout(0.05)
    log = (config.parent / "daemon.log").open("ab")
    started = time.perf_counter()
    process = subprocess.Popen([*MAILFLOW, "run", "-c", str(config)],
                               env={**env_for(account), **SECRETS, "NOTIFY_SOCKET": str(notify)},
                               stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        while process.poll() is None and time.perf_counter() - started < 60:
            try:
                if "READY=1" in listener.recv(4096).decode().splitlines():
                    return (time.perf_counter() - started) * 1000, cpu_ms(process.pid)
            except TimeoutError:
                continue
        tail = Path(log.name).read_text(errors="replace")[-2000:]
        raise SystemExit(f"daemon_ready: no READY=1; the daemon said:\n{tail}")
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        listener.close()
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ready-bench-") as tmp, Dovecot("sdbox") as dovecot:
        work = Path(tmp)
        account = dovecot.add_user("bench", "secret")
        os.environ[PASSWORD_ENV] = account.password
        started = time.perf_counter()
        sites = {0: site(work / "empty", account, 0),
                 args.candidates: site(work / "full", account, args.candidates)}
        print(f"seeded {args.candidates:,} candidates in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        times: dict[int, list[float]] = {n: [] for n in sites}
        cpu: dict[int, list[float]] = {n: [] for n in sites}
        for _ in range(args.runs):
            for n, config in sites.items():
                wall, used = ready_ms(config, account, work / "notify")
                times[n].append(wall)
                cpu[n].append(used)
    empty, full = (statistics.median(times[n]) for n in sites)
    print("| store | median ms to READY=1 | min | max | CPU ms (median) |\n"
          "|---|---:|---:|---:|---:|")
    for n, values in times.items():
        print(f"| {n:,} candidates | {statistics.median(values):.0f} | {min(values):.0f} | "
              f"{max(values):.0f} | {statistics.median(cpu[n]):.0f} |")
    emit(Figure("daemon_ready", f"`mailflow run` to READY=1, {args.candidates:,} candidates",
                full, "ms", "the same, empty store", empty, full / empty, TARGET_MS, "<=",
                "value"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
