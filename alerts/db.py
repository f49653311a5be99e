"""PostgreSQL access: connections and the schema migrations applied at start.

The database is the system of record (alerts, outbox, acknowledgements, events): every worker and
the webhook server share it, so any of them may die at any time without losing or doubling work.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import psycopg
from psycopg.rows import dict_row

from alerts import store
from alerts.store import Conn
from anxin.core.logs import get_logger

log = get_logger(__name__)

__all__ = ["Conn", "Database", "migrate", "migrations"]
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
    """Apply the migrations not yet applied (one migrator at a time); returns the version."""
    with db.connect() as conn:
        with conn.transaction():
            done = store.applied_versions(conn, _LOCK_KEY)
            for version, name, sql in migrations():
                if version not in done:
                    store.apply_migration(conn, version, name, sql)
                    log.info("applied migration %s", name)
        return store.schema_version(conn)
