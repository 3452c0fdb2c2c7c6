"""Intake throughput over a real IMAP folder, beside the raw baseline measured in the same run.

One run starts a throw-away Dovecot on 127.0.0.1 (tests/servers.py), fills one user's INBOX per
size (default 1,000 and 10,000) with realistic application mails (ISO-2022-JP with a small PDF
résumé, Shift_JIS, UTF-8, HTML-only; most senders distinct, about one in eight a re-application
of an earlier sender), and measures, per folder:

- fetch: a bare imapclient `UID FETCH BODY.PEEK[]` of the whole folder in batches (200);
- fetch + parse: the same plus `email.message_from_bytes(raw, policy=email.policy.default)` and
  the body text read with `get_body(...).get_content()`;
- mailflow: `python -m mailflow backfill INBOX -c CONFIG` run alone in a child process on a fresh
  data directory (fetch + parse + classify + store), with its peak RSS from `os.wait4`.

Prints a markdown table. The target (issue 5): mailflow at least half the speed of fetch + parse,
and peak memory under 300 MB and independent of folder size (largest within 1.25x of smallest,
as tests/test_history.py checks). Exit code 0 always; `--check` exits 1 when a target is missed.
`--profile FILE` adds one more run of the largest folder under cProfile (not timed in the table)
and prints its top functions by cumulative time.

    python benchmarks/intake.py [--sizes 1000,10000] [--batch 200] [--dir DIR] [--check]
                                [--profile /tmp/intake.prof]
"""

from __future__ import annotations

import argparse
import email
import email.charset
import email.policy
import json
import os
import platform
import pstats
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from figures import Figure, emit  # noqa: E402
from harness import PASSWORD_ENV, write_config  # noqa: E402
from imapclient import IMAPClient  # noqa: E402
from servers import Dovecot, ImapAccount  # noqa: E402

from mailflow.settings.config import load_config  # noqa: E402
from mailflow.store import open_store  # noqa: E402

MAX_RSS_MB = 300.0
MIN_RATIO = 0.5  # mailflow msg/s over fetch + parse msg/s
FLAT_MEMORY = 1.25  # peak RSS of the largest folder over the smallest
APPEND_CHUNK = 500
QP_UTF8 = email.charset.Charset("utf-8")
QP_UTF8.body_encoding = email.charset.QP

FAMILY = ["山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村", "小林", "加藤",
          "吉田", "山本", "松本", "井上", "木村", "林", "清水", "山崎", "森", "池田"]
GIVEN = ["太郎", "花子", "一郎", "美咲", "健太", "陽菜", "翔", "結衣", "大輔", "さくら",
         "拓也", "愛", "直樹", "葵", "誠", "真由美", "亮", "彩", "悠斗", "恵"]
ROMAJI_FAMILY = ["yamada", "sato", "suzuki", "takahashi", "tanaka", "ito", "watanabe",
                 "nakamura", "kobayashi", "kato", "yoshida", "yamamoto", "matsumoto", "inoue",
                 "kimura", "hayashi", "shimizu", "yamazaki", "mori", "ikeda"]
DOMAINS = ["example.net", "example.jp", "mail.example.com", "example.org"]
POSITIONS = ["Webエンジニア", "経理", "営業職（法人）", "データアナリスト", "人事", "デザイナー"]


def pdf(n: int) -> bytes:
    """A small but plausible PDF résumé (~3 KB), different for every message (so every one is
    a new file in mailflow's attachment store, as real résumés are)."""
    line = f"BT /F1 10 Tf 72 720 Td (resume {n:08d}) Tj ET\n".encode()
    return (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            b"4 0 obj\n<< /Length 3000 >>\nstream\n" + line * 70
            + b"endstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")


# ----------------------------------------------------------------------------------- the mail


def sender_of(n: int) -> int:
    """About one message in eight comes from an earlier applicant (a re-application)."""
    return n // 2 if n % 8 == 7 else n


