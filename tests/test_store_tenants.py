"""Tenants on the PostgreSQL engine: one schema, several companies, each seeing only its rows.
Row-level security holds a plain SQL connection back too, not only the store's own queries."""

from __future__ import annotations

import psycopg
import pytest
from postgres_server import Postgres

from mailflow.errors import StoreError
from mailflow.store import base
from mailflow.store.postgresql import PostgresStore
from mailflow.store.postgresql_schema import MIGRATIONS, lease_key, signature


def _as(dsn: str, company: str) -> psycopg.Connection[tuple[object, ...]]:
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SELECT set_config('mailflow.company', %s, false)", (company,))
    return conn


def test_each_company_sees_and_writes_only_its_own_rows(postgres: Postgres) -> None:
    dsn = postgres.schema()
    with PostgresStore(dsn, company="acme") as a, PostgresStore(dsn, company="beta") as b:
        a.put("candidates", "c1", {"name": "Acme Taro", "emails": ["taro@acme.jp"]})
        b.put("candidates", "c1", {"name": "Beta Hanako", "emails": ["hanako@beta.jp"]})
        b.append("events", {"candidate_id": "c1", "type": "applied"})
        assert a.get("candidates", "c1") == {"name": "Acme Taro", "emails": ["taro@acme.jp"]}
        assert a.find("candidates", "emails", "hanako@beta.jp") == []
        assert a.count("events") == 0 and b.count("events") == 1
        assert [k for k, _ in a.items("candidates")] == ["c1"]
    with _as(dsn, "acme") as conn:  # raw SQL, no WHERE: still only acme's rows
        docs = conn.execute("SELECT company, doc FROM mf_docs").fetchall()
        index = conn.execute("SELECT DISTINCT company FROM mf_idx").fetchall()
        assert {c for c, _ in docs} == {"acme"} and index == [("acme",)]
        assert "Beta" not in repr(docs)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # a write for beta: refused
            conn.execute("INSERT INTO mf_docs(company, kind, key, doc) "
                         "VALUES ('beta', 'candidates', 'c9', '{}')")
    with psycopg.connect(dsn) as unset, pytest.raises(psycopg.errors.UndefinedObject):
        unset.execute("SELECT count(*) FROM mf_docs")  # no company set: nothing, an error


def test_moving_a_row_to_another_company_is_refused(postgres: Postgres) -> None:
    dsn = postgres.schema()
    with PostgresStore(dsn, company="acme") as a:
        a.put("candidates", "c1", {"name": "A"})
    with _as(dsn, "acme") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE mf_docs SET company = 'beta'")  # WITH CHECK


def test_one_writer_per_company_and_holder(postgres: Postgres) -> None:
    dsn = postgres.schema()
    assert lease_key("acme", "writer") != lease_key("beta", "writer")
    with PostgresStore(dsn, company="acme"):
        with pytest.raises(StoreError, match="another writer"):
            PostgresStore(dsn, company="acme")
        PostgresStore(dsn, company="beta").close()  # another company: its own writer
        PostgresStore(dsn, company="acme", holder="mailbox-2").close()


def test_a_superuser_is_refused(postgres: Postgres) -> None:
    with pytest.raises(StoreError, match="row-level security"):
        PostgresStore(postgres.dsn(), read_only=False)


def test_a_store_from_before_tenants_becomes_its_first_writers_company(
        postgres: Postgres) -> None:
    dsn = postgres.schema()
    with psycopg.connect(dsn, autocommit=True) as conn:  # schema version 1, one row in it
        conn.execute(MIGRATIONS[0][1])
        conn.execute("CREATE TABLE mf_schema (version integer NOT NULL, indexes text NOT NULL)")
        conn.execute("INSERT INTO mf_schema VALUES (1, %s)", (signature(),))
        conn.execute("INSERT INTO mf_docs VALUES ('candidates', 'c1', '{\"name\": \"Old\"}')")
    with PostgresStore(dsn, company="acme") as acme:
        assert acme.get("candidates", "c1") == {"name": "Old"}
    with PostgresStore(dsn, company="beta") as beta:
        assert beta.get("candidates", "c1") is None


def test_a_changed_index_is_rebuilt_for_each_company(postgres: Postgres,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = postgres.schema()
    for company in ("acme", "beta"):
        with PostgresStore(dsn, company=company) as store:
            store.put("candidates", "c1", {"name": company, "source": "doda"})
    monkeypatch.setitem(base.INDEXES, "candidates", (*base.INDEXES["candidates"], "source"))
    for company in ("acme", "beta"):  # beta's rows too, though acme rebuilt first
        with PostgresStore(dsn, company=company) as store:
            assert [d["name"] for d in store.find("candidates", "source", "doda")] == [company]
