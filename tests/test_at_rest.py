"""Issue 18 part 7: personal data safe at rest — with umask 022, a data directory that already
exists with mode 0755 is refused at start with the fix named; in a 0700 one, every file the
daemon and a command run without it write (the store and its WAL and SHM, attachments, the
lock, the control socket) is owner-only. The real `mailflow run` against Dovecot, both engines.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from harness import MAILFLOW, PASSWORD_ENV, env_for, wait_until, write_config
from servers import Dovecot, ImapAccount, free_port
from test_erase import EMAIL, application

from mailflow.store import open_store


def config_for(tmp_path: Path, account: ImapAccount, engine: str) -> Path:
    port = free_port()
    config = write_config(tmp_path, account, extra=(
        f'[web]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n'))
    config.write_text(config.read_text(encoding="utf-8").replace(
        '[store]\npath = "data"', f'[store]\npath = "data"\nengine = "{engine}"'),
        encoding="utf-8")
    return config


def modes(data_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(data_dir)): stat.S_IMODE(p.lstat().st_mode)
            for p in [data_dir, *data_dir.rglob("*")]}


def test_a_data_directory_others_can_read_is_refused_with_the_fix_named(
        tmp_path: Path, imap_account: ImapAccount) -> None:
    config = config_for(tmp_path, imap_account, "sqlite")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.chmod(data_dir, 0o755)
    done = subprocess.run([*MAILFLOW, "run", "-c", str(config)], env=env_for(imap_account),
                          capture_output=True, text=True, timeout=60, umask=0o022)
    assert done.returncode == 2, done.stderr
    assert f"chmod 700 {data_dir}" in done.stderr and "open to other users" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(data_dir.iterdir()) == []  # nothing written into it
    check = subprocess.run([*MAILFLOW, "check", "-c", str(config)], env=env_for(imap_account),
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 2 and f"{data_dir}: the data directory is open" in check.stderr
    local = subprocess.run([*MAILFLOW, "erase", EMAIL, "--reason", "x", "-c", str(config)],
                           env=env_for(imap_account), capture_output=True, text=True,
                           timeout=60, umask=0o022)
    assert local.returncode == 2 and f"chmod 700 {data_dir}" in local.stderr


@pytest.mark.parametrize("engine", ["sqlite", "tinydb"])
def test_with_umask_022_every_file_mailflow_writes_is_owner_only(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    config = config_for(tmp_path, imap_account, engine)
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)  # there before, as an admin made it: accepted
    log = (tmp_path / "daemon.log").open("wb")
    process = subprocess.Popen([*MAILFLOW, "run", "-c", str(config)], env=env_for(imap_account),
                               stdout=log, stderr=log, umask=0o022)
    try:
        wait_until(lambda: b"inbox: watching INBOX" in (tmp_path / "daemon.log").read_bytes(),
                   what="the daemon watching INBOX")
        dovecot.append(imap_account.username, "INBOX", application(imap_account.address))

        def taken_in() -> bool:
            try:
                store = open_store(data_dir, engine, read_only=True)
            except Exception:
                return False
            try:
                return bool(store.find("candidates", "emails", EMAIL))
            finally:
                store.close()

        wait_until(taken_in, what="the application taken in")
        wait_until(lambda: (data_dir / "control.sock").exists(), what="the control socket")
        running = modes(data_dir)
    finally:
        process.terminate()
        process.wait(30)
        log.close()
    assert process.returncode == 0, (tmp_path / "daemon.log").read_text()
    assert any(name.startswith("attachments/") for name in running)
    if engine == "sqlite":
        assert {"mailflow.sqlite3-wal", "mailflow.sqlite3-shm"} <= set(running)
    loose = {name: f"{mode:o}" for name, mode in running.items()
             if mode & 0o077 or (mode != 0o700 and (data_dir / name).is_dir())}
    assert loose == {}, loose
    # a write command run without the daemon, under the same umask
    done = subprocess.run([*MAILFLOW, "erase", EMAIL, "--reason", "test", "-c", str(config)],
                          env=env_for(imap_account), capture_output=True, text=True,
                          timeout=60, umask=0o022)
    assert done.returncode == 0, done.stderr
    after = {name: f"{mode:o}" for name, mode in modes(data_dir).items() if mode & 0o077}
    assert after == {}, after
