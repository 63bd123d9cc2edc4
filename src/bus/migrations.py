"""Versioned SQL migrations, applied by the application at start-up.

Each component (the runtime, each projection, each actor with state) owns an ordered list of
migrations. Applying is idempotent: a migration runs once, inside a transaction with its
bookkeeping row, under an advisory lock so that processes starting together do not race.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import asyncpg

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""
_LOCK_KEY = 0x5249534B  # "RISK"


class MigrationError(Exception):
    """A migration that cannot be applied, or one that changed after it was applied."""


@dataclass(frozen=True)
class Migration:
    """One step of a component's schema: its version, a name and the SQL."""

    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def package_migrations(component: str, package: str, folder: str = "sql") -> list[Migration]:
    """Migrations stored as `NNNN_name.sql` files in a package folder, in version order."""
    out = []
    for entry in sorted(resources.files(package).joinpath(folder).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            out.append(Migration(component, int(number), rest.removesuffix(".sql"), entry.read_text()))
    return out


async def apply_migrations(conn: asyncpg.Connection, migrations: Iterable[Migration]) -> list[Migration]:
    """Apply the migrations not yet applied; returns those it ran. Refuses edited migrations."""
    pending: list[Migration] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(_BOOKKEEPING)
        for m in sorted(migrations, key=lambda m: (m.component, m.version)):
            row = await conn.fetchrow(
                "SELECT checksum FROM schema_migrations WHERE component = $1 AND version = $2", m.component, m.version
            )
            if row is not None:
                if row["checksum"] != m.checksum:
                    raise MigrationError(
                        f"migration {m.component} v{m.version} ({m.name}) changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)",
                m.component,
                m.version,
                m.name,
                m.checksum,
            )
            pending.append(m)
    return pending


async def applied(conn: asyncpg.Connection, component: str) -> Sequence[int]:
    """Versions of `component` applied in this database."""
    rows = await conn.fetch("SELECT version FROM schema_migrations WHERE component = $1 ORDER BY version", component)
    return [r["version"] for r in rows]
