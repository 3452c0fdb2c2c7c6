"""What one large mail costs the running daemon in memory.

One run starts a throw-away Dovecot on 127.0.0.1 (tests/servers.py) and, per size, a fresh
`python -m mailflow run` in a child process with its own data directory; once it watches INBOX,
one application mail with a PDF attachment of that size (base64 in the mail, so the mail is about
4/3 of it) is appended, and the daemon's resident memory is read before it and at its peak
(`VmHWM` of /proc/PID/status) once the mail is handled or quarantined. Prints a markdown table.

    python benchmarks/mail_size.py [--sizes-mb 1,30,43] [--limit-mb 25] [--dir DIR]

`--limit-mb` is written as `[mailbox] max_message_bytes` (0: the key left out); a mail above it
should be quarantined without its size showing in the peak.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from figures import Figure, emit  # noqa: E402
from harness import daemon_process, wait_until, write_config  # noqa: E402
from servers import Dovecot, ImapAccount  # noqa: E402

from mailflow.settings.config import load_config  # noqa: E402
from mailflow.store import open_store  # noqa: E402

MB = 1024 * 1024


def application(to: str, attachment_bytes: int) -> bytes:
    mail = MIMEMultipart()
    mail["From"] = "Large Applicant <large@example.net>"
    mail["To"] = to
    mail["Subject"] = "応募: バックエンドエンジニア"
    mail["Message-ID"] = f"<large.{time.time_ns()}@example.net>"
    mail.attach(MIMEText("応募いたします。履歴書を添付します。", "plain", "utf-8"))
    part = MIMEApplication(os.urandom(attachment_bytes), "pdf")
    part.add_header("Content-Disposition", "attachment", filename="resume.pdf")
    mail.attach(part)
    return mail.as_bytes()


def kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def outcome(config_path: Path) -> str:
    config = load_config(config_path)
    store = open_store(config.data_dir, config.store.engine, read_only=True)
    try:
        if store.count("candidates"):
            return "taken in"
        for doc in store.scan("quarantine"):
            return f"quarantined: {doc['reason']}"
        return ""
    finally:
        store.close()


def measure(work: Path, dovecot: Dovecot, account: ImapAccount, size: int,
            limit: int) -> tuple[float, float, float, str]:
    work.mkdir()
    config = write_config(work, account, **({"max_message_bytes": limit} if limit else {}))
    with daemon_process(config, account) as process:
        log = work / "daemon.log"
        wait_until(lambda: b"inbox: watching" in log.read_bytes(), timeout=30,
                   what="the daemon to watch INBOX")
        time.sleep(1)
        before = kib(process.pid, "VmRSS")
        raw = application(account.address, size)
        dovecot.append(account.username, "INBOX", raw)
        result = wait_until(lambda: outcome(config), timeout=120, interval=0.5,
                            what="the mail handled")
        peak = kib(process.pid, "VmHWM")
    return len(raw) / MB, before / 1024, peak / 1024, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-mb", default="1,30,43")
    parser.add_argument("--limit-mb", type=float, default=25)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    for variable in ("MAILFLOW_RELAY_SECRET", "MAILFLOW_LEDGER_KEY", "MAILFLOW_ADMIN_TOKEN"):
        os.environ.setdefault(variable, f"{variable.lower()}-for-the-benchmark")
    root = args.dir or Path(tempfile.mkdtemp(prefix="mailflow-size-"))
    limit = int(args.limit_mb * MB)
    rows = []
    with Dovecot() as dovecot:
        for n, size_mb in enumerate(float(s) for s in args.sizes_mb.split(",")):
            account = dovecot.add_user(f"size{n}", "secret")
            os.environ["MAILFLOW_TEST_IMAP_PASSWORD"] = account.password
            rows.append((size_mb, *measure(root / f"run{n}", dovecot, account,
                                           int(size_mb * MB), limit)))
    print(f"limit: {args.limit_mb} MiB\n")
    print("| attachment MiB | mail MiB | RSS before MiB | peak RSS MiB | outcome |")
    print("|---:|---:|---:|---:|---|")
    for size_mb, mail_mb, before, peak, result in rows:
        print(f"| {size_mb:g} | {mail_mb:.1f} | {before:.0f} | {peak:.0f} | {result} |")
    emit(*(Figure("mail_size", f"peak RSS, a {mail_mb:.1f} MiB mail ({result.split(':')[0]})",
                  peak, "MiB",
                  "RSS before it", before, (peak - before) / mail_mb,
                  0.25 if "quarantined" in result else None, "<=")
           for _size_mb, mail_mb, before, peak, result in rows))
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
