"""PostgreSQL access: connections and the schema migrations applied at start.

The database is the system of record (alerts, outbox, acknowledgements, events): every worker and
the webhook server share it, so any of them may die at any time without losing or doubling work.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row

from anxin.core.logs import get_logger

log = get_logger(__name__)

Conn = psycopg.Connection[dict[str, Any]]
_MIGRATION = re.compile(r"^(\d+)_[A-Za-z0-9_]+\.sql$")
_LOCK_KEY = 0x616E78696E  # advisory lock: one migrator at a time across workers


class Database:
    """A DSN and short transactions on fresh connections (cheap locally; a pool can come later)."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    @contextmanager
    def connect(self) -> Iterator[Conn]:
        with psycopg.connect(self.dsn, row_factory=dict_row) as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        """One transaction: committed on leaving, rolled back on an exception."""
        with self.connect() as conn, conn.transaction():
            yield conn


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration shipped in ``alerts/migrations``."""
    out = []
    for entry in resources.files("alerts.migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            out.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def migrate(db: Database) -> int:
    """Apply the migrations not yet applied, each in its own transaction; returns the version."""
    with db.connect() as conn:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute(
                "create table if not exists schema_version ("
                " version int primary key, name text not null,"
                " applied_at timestamptz not null default now())"
            )
            done = {
                int(r["version"])
                for r in conn.execute("select version from schema_version").fetchall()
            }
            for version, name, sql in migrations():
                if version in done:
                    continue
                conn.execute(sql.encode())
                conn.execute(
                    "insert into schema_version (version, name) values (%s, %s)", (version, name)
                )
                log.info("applied migration %s", name)
        row = conn.execute("select coalesce(max(version), 0) as v from schema_version").fetchone()
    return int(row["v"]) if row else 0
