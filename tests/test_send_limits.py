"""`[followups] per_hour`: counted per minute, never more than per_hour in any 60 minutes, and
the count kept stays small however much is sent (a tick's cost follows what it sends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailflow.clock import iso
from mailflow.followups.window import RATE, Limits, Window
from mailflow.settings.config import load_config
from mailflow.store.sqlite import SqliteStore

T0 = datetime(2025, 6, 2, 1, 0, 30, tzinfo=UTC)  # 10:00:30 in Tokyo, a Monday


def limits(tmp_path: Path, per_hour: int) -> tuple[Limits, SqliteStore]:
    (tmp_path / "config.toml").write_text(
        f'[mailbox]\naddress = "jobs@example.co.jp"\n[store]\npath = "data"\n'
        f"[followups]\nper_hour = {per_hour}\n", encoding="utf-8")
    config = load_config(tmp_path / "config.toml")
    (tmp_path / "data").mkdir()
    store = SqliteStore(tmp_path / "data" / "mailflow.sqlite3")
    return Limits(store, config, Window.from_config(config)), store


def test_full_hour_frees_when_its_oldest_minute_leaves(tmp_path: Path) -> None:
    rate, store = limits(tmp_path, 3)
    with store.transaction():
        for at in (T0, T0 + timedelta(seconds=20), T0 + timedelta(minutes=30)):
            assert rate.hour_full(at) is None
            rate.count_mail(at)
    full = rate.hour_full(T0 + timedelta(minutes=40))
    assert full == datetime(2025, 6, 2, 2, 1, tzinfo=UTC)  # the 01:00 minute leaves at 02:01
    assert rate.hour_full(full - timedelta(seconds=1)) is not None
    assert rate.hour_full(full) is None


def test_the_count_kept_stays_small(tmp_path: Path) -> None:
    rate, store = limits(tmp_path, 1_000_000)
    with store.transaction():
        for n in range(3000):
            rate.count_mail(T0 + timedelta(seconds=3 * n))  # 2.5 hours of mail
    kept = store.get("settings", RATE)
    assert kept is not None and len(kept["minutes"]) <= 61
    # the last mail at 03:30:27: its minute holds 10, the 60 before it 20 each
    assert sum(kept["minutes"].values()) == 60 * 20 + 10


def test_the_earlier_form_still_counts(tmp_path: Path) -> None:
    rate, store = limits(tmp_path, 2)
    with store.transaction():
        store.put("settings", RATE, {"sent": [iso(T0), iso(T0 + timedelta(minutes=5))]})
    assert rate.hour_full(T0 + timedelta(minutes=10)) == datetime(2025, 6, 2, 2, 1, tzinfo=UTC)
