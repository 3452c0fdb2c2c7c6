"""The data directory's disk fills up under load: mailflow stops writing safely, says so loudly
(`/healthz` unhealthy, one error line, not a flood), keeps running, and once space returns takes
in what waited, without loss: every application recorded once, every acknowledged callback in
the ledger. As root the data directory is a 16 MiB tmpfs filled by a file; without root, an
ENOSPC is injected at the store's writes (mailflow/faults.py, MAILFLOW_FAULT_DISK_FULL)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import wait_until
from servers import Dovecot, ImapAccount, SmtpSink

from mailflow.faults import DISK_FULL_ENV
from mailflow.settings.config import load_config

from .load import Workload, seed_pool
from .oracle import Oracle
from .proxy import Faults
from .site import ChaosSite, first_start

CALM = Faults(refuse=0, delay=0, stall=0, cut=0)
LOUD = ("disk full", "No space left", "database or disk is full")


class Disk:
    """Fills the data directory's file system (a tmpfs of its own) and frees it again."""

    injected = False

    def __init__(self, data_dir: Path) -> None:
        self.filler = data_dir / "filler"

    def fill(self) -> None:
        chunk = b"\0" * 65536
        with self.filler.open("wb") as out:
            with contextlib.suppress(OSError):
                while True:
                    out.write(chunk)
                    out.flush()
            with contextlib.suppress(OSError):  # the last bytes the page cache held
                os.fsync(out.fileno())

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


class InjectedDisk(Disk):
    """Without root: the store's writes fail with ENOSPC while a flag file exists."""

    injected = True

    def __init__(self, flag: Path) -> None:
        self.filler = flag

    def fill(self) -> None:
        self.filler.touch()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Disk]:
    """As root, tmp_path/data is a 16 MiB tmpfs of its own; else (or with
    MAILFLOW_CHAOS_DISK=injected) ENOSPC is injected."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    if os.geteuid() != 0 or os.environ.get("MAILFLOW_CHAOS_DISK") == "injected":
        yield InjectedDisk(tmp_path / "disk-full.flag")
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(data)],
                   check=True)
    try:
        yield Disk(data)
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def healthz(base_url: str) -> tuple[int, str]:
    try:
        answer = httpx.get(base_url + "/healthz", timeout=5)
    except httpx.HTTPError as exc:
        return 0, str(exc)
    return answer.status_code, answer.text


def test_a_full_disk_stops_writes_loudly_once_and_resumes_without_loss(
        tmp_path: Path, small_disk: Disk, own_dovecot: Dovecot, own_account: ImapAccount,
        smtp_sink: SmtpSink) -> None:
    with ChaosSite(tmp_path, own_dovecot, own_account, smtp_sink, 0, CALM) as site:
        assert site.config is not None
        data_dir = load_config(site.config).data_dir
        disk = small_disk
        if disk.injected:
            site.env_extra[DISK_FULL_ENV] = str(disk.filler)
        seed_pool(site.config, 0, 0, 20)
        first_start(site)
        totals = {"applications": 10, "drafts": 0, "outgoing": 0, "callbacks": 20}
        process = site.start_daemon()
        wait_until(lambda: healthz(site.base_url)[0] == 200, timeout=60, what="a healthy start")
        before = site.log_text().count("\n")
        disk.fill()
        load = Workload(own_dovecot, own_account, site.base_url, site.clock, data_dir, 5,
                        totals, pace=0.2)
        load.start()
        status, said = wait_until(lambda: (lambda h: h if h[0] == 503 else None)(
            healthz(site.base_url)), timeout=60, what="/healthz to say the disk is full")
        time.sleep(5)  # more applications and callbacks arrive, and are refused
        during = site.log_text().splitlines()[before:]
        alive = process.poll() is None
        disk.free()

        oracle = Oracle(site.config, own_dovecot, own_account, smtp_sink, "")

        def settled() -> bool:
            verdict = oracle.judge(load.inputs)
            return (verdict.settled() and load.mail_done
                    and len(load.inputs.callbacks_acked) == totals["callbacks"]
                    and healthz(site.base_url)[0] == 200)

        with contextlib.suppress(AssertionError):
            wait_until(settled, timeout=90, interval=2, what="the recovery")
        load.stop()
        assert site.stop_daemon() == 0
        verdict = oracle.judge(load.inputs)
        verified = oracle.verify_ledger(site.env())

    loud = [line for line in during if any(word in line for word in LOUD)]
    print(f"\ndisk full: /healthz {status} {said}; {len(loud)} error lines of {len(during)}; "
          f"callbacks answered {dict(load.inputs.callback_answers)}; {verdict.summary()}")
    assert alive, "the daemon died when the disk filled"
    assert status == 503 and "disk" in said, said
    assert 1 <= len(loud) <= 2, "\n".join(loud[:10])
    assert "Traceback" not in "\n".join(during)
    assert verdict.clean, verdict.summary()
    answers = load.inputs.callback_answers
    assert answers[503] >= 1 and set(answers) <= {200, 503}, answers  # "send it again"
    assert verdict.counts["applications in"] == totals["applications"]
    assert verified.returncode == 0, verified.stderr
