"""SQLite storage via sqlite-utils: one Database, numbered migrations applied at start.

Migrations live in `bot/migrations/mNNNN_<name>.py`, each with `VERSION: int` and `apply(db)`.
They run in order, once each, recorded in `schema_version`. Everything important lives here, so a
restart (even `kill -9`) loses nothing.
"""
from __future__ import annotations

import importlib
import pkgutil
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import sqlite_utils

import bot.migrations as migrations_pkg


@dataclass(frozen=True)
class Migration:
    """One numbered schema step."""

    version: int
    name: str
    apply: Callable[[sqlite_utils.Database], None]


def discover_migrations() -> list[Migration]:
    """All migrations shipped in `bot/migrations`, ordered by version; duplicate versions are an error."""
    found: dict[int, Migration] = {}
    for info in pkgutil.iter_modules(migrations_pkg.__path__):
        if not info.name.startswith("m"):
            continue
        module = importlib.import_module(f"bot.migrations.{info.name}")
        version = int(module.VERSION)
        if version in found:
            raise RuntimeError(f"two migrations share version {version}: {found[version].name}, {info.name}")
        found[version] = Migration(version, info.name, module.apply)
    return [found[v] for v in sorted(found)]


class Store:
    """The helpdesk database. `db` is the sqlite-utils Database; use `transaction()` for atomic steps."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit unless we BEGIN explicitly, so our transactions are ours.
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA busy_timeout = 30000")
        if self.path != ":memory:":
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
        self.migrate()

    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the versions applied now."""
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
        )
        done = {row[0] for row in self.db.execute("SELECT version FROM schema_version").fetchall()}
        applied = []
        for migration in discover_migrations():
            if migration.version in done:
                continue
            with self.transaction():
                migration.apply(self.db)
                self.db.execute(
                    "INSERT INTO schema_version (version, name) VALUES (?, ?)", [migration.version, migration.name]
                )
            applied.append(migration.version)
        return applied

    @property
    def schema_version(self) -> int:
        """The highest applied migration version."""
        row = self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error). Nested calls join the outer transaction.

        Inside, write with `db.execute` (raw SQL): sqlite-utils' table helpers commit on their own.
        """
        conn = self.db.conn
        if conn.in_transaction:
            yield self.db
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        # A sqlite-utils table helper inside may already have committed (it wraps itself in `with conn:`).
        if conn.in_transaction:
            conn.execute("COMMIT")

    def meta_get(self, key: str) -> str | None:
        """A value from the key/value `meta` table."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def meta_set(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    def close(self) -> None:
        self.db.conn.close()