def application(n: int, to: str) -> bytes:
    who = sender_of(n)
    name = f"{FAMILY[who % 20]} {GIVEN[(who // 20) % 20]}"
    address = f"{ROMAJI_FAMILY[who % 20]}.{who}@{DOMAINS[who % 4]}"
    position = POSITIONS[n % len(POSITIONS)]
    phone = f"090-{who % 10000:04d}-{(who * 7) % 10000:04d}"
    when = format_datetime(datetime(2025, 1, 1, 9, tzinfo=UTC) + timedelta(minutes=37 * n))
    msgid = f"<app{n}.{who}@{DOMAINS[who % 4]}>"
    kind = n % 4
    if kind == 0:  # ISO-2022-JP with a PDF résumé, as Japanese mail clients send it
        body = (f"採用ご担当者様\n\n{position}職に応募いたします。{name}と申します。\n"
                "Python と SQL で5年の開発経験があります。履歴書を添付いたします。\n"
                f"電話: {phone}\n\nよろしくお願いいたします。\n{name}\n")
        message: MIMEMultipart | MIMEText = MIMEMultipart()
        message.attach(MIMEText(body, "plain", "iso-2022-jp"))
        resume = MIMEApplication(pdf(n), "pdf")
        resume.add_header("Content-Disposition", "attachment",
                          filename=("utf-8", "", f"履歴書_{name.replace(' ', '')}.pdf"))
        message.attach(resume)
        charset = "iso-2022-jp"
    elif kind == 1:  # Shift_JIS (CP932), 8bit, as older Windows clients send it
        text = (f"採用ご担当者様\r\n\r\n{position}に応募いたします。{name}です。\r\n"
                "① 日商簿記2級\r\n② 実務経験 2018年～2024年\r\n"
                f"携帯: {phone}\r\n\r\nよろしくお願いいたします。\r\n")
        head = (f"From: {formataddr((Header(name, 'iso-2022-jp').encode(), address))}\r\n"
                f"To: {to}\r\nSubject: {Header(f'{position}への応募', 'iso-2022-jp').encode()}\r\n"
                f"Date: {when}\r\nMessage-ID: {msgid}\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=Shift_JIS\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n")
        return head.encode("ascii") + text.encode("cp932")
    elif kind == 2:  # UTF-8 plain text (base64)
        body = (f"採用ご担当者様\n\nはじめまして、{name}と申します。\n"
                f"貴社の{position}の求人を拝見し、応募いたしました。\n"
                f"職務経歴: 2019年〜 株式会社サンプルにて開発業務。\n連絡先: {phone}\n")
        message = MIMEText(body, "plain", "utf-8")
        charset = "utf-8"
    else:  # HTML only (quoted-printable), as web mail sends it
        html = (f"<html><body><p>採用ご担当者様</p><p>{position}に応募いたします。"
                f"<b>{name}</b>です。</p><table><tr><td>電話</td><td>{phone}</td></tr>"
                "<tr><td>希望勤務地</td><td>東京</td></tr></table>"
                "<p>よろしくお願いいたします。</p></body></html>")
        message = MIMEText(html, "html", QP_UTF8)
        charset = "utf-8"
    message["From"] = formataddr((str(Header(name, charset)), address))
    message["To"] = to
    message["Subject"] = Header(f"【応募】{position} {name}", charset)  # type: ignore[assignment]
    message["Date"] = when
    message["Message-ID"] = msgid
    return message.as_bytes()


def fill(dovecot: Dovecot, account: ImapAccount, count: int) -> None:
    for start in range(0, count, APPEND_CHUNK):
        chunk = range(start, min(count, start + APPEND_CHUNK))
        dovecot.append_many(account.username, "INBOX",
                            [application(n, account.address) for n in chunk])


# ------------------------------------------------------------------------------- measurements


