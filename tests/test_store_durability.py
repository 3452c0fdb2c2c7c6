"""Writes survive `kill -9`, and one process writes a store at a time.

A child process writes in a loop — single puts and multi-document transactions — and reports each
commit on stdout after it returns. The parent kills it with SIGKILL at random moments, then
reopens the store: everything reported is there, at most the one write in flight beyond it, and no
transaction is half applied.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailflow.errors import StoreLocked
from mailflow.store import ENGINES, Store, open_store

REPO = Path(__file__).resolve().parents[1]
KILLS = 30
BATCH = 3  # messages per transaction

WRITER = """
import sys
from pathlib import Path
from mailflow.store import open_store

store = open_store(Path(sys.argv[1]), sys.argv[2])
i, b = store.count("candidates"), store.count("checkpoints")
print("ready", flush=True)
while True:
    i += 1
    doc = {"seq": i, "name": "候補者 " + str(i), "emails": [f"c{i}@example.jp"]}
    store.put("candidates", f"c{i:06d}", doc)
    print("put", i, flush=True)
    if i % 4 == 0:
        b += 1
        with store.transaction():
            for j in range(BATCH):
                store.put("messages", f"b{b:05d}-{j}", {"batch": b, "message_key": f"k{b}-{j}"})
            store.append("events", {"type": "batch", "batch": b})
            store.put("checkpoints", f"batch{b:05d}", {"batch": b})
        print("tx", b, flush=True)
""".replace("BATCH", str(BATCH))

HOLDER = """
import sys, time
from pathlib import Path
from mailflow.store import open_store

store = open_store(Path(sys.argv[1]), sys.argv[2])
print("ready", flush=True)
time.sleep(60)
"""


def spawn(snippet: str, data_dir: Path, engine: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", snippet, str(data_dir), engine],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=REPO,
    )


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"child did not start: {line!r} {err}")


def kill9(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return out


def check_store(store: Store, reported_puts: int, reported_txs: int) -> tuple[int, int]:
    """Check what survived; returns the durable (puts, transactions) found."""
    puts = store.count("candidates")
    assert reported_puts <= puts <= reported_puts + 1, (reported_puts, puts)
    for i in range(1, puts + 1):  # no holes: every earlier write is there, whole
        doc = store.get("candidates", f"c{i:06d}")
        assert doc is not None and doc["seq"] == i, (i, doc)
        assert [d["seq"] for d in store.find("candidates", "emails", f"c{i}@example.jp")] == [i]
    txs = store.count("checkpoints")
    assert reported_txs <= txs <= reported_txs + 1, (reported_txs, txs)
    assert store.count("messages") == BATCH * txs  # all of a transaction or none of it
    assert [(n, d["batch"]) for n, d in store.log("events")] == [(b, b) for b in range(1, txs + 1)]
    for b in range(1, txs + 1):
        assert store.get("checkpoints", f"batch{b:05d}") == {"batch": b}
        assert len(store.find("messages", "message_key", f"k{b}-{BATCH - 1}")) == 1
    return puts, txs


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_writes_survive_kill_9(engine: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    reported_puts = reported_txs = 0
    for round_ in range(KILLS):
        proc = spawn(WRITER, data_dir, engine)
        wait_ready(proc)
        time.sleep(rng.uniform(0.0, 0.12))
        for line in kill9(proc).split("\n")[:-1]:  # a line cut by the kill reports nothing
            what, _, number = line.partition(" ")
            if what == "put":
                reported_puts = max(reported_puts, int(number))
            elif what == "tx":
                reported_txs = max(reported_txs, int(number))
        if engine == "tinydb":
            json.loads((data_dir / "mailflow.json").read_text(encoding="utf-8"))
        store = open_store(data_dir, engine)  # also proves the lock died with the child
        try:
            # What a reopened store holds is durable from now on, reported or not.
            reported_puts, reported_txs = check_store(store, reported_puts, reported_txs)
        except AssertionError as e:
            raise AssertionError(f"seed {seed}, round {round_}: {e}") from e
        finally:
            store.close()
    assert reported_puts > KILLS, "the child barely wrote: the test proves little"
    assert reported_txs > 0


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_second_writer_is_refused_until_the_first_dies(engine: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    holder = spawn(HOLDER, data_dir, engine)
    try:
        wait_ready(holder)
        with pytest.raises(StoreLocked, match=rf"being written by pid {holder.pid}\b"):
            open_store(data_dir, engine)
        second = spawn(HOLDER, data_dir, engine)
        _, err = second.communicate(timeout=30)
        assert second.returncode != 0
        assert f"StoreLocked: store {data_dir} is being written by pid {holder.pid}" in err
        assert "send the command through the running daemon" in err
        reader = open_store(data_dir, engine, read_only=True)  # readers are welcome
        reader.close()
    finally:
        if holder.poll() is None:
            kill9(holder)
    store = open_store(data_dir, engine)
    store.close()


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_the_same_process_cannot_open_two_writers(engine: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = open_store(data_dir, engine)
    try:
        with pytest.raises(StoreLocked, match=rf"being written by pid {os.getpid()}\b"):
            open_store(data_dir, engine)
    finally:
        first.close()
    open_store(data_dir, engine).close()
