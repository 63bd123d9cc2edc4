"""Versioned SQL migrations (bus.migrations) on a real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from bus.migrations import Migration, MigrationError, applied, apply_migrations, package_migrations
from bus.runtime.runner import RUNTIME_MIGRATIONS

pytestmark = pytest.mark.integration

WIDGETS = [
    Migration("widgets", 1, "create", "CREATE TABLE widgets (id int PRIMARY KEY)"),
    Migration("widgets", 2, "add_name", "ALTER TABLE widgets ADD COLUMN name text NOT NULL DEFAULT ''"),
]
GADGETS = [Migration("gadgets", 1, "create", "CREATE TABLE gadgets (id int PRIMARY KEY)")]


async def columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position", table
    )
    return [r["column_name"] for r in rows]


async def test_applying_twice_is_idempotent(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        ran = await apply_migrations(conn, [*GADGETS, *reversed(WIDGETS)])  # order given does not matter
        assert [(m.component, m.version) for m in ran] == [("gadgets", 1), ("widgets", 1), ("widgets", 2)]
        assert await apply_migrations(conn, [*GADGETS, *WIDGETS]) == []
        assert await applied(conn, "widgets") == [1, 2]
        assert await applied(conn, "gadgets") == [1]
        assert await columns(conn, "widgets") == ["id", "name"]
        rows = await conn.fetch("SELECT component, version, name, checksum FROM schema_migrations ORDER BY 1, 2")
        assert [(r["component"], r["version"], r["name"]) for r in rows] == [
            ("gadgets", 1, "create"),
            ("widgets", 1, "create"),
            ("widgets", 2, "add_name"),
        ]
        assert rows[1]["checksum"] == WIDGETS[0].checksum
        # a later migration is applied on its own
        third = Migration("widgets", 3, "add_size", "ALTER TABLE widgets ADD COLUMN size int")
        assert await apply_migrations(conn, [*WIDGETS, third]) == [third]
        assert await columns(conn, "widgets") == ["id", "name", "size"]
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn, WIDGETS)
        edited = Migration("widgets", 2, "add_name", "ALTER TABLE widgets ADD COLUMN name varchar(10)")
        later = Migration("widgets", 3, "add_size", "ALTER TABLE widgets ADD COLUMN size int")
        with pytest.raises(MigrationError, match=r"widgets v2 \(add_name\) changed after it was applied"):
            await apply_migrations(conn, [WIDGETS[0], edited, later])
        # nothing of that call was applied, not even the new migration after it
        assert await applied(conn, "widgets") == [1, 2]
        assert await columns(conn, "widgets") == ["id", "name"]
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_behind(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn, GADGETS)
        broken = Migration("zz-gizmos", 1, "broken", "CREATE TABLE gizmos (id int); SELECT no_such_function()")
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await apply_migrations(conn, [*GADGETS, *WIDGETS, broken])
        # one transaction: neither the broken migration nor those applied before it in the call remain
        assert await conn.fetchval("SELECT to_regclass('gizmos')") is None
        assert await conn.fetchval("SELECT to_regclass('widgets')") is None
        assert await applied(conn, "zz-gizmos") == []
        assert await applied(conn, "widgets") == []
        assert await applied(conn, "gadgets") == [1]
    finally:
        await conn.close()


async def test_concurrent_apply_from_several_connections(database_url: str) -> None:
    conns = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        migrations = [*RUNTIME_MIGRATIONS, *WIDGETS, *GADGETS]
        results = await asyncio.gather(*(apply_migrations(c, migrations) for c in conns))
        ran = sorted((m.component, m.version) for r in results for m in r)
        assert ran == sorted((m.component, m.version) for m in migrations)  # each exactly once
        assert sum(1 for r in results if r) == 1  # the first to take the lock did all of it
        assert await applied(conns[0], "runtime") == [m.version for m in RUNTIME_MIGRATIONS]
        assert await conns[1].fetchval("SELECT count(*) FROM schema_migrations") == len(migrations)
    finally:
        for c in conns:
            await c.close()


def test_package_migrations_are_read_in_version_order() -> None:
    migrations = package_migrations("runtime", "bus.runtime")
    assert migrations == RUNTIME_MIGRATIONS
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    assert migrations[0].version == 1 and migrations[0].name == "runtime"
    assert "CREATE TABLE processed_events" in migrations[0].sql
