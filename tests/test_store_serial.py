"""The daemon's shared store (`store/serial.py`): a long log is read a page at a time."""

from __future__ import annotations

import threading
from pathlib import Path

from mailflow.store import open_store
from mailflow.store.serial import LOG_PAGE, SerialStore


def test_a_long_log_comes_whole_in_order_and_the_lock_is_free_between_pages(
        tmp_path: Path) -> None:
    store = SerialStore(open_store(tmp_path / "data"))
    try:
        with store.transaction():
            for n in range(2 * LOG_PAGE + 7):
                store.append("events", {"n": n})
        entries = store.log("events", after=3)
        first = next(entries)
        writer = threading.Thread(target=store.append, args=("events", {"n": "late"}))
        writer.start()
        writer.join(5)
        assert not writer.is_alive()  # the reader holds no lock while its caller works
        rest = list(entries)
        seqs = [first[0]] + [seq for seq, _doc in rest]
        assert seqs == list(range(4, 2 * LOG_PAGE + 9))
        assert [doc["n"] for _seq, doc in rest][-2:] == [2 * LOG_PAGE + 6, "late"]
    finally:
        store.close()
