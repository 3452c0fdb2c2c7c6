"""Start-up: `mailflow --help` and `mailflow check` on a fresh `mailflow init` site, beside
`python -c pass` (the interpreter's own start) in the same run, interleaved, median of `--runs`.
Target (issue 22): both under 150 ms.

    python benchmarks/startup.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Figure, emit  # noqa: E402

TARGET_MS = 150.0
SECRETS = {"MAILFLOW_IMAP_PASSWORD": "x", "MAILFLOW_SMTP_PASSWORD": "x",
           "MAILFLOW_RELAY_SECRET": "x" * 32, "MAILFLOW_LEDGER_KEY": "x" * 32}


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    mailflow = [sys.executable, "-m", "mailflow"]
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        env = {**os.environ, **SECRETS}
        subprocess.run([*mailflow, "init", str(site), "--company", "ベンチ株式会社"], env=env,
                       stdout=subprocess.DEVNULL, check=True)
        commands = {"python -c pass": [sys.executable, "-c", "pass"],
                    "mailflow --help": [*mailflow, "--help"],
                    "mailflow check": [*mailflow, "check", "-c", str(site / "config.toml")]}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(timed(argv, env))
    bare = statistics.median(times["python -c pass"])
    print("| command | median ms | min ms | max ms |\n|---|---:|---:|---:|")
    for name, values in times.items():
        print(f"| `{name}` | {statistics.median(values):.0f} | {min(values):.0f} | "
              f"{max(values):.0f} |")
    emit(*(Figure("startup", f"`{name}`", statistics.median(times[name]), "ms",
                  "python -c pass", bare, None, TARGET_MS, "<=", "value")
           for name in ("mailflow --help", "mailflow check")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
