"""A throw-away PostgreSQL cluster on 127.0.0.1 for the tests (Debian's `postgresql` package):
`initdb` into a temporary directory, `pg_ctl start` on a free port, trust authentication on
loopback only, stopped and removed at the end. As root the server runs as the `postgres` user
(PostgreSQL refuses to run as root). `schema()` gives each test a fresh schema of its own
(through the connection string's `search_path`), which is much cheaper than a database."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from servers import free_port

_COUNTER = itertools.count(1)
ROLE = "mailflow_app"  # the stores' role: not a superuser, so row-level security holds it


def binaries() -> Path:
    """The newest installed server's bin directory (Debian keeps them per version)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    return Path(pg_ctl).parent


class Postgres:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mailflow-pg-"))
        self.port = free_port()
        self.bin = binaries()
        self._as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *argv: str) -> None:
        subprocess.run([*self._as, *argv], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)

    def start(self) -> Postgres:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "mailflow",
                  "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=200 -c shared_buffers=32MB "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")  # throw-away
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
            conn.execute(f"GRANT pg_checkpoint TO {ROLE}")  # scrub() writes its checkpoint
        return self

    def dsn(self, database: str = "postgres", schema: str | None = None,
            user: str = "mailflow") -> str:
        """As the superuser `mailflow` by default (administration); stores connect as `ROLE`."""
        dsn = f"host=127.0.0.1 port={self.port} user={user} dbname={database}"
        return dsn + (f" options='-c search_path={schema}'" if schema else "")

    def schema(self) -> str:
        """A connection string, as the ordinary role `ROLE`, to a new, empty schema it owns."""
        name = f"t{next(_COUNTER)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name} AUTHORIZATION {ROLE}")
        return self.dsn(schema=name, user=ROLE)

    def stop(self) -> None:
        try:
            if self.data.exists():
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                          "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
