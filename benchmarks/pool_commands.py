"""Commands over the whole pool: `import` of N rows, then `candidates --json`, `report --json` and
`export --anonymized --json` on the N candidates it made, each in a child process (time and peak
RSS from `os.wait4`). Baselines in the same run: a bare read of the same SQLite store with JSON
encoding of every candidate (`candidates`, `export`, `report`), and reading and splitting the
same CSV with the stdlib (`import`).

Targets (issue 22): `candidates --json` at 50k within 1.5x of the bare read (ratio bare/mailflow
>= 0.67) and peak RSS under 100 MB; `import` at least 5,000 rows/s with flat memory.

    python benchmarks/pool_commands.py [--sizes 10000,50000]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Figure, emit

BARE_READ = """
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
out = sys.stdout
out.write("[")
for n, (doc,) in enumerate(db.execute("SELECT doc FROM docs WHERE kind = 'candidates'")):
    out.write(("," if n else "") + json.dumps(json.loads(doc), ensure_ascii=False, indent=2))
out.write("]")
"""
BARE_CSV = """
import csv, sys
with open(sys.argv[1], encoding="utf-8", newline="") as rows:
    print(sum(1 for _ in csv.DictReader(rows)))
"""


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one child process; its output is discarded."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[2:5])}: failed: {child.stderr.read().decode()[-400:]}"
                         if child.stderr else "failed")
    return seconds, usage.ru_maxrss / 1024


def write_csv(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        rows = csv.writer(out)
        rows.writerow(["氏名", "メールアドレス", "電話番号", "応募経路", "応募職種", "応募日",
                       "ステータス", "不採用日", "不採用理由", "再スカウト可", "同意した目的"])
        for i in range(n):
            rows.writerow([f"候補者 {i}", f"candidate{i}@example.jp", f"090-{i % 10000:04d}-0000",
                           ("doda", "リクナビ", "direct")[i % 3], "営業", "2025-04-01",
                           "不採用", "2025-05-01", "経験不足", "可",
                           "talent_pool;rescout" if i % 2 else ""])


def config_for(site: Path) -> Path:
    config = site / "config.toml"
    config.write_text('[company]\nname = "ベンチ株式会社"\n[mailbox]\n'
                      'address = "jobs@example.co.jp"\n[store]\npath = "data"\n',
                      encoding="utf-8")
    return config


def measure(n: int, work: Path) -> list[Figure]:
    site = work / f"site-{n}"
    site.mkdir()
    config, sheet = config_for(site), site / "pool.csv"
    write_csv(sheet, n)
    env = dict(os.environ)
    mailflow = [sys.executable, "-m", "mailflow"]
    figures: list[Figure] = []
    bare_s, _ = run([sys.executable, "-c", BARE_CSV, str(sheet)], env)
    seconds, rss = run([*mailflow, "import", str(sheet), "-c", str(config)], env)
    figures.append(Figure("pool_commands", f"`import` {n:,} rows, rows/s", n / seconds, "rows/s",
                          "stdlib csv read", n / bare_s, None, 5000, ">=", "value"))
    figures.append(Figure("pool_commands", f"`import` {n:,} rows, peak RSS", rss, "MB"))
    store = site / "data" / "mailflow.sqlite3"
    bare_s, bare_rss = run([sys.executable, "-c", BARE_READ, str(store)], env)
    for command in (["candidates", "--json"], ["report", "--json"],
                    ["export", "--anonymized", "--json"]):
        seconds, rss = run([*mailflow, *command, "-c", str(config)], env)
        name = " ".join(command)
        target = (0.67, ">=", "ratio") if command[0] == "candidates" else (None, ">=", "ratio")
        figures.append(Figure("pool_commands", f"`{name}` {n:,} candidates, s", seconds, "s",
                              "bare read + JSON", bare_s, bare_s / seconds, *target))
        figures.append(Figure("pool_commands", f"`{name}` {n:,} candidates, peak RSS", rss, "MB",
                              "bare read + JSON", bare_rss, None,
                              100 if command[0] == "candidates" else None, "<=", "value"))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = [f for n in map(int, args.sizes.split(",")) for f in measure(n, Path(tmp))]
    print("| figure | value | baseline | ratio |\n|---|---:|---:|---:|")
    for f in figures:
        base = "–" if f.baseline_value is None else f"{f.baseline_value:,.2f}"
        ratio = "–" if f.ratio is None else f"{f.ratio:.2f}x"
        print(f"| {f.what} | {f.value:,.2f} {f.unit} | {base} | {ratio} |")
    emit(*figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