@dataclass
class Row:
    what: str
    messages: int
    seconds: float
    cpu: float  # CPU seconds of the measuring process (not Dovecot's)
    rss_mb: float | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def body_text(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(preferencelist=("plain", "html"))
    text = part.get_content() if part is not None else ""
    return str(message["Subject"] or "") + str(message["From"] or "") + text


def baseline(dovecot: Dovecot, user: str, batch: int, parse: bool) -> Row:
    client: IMAPClient = dovecot.client(user, timeout=60)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        count, size = 0, 0
        for i in range(0, len(uids), batch):
            data = client.fetch(uids[i:i + batch], ["BODY.PEEK[]"])
            for item in data.values():
                raw = item[b"BODY[]"]
                size += len(raw)
                if parse:
                    body_text(raw)
                count += 1
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        client.logout()
    what = "fetch + stdlib parse" if parse else f"bare UID FETCH BODY.PEEK[] ({batch}/batch)"
    return Row(what, count, seconds, cpu, note=f"{size / count / 1024:.1f} KiB/msg avg")


def run_backfill(work: Path, account: ImapAccount, profile: Path | None = None) -> Row:
    work.mkdir(parents=True)
    config = write_config(work, account)
    env = {**os.environ, PASSWORD_ENV: account.password}
    command = [sys.executable, "-m", "mailflow", "backfill", "INBOX", "-c", str(config), "--json"]
    if profile is not None:
        command[1:1] = ["-m", "cProfile", "-o", str(profile)]
    with (work / "stdout").open("wb") as out, (work / "stderr").open("wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL)
        try:
            _pid, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
    code = process.returncode
    note = f"exit {code}"
    done = 0
    try:
        result = json.loads((work / "stdout").read_text() or "{}")
        done = int(result.get("done", 0))
        note += f", {result.get('new', '?')} new"
    except (ValueError, AttributeError):
        note += ", no JSON result: " + (work / "stderr").read_text(errors="replace")[-300:]
    if code == 0:
        cfg = load_config(config)
        store = open_store(cfg.data_dir, cfg.store.engine, read_only=True)
        try:
            note += f", {store.count('candidates'):,} candidates"
        finally:
            store.close()
    what = "mailflow backfill (alone" + (", under cProfile)" if profile else ")")
    return Row(what, done, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, note)


# ------------------------------------------------------------------------------------- report


def table(rows: list[tuple[Row, Row]]) -> None:
    print("| what | messages | seconds | CPU s | msg/s | vs fetch+parse | peak RSS MB | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for row, reference in rows:
        ratio = row.rate / reference.rate if reference.rate else 0.0
        rss = f"{row.rss_mb:.0f}" if row.rss_mb is not None else "–"
        print(f"| {row.what} | {row.messages:,} | {row.seconds:.2f} | {row.cpu:.2f} | "
              f"{row.rate:,.0f} | "
              f"{ratio:.2f}x | {rss} | {row.note} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--batch", type=int, default=200, help="UIDs per baseline FETCH")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the data directories go (default: a temp dir)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="also run the largest backfill under cProfile, writing this file")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    base = Path(tempfile.mkdtemp(prefix="intake-bench-", dir=args.dir))
    # SIGTERM unwinds like Ctrl-C: the child backfill is killed, Dovecot stopped, data removed
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))

    dovecot = Dovecot()
    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, Dovecot "
          f"{dovecot.version}, {platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
          f"data in {base}\n", flush=True)
    results: list[tuple[int, Row, Row, Row]] = []
    profile_row: Row | None = None
    try:
        dovecot.start()
        for size in sizes:
            account = dovecot.add_user(f"bench{size}")
            start = time.perf_counter()
            fill(dovecot, account, size)
            print(f"filled INBOX of {account.username} with {size:,} mails in "
                  f"{time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)
            fetch = baseline(dovecot, account.username, args.batch, parse=False)
            parse = baseline(dovecot, account.username, args.batch, parse=True)
            intake = run_backfill(base / f"data-{size}", account)
            results.append((size, fetch, parse, intake))
        if args.profile is not None:
            account = dovecot.account(f"bench{sizes[-1]}")
            profile_row = run_backfill(base / "data-profile", account, args.profile.resolve())
    finally:
        dovecot.close()
        shutil.rmtree(base, ignore_errors=True)

    rows: list[tuple[Row, Row]] = []
    for _size, fetch, parse, intake in results:
        rows += [(fetch, parse), (parse, parse), (intake, parse)]
    if profile_row is not None:
        rows.append((profile_row, results[-1][2]))
    print()
    table(rows)

    largest, smallest = results[-1][3], results[0][3]
    ratio = largest.rate / results[-1][2].rate
    peak = max(r[3].rss_mb or 0.0 for r in results)
    growth = (largest.rss_mb or 0.0) / (smallest.rss_mb or 1.0)
    verdicts = [
        (f"speed at {sizes[-1]:,}: {ratio:.2f}x of fetch + parse (target >= {MIN_RATIO}x)",
         ratio >= MIN_RATIO),
        (f"peak RSS: {peak:.0f} MB (target < {MAX_RSS_MB:.0f} MB)", peak < MAX_RSS_MB),
        (f"peak RSS {sizes[-1]:,} vs {sizes[0]:,}: {growth:.2f}x (target <= {FLAT_MEMORY}x, "
         "independent of folder size)", growth <= FLAT_MEMORY),
        ("every message handled", all(r[3].messages == r[0] for r in results)),
    ]
    emit(*(Figure("intake", f"intake of {size:,} mails, msg/s", intake.rate, "msg/s",
                  "bare fetch + stdlib parse", parse.rate, intake.rate / parse.rate, 1.0)
           for size, _fetch, parse, intake in results),
         Figure("intake", f"peak RSS at {sizes[-1]:,} mails", largest.rss_mb or 0.0, "MB",
                f"the same at {sizes[0]:,}", smallest.rss_mb, growth, FLAT_MEMORY, "<="))
    print("\nTarget (issue 5): at least half the speed of fetch + parse; peak memory under "
          "300 MB and independent of folder size.")
    for text, ok in verdicts:
        print(f"- {text}: {'ok' if ok else 'MISSED'}")
    if args.profile is not None:
        print(f"\ncProfile of the {sizes[-1]:,}-message backfill ({args.profile}), "
              "top 30 by cumulative time:\n")
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(30)
    return 0 if not args.check or all(ok for _text, ok in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
