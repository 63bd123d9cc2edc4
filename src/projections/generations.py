"""Projection generations: each projection's tables live in a PostgreSQL schema of their own,
one schema per generation, so that replay can rebuild into fresh tables beside the live ones.

How it works:

- A projection (e.g. `audit`) at generation N keeps its tables in the schema `proj_audit_gN`.
  Its SQL migrations are templates rendered for that schema (the schema name is built from the
  projection's name and the generation number and checked against a strict identifier pattern;
  no user text ever reaches the SQL), recorded under the component `projections.audit.gN`.
- Its runtime name (`consumer_name`: consumer group, `processed_events` and `consumer_offsets`
  rows) is `audit@gN`, so a rebuild keeps progress of its own.
- The table `projection_generations` (public schema) records every generation of every
  projection with its state: `building` (replay is filling it), `active` (queries read it; at most
  one per projection), `retired` (replaced; kept for comparison and rollback), `dropped` (its
  schema is gone) or `abandoned` (a rebuild that failed). Generation numbers are never reused.
- Queries resolve the active generation (`active_schema`); a projection that was never rebuilt
  is at generation 1, registered as active the first time it starts.
- Starting a projection at a retired, dropped or abandoned generation fails loudly (in
  `on_start`), so a process that was not restarted after a replay cannot keep writing to old
  tables unnoticed. Construct live projections with `await AuditTrailProjection.active(pool)`.

Generations are per projection, not global: rebuilding one projection leaves the others as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar, Self

import asyncpg

from bus.migrations import Migration
from bus.runtime.actor import Actor

SCHEMA_PREFIX = "proj_"
FIRST_GENERATION = 1
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SCHEMA_TOKEN = "__schema__"

REGISTRY_MIGRATION = Migration(
    "projections.registry",
    1,
    "projection_generations",
    """
