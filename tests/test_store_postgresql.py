"""What the PostgreSQL engine adds to the contract (the contract itself:
test_store_conformance.py): one writer per store, versioned migrations, a dropped connection
replaced, no password in messages, and the whole daemon on it against Dovecot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from harness import MAILFLOW, PASSWORD_ENV, env_for, wait_until, write_config
from postgres_server import Postgres
from servers import Dovecot, ImapAccount, free_port

from mailflow.errors import StoreError
from mailflow.store import base, open_store
from mailflow.store.postgresql import PostgresStore
from mailflow.store.postgresql_schema import MIGRATIONS

DSN_ENV = "MAILFLOW_STORE_DSN"


def test_a_second_writer_is_refused_even_from_another_data_dir(postgres: Postgres,
                                                               tmp_path: Path) -> None:
    dsn = postgres.schema()
    first = open_store(tmp_path / "a", "postgresql", dsn=dsn)
    try:
        with pytest.raises(StoreError, match="another writer"):
            open_store(tmp_path / "b", "postgresql", dsn=dsn)
        other = open_store(tmp_path / "c", "postgresql", dsn=postgres.schema())  # its own schema
        other.close()
    finally:
        first.close()
    open_store(tmp_path / "b", "postgresql", dsn=dsn).close()  # released on close


def test_the_schema_version_is_recorded_and_a_changed_index_is_rebuilt(
        postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = postgres.schema()
    with open_store(tmp_path, "postgresql", dsn=dsn) as store:
        store.put("candidates", "c1", {"name": "A", "emails": ["a@x.jp"], "source": "doda"})
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT version FROM mf_schema").fetchone() == (MIGRATIONS[-1][0],)
    monkeypatch.setitem(base.INDEXES, "candidates", (*base.INDEXES["candidates"], "source"))
    with open_store(tmp_path, "postgresql", dsn=dsn) as store:
        assert [d["name"] for d in store.find("candidates", "source", "doda")] == ["A"]


def test_a_connection_the_server_dropped_is_replaced(postgres: Postgres, tmp_path: Path) -> None:
    dsn = postgres.schema()
    with open_store(tmp_path, "postgresql", dsn=dsn) as store:
        store.put("candidates", "c1", {"name": "A"})
        with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid <> "
                "pg_backend_pid() AND usename = 'mailflow_app' AND query NOT ILIKE "
                "'%pg_try_advisory_lock%'").fetchone()
        assert killed is not None and killed[0] >= 1
        assert store.get("candidates", "c1") == {"name": "A"}
        store.put("candidates", "c2", {"name": "B"})
        assert store.count("candidates") == 2


def test_messages_name_the_server_never_the_password(postgres: Postgres) -> None:
    dsn = f"host=127.0.0.1 port={postgres.port} user=nobody-here password=s3cret-pw dbname=x"
    with pytest.raises(StoreError) as raised:
        PostgresStore(dsn)
    assert f"postgresql://127.0.0.1:{postgres.port}/x" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)


def _config(tmp_path: Path, account: ImapAccount) -> Path:
    path = write_config(tmp_path, account, extra=f'[web]\nlisten = "127.0.0.1:{free_port()}"\n')
    text = path.read_text(encoding="utf-8").replace(
        '[store]\npath = "data"\n',
        f'[store]\npath = "data"\nengine = "postgresql"\ndsn_env = "{DSN_ENV}"\n')
    path.write_text(text, encoding="utf-8")
    return path


def _listed(config: Path, env: dict[str, str]) -> list[dict[str, object]]:
    done = subprocess.run([*MAILFLOW, "candidates", "--json", "-c", str(config)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def _application(n: int, to: str) -> bytes:
    return (f"From: =?UTF-8?B?5bGx55Sw?= <applicant{n}@example.net>\r\nTo: {to}\r\n"
            f"Subject: =?UTF-8?B?5b+c5Yuf?= {n}\r\nMessage-ID: <pg-app-{n}@example.net>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"応募いたします。営業職を希望します。{n}\r\n").encode()


def test_the_daemon_on_postgresql_takes_mail_in_once_across_kill_9(
        postgres: Postgres, tmp_path: Path, dovecot: Dovecot,
        imap_account: ImapAccount) -> None:
    config = _config(tmp_path, imap_account)
    env = {**env_for(imap_account), DSN_ENV: postgres.schema()}
    missing = subprocess.run([*MAILFLOW, "check", "-c", str(config)], capture_output=True,
                             text=True, env={k: v for k, v in env.items() if k != DSN_ENV})
    assert missing.returncode == 2 and DSN_ENV in missing.stderr
    log = (tmp_path / "daemon.log").open("ab")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "mailflow", "run", "-c", str(config)],
                                env=env, stdout=log, stderr=log)

    def watching(starts: int) -> bool:  # mail before the first login counts as history
        text = (tmp_path / "daemon.log").read_text(encoding="utf-8", errors="replace")
        return text.count("inbox: watching INBOX") >= starts

    daemon = start()
    try:
        wait_until(lambda: watching(1), timeout=60, what="the daemon to watch INBOX")
        for n in range(3):
            dovecot.append(imap_account.username, "INBOX", _application(n, imap_account.address))
        wait_until(lambda: len(_listed(config, env)) == 3, timeout=60, what="three candidates")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(30)
        for n in range(3, 6):
            dovecot.append(imap_account.username, "INBOX", _application(n, imap_account.address))
        daemon = start()
        wait_until(lambda: watching(2), timeout=60, what="the daemon to watch INBOX again")
        wait_until(lambda: len(_listed(config, env)) == 6, timeout=60, what="six candidates")
        listed = _listed(config, env)
        assert sorted(c["emails"][0] for c in listed) == [  # type: ignore[index]
            f"applicant{n}@example.net" for n in range(6)]
        assert all(len(c["applications"]) == 1 for c in listed)  # type: ignore[arg-type]
    finally:
        daemon.terminate()
        daemon.wait(30)
        log.close()
    assert not os.path.exists(tmp_path / "data" / "mailflow.sqlite3")  # the documents: in PG
    assert PASSWORD_ENV in env