CREATE TABLE projection_generations (
    projection   text        NOT NULL,
    generation   integer     NOT NULL CHECK (generation >= 1),
    schema_name  text        NOT NULL UNIQUE,
    state        text        NOT NULL CHECK (state IN ('building', 'active', 'retired', 'dropped', 'abandoned')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    retired_at   timestamptz,
    PRIMARY KEY (projection, generation)
);
CREATE UNIQUE INDEX projection_generations_one_active ON projection_generations (projection)
    WHERE state = 'active';
""",
)
"""The registry of generations; shared by every projection (applied once, whoever starts first)."""


class GenerationError(Exception):
    """A projection started at a generation that is not the active one or being built."""


def quote_identifier(name: str) -> str:
    """`name` double-quoted for SQL, after checking it is a plain lower-case identifier.

    Only names the code builds (projection names, `proj_<name>_g<N>`) pass; anything else raises
    `ValueError`, so no outside text can be spliced into SQL.
    """
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid identifier (lower-case letters, digits, _; at most 63)")
    return f'"{name}"'


def schema_name(projection: str, generation: int) -> str:
    """The schema holding `projection`'s tables at `generation`, e.g. `proj_audit_g2`."""
    if not _NAME.fullmatch(projection):
        raise ValueError(f"projection name {projection!r} must be lower-case letters, digits and _")
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 1:
        raise ValueError(f"generation must be a positive integer, got {generation!r}")
    name = f"{SCHEMA_PREFIX}{projection}_g{generation}"
    quote_identifier(name)
    return name


def render_sql(template: str, schema: str) -> str:
    """A SQL template with every `__schema__` replaced by the quoted, validated `schema`."""
    return template.replace(_SCHEMA_TOKEN, quote_identifier(schema))


def generation_migrations(projection: str, generation: int, package: str, folder: str) -> list[Migration]:
    """The projection's `NNNN_name.sql` templates from `package/folder`, rendered for the schema of
    `generation` and recorded under the component `projections.<projection>.g<generation>`."""
    schema = schema_name(projection, generation)
    out = [REGISTRY_MIGRATION]
    entries = sorted(resources.files(package).joinpath(folder).iterdir(), key=lambda e: e.name)
    for entry in entries:
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            out.append(
                Migration(
                    f"projections.{projection}.g{generation}",
                    int(number),
                    rest.removesuffix(".sql"),
                    render_sql(entry.read_text(), schema),
                )
            )
    return out


async def _registry_exists(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT to_regclass('projection_generations') IS NOT NULL")


async def active_generation(conn: asyncpg.Connection, projection: str) -> int:
    """The generation queries of `projection` read: the registered active one, else 1."""
    if not await _registry_exists(conn):
        return FIRST_GENERATION
    generation = await conn.fetchval(
        "SELECT generation FROM projection_generations WHERE projection = $1 AND state = 'active'", projection
    )
    return FIRST_GENERATION if generation is None else generation


async def active_schema(conn: asyncpg.Connection, projection: str) -> str:
    """The schema of `projection`'s active generation (see `active_generation`)."""
    return schema_name(projection, await active_generation(conn, projection))


async def resolve_schema(conn: asyncpg.Connection, projection: str, schema: str | None) -> str:
    """`schema` when given (validated), else the active schema of `projection`."""
    if schema is None:
        return await active_schema(conn, projection)
    quote_identifier(schema)
    return schema


@dataclass(frozen=True)
class GenerationInfo:
    """One row of the registry."""

    projection: str
    generation: int
    schema: str
    state: str


async def generations(conn: asyncpg.Connection, projection: str | None = None) -> list[GenerationInfo]:
    """The registered generations (of one projection, or all), oldest first."""
    if not await _registry_exists(conn):
        return []
    rows = await conn.fetch(
        """SELECT projection, generation, schema_name, state FROM projection_generations
           WHERE $1::text IS NULL OR projection = $1 ORDER BY projection, generation""",
        projection,
    )
    return [GenerationInfo(r["projection"], r["generation"], r["schema_name"], r["state"]) for r in rows]


@dataclass(frozen=True)
class DigestSpec:
    """How to digest one table: SQL expressions of the columns that the log determines, in a fixed
    order, and the ORDER BY that makes the row order canonical. Expressions are code, not input."""

    columns: tuple[str, ...]
    order_by: tuple[str, ...]


PROJECTIONS: dict[str, type[Projection]] = {}
"""Every projection class by name (filled as classes are defined), for replay and digests."""


class Projection(Actor):
    """Base of a read model that lives in a per-generation schema (see the module docstring).

    Subclasses set `name`, `sql_folder` (a folder of `NNNN_name.sql` templates in their package
    using `__schema__` for the schema) and `digest_tables`.
    """

    sql_package: ClassVar[str] = "projections"
    sql_folder: ClassVar[str] = ""
    digest_tables: ClassVar[Mapping[str, DigestSpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            schema_name(cls.name, FIRST_GENERATION)  # refuse a name that cannot make a schema
            PROJECTIONS[cls.name] = cls

    def __init__(self, *, generation: int = FIRST_GENERATION) -> None:
        self.generation = generation
        self.schema = schema_name(self.name, generation)
        self.migrations: Sequence[Migration] = generation_migrations(
            self.name, generation, self.sql_package, self.sql_folder
        )

    @property
    def consumer_name(self) -> str:
        """`<name>@g<generation>`: each generation has its own group, processed events and offsets."""
        return f"{self.name}@g{self.generation}"

    @classmethod
    async def active(cls, db: asyncpg.Pool | asyncpg.Connection, **options: Any) -> Self:
        """An instance at the projection's active generation (what live processes should run)."""
        if isinstance(db, asyncpg.Pool):
            async with db.acquire() as conn:
                generation = await active_generation(conn, cls.name)
        else:
            generation = await active_generation(db, cls.name)
        return cls(generation=generation, **options)

    @classmethod
    def for_rebuild(cls, generation: int) -> Self:
        """The instance replay runs to fill `generation` (subclasses turn side effects off here)."""
        return cls(generation=generation)

    async def on_start(self, conn: asyncpg.Connection) -> None:
        """Register generation 1 as active on first start; refuse a generation that is no longer
        (or not yet) in use, so a stale process cannot write to retired tables unnoticed."""
        async with conn.transaction():
            await conn.execute(
                """INSERT INTO projection_generations (projection, generation, schema_name, state, activated_at)
                   SELECT $1, $2, $3, 'active', now()
                   WHERE $2 = 1 AND NOT EXISTS (SELECT 1 FROM projection_generations WHERE projection = $1)
                   ON CONFLICT DO NOTHING""",
                self.name,
                self.generation,
                self.schema,
            )
            state = await conn.fetchval(
                "SELECT state FROM projection_generations WHERE projection = $1 AND generation = $2",
                self.name,
                self.generation,
            )
        if state not in ("active", "building"):
            active = await active_generation(conn, self.name)
            raise GenerationError(
                f"projection {self.name!r} generation {self.generation} is {state or 'not registered'}; "
                f"the active generation is {active}: construct it with `await {type(self).__name__}.active(pool)`"
            )
        if state == "active":
            # Events a replaced generation emitted but never published (it stopped before its relay
            # sent them) are published by this one: their ids do not depend on the generation.
            await conn.execute(
                """UPDATE outbox SET actor = $1
                   WHERE sent_at IS NULL AND actor IN (
                       SELECT projection || '@g' || generation FROM projection_generations
                       WHERE projection = $2 AND state IN ('retired', 'dropped'))""",
                self.consumer_name,
                self.name,
            )
