"""The audit trail: every envelope on the log, recorded once, append-only, chained by hash.

`AuditTrailProjection` consumes every topic and writes each envelope it has not recorded before
into `audit_events`. Rows are chained per correlation (the user request or run that started a
chain of events): the n-th row of a correlation carries `seq = n`, the previous row's hash as
`prev_hash` (32 zero bytes for the first) and

    row_hash = sha256(prev_hash || canonical JSON of the row's content)

where the content is every column except the chain's own hashes and `recorded_at` (see
`row_content`). `audit_chain_heads` keeps the newest (seq, row_hash) of each correlation. A
changed row no longer matches its hash, a deleted row leaves a gap in seq and a broken link, and
a deleted tail leaves rows that stop before the head: `verify` names each.

The chain is tamper-evident, not tamper-proof: someone who can write the database can recompute
every hash after an edit. To make that detectable too, publish the heads elsewhere from time to
time (e.g. on the log); `verify` then shows any chain that no longer leads to a published head.

The table is append-only in the database as well: a statement trigger refuses UPDATE, DELETE and
TRUNCATE unless the transaction ran `SET LOCAL risklab.audit_rewrite = 'on'` (`REWRITE_SETTING`),
which only deliberate maintenance uses. That guards against accidents and careless tools, not
against an administrator (who can drop the trigger) — the hash chain is what reports those.

Only well-formed envelopes reach the table; the payload is recorded as published, without
validating it against the catalog (an audit records what happened, valid or not), so the audit
never dead-letters an event for its payload. Bytes that are not an envelope at all go to
`deadletter` via the runtime, and the resulting `DeadLettered` event is recorded like any other.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import asyncpg
from pydantic import ConfigDict

import bus.events  # noqa: F401  (registers the event types: dead letters must be known)
from bus.catalog import CATALOG, Event, EventCatalog
from bus.codec import DecodedEvent
from bus.envelope import Envelope
from bus.runtime.actor import HandlerContext, Rejected
from bus.topics import ALL_TOPICS
from projections.generations import DigestSpec, Projection, render_sql, resolve_schema

GENESIS_HASH = bytes(32)
"""`prev_hash` of the first row of every chain."""
REWRITE_SETTING = "risklab.audit_rewrite"
"""`SET LOCAL risklab.audit_rewrite = 'on'` lets one transaction UPDATE/DELETE audit rows."""
PROJECTION = "audit"


class _Unvalidated(Event):
    """Stands for a payload the audit records as published, without parsing it."""

    model_config = ConfigDict(frozen=True, extra="forbid")


_UNVALIDATED = _Unvalidated()


class _RecordingCatalog(EventCatalog):
    """The process catalog for everything the runtime builds (dead letters), but `parse` accepts
    any well-formed envelope: the audit records payloads, it does not interpret them."""

    def __init__(self, base: EventCatalog) -> None:
        super().__init__()
        self._base = base

    def latest(self, event_type: str) -> type[Event]:
        return self._base.latest(event_type)

    def parse(self, envelope: Envelope) -> Event:
        return _UNVALIDATED


# -- canonical content and hashes --------------------------------------------------------------


def _normalise(value: Any) -> Any:
    """`value` as PostgreSQL's jsonb will give it back: -0.0 becomes 0.0 and floats of 1e16 and
    more (all integral) become ints, because jsonb prints numbers without an exponent."""
    if isinstance(value, float):
        if value == 0.0:
            return 0.0
        return int(value) if abs(value) >= 1e16 else value
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_string = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept (C-accelerated)


def _make_encode() -> Callable[[Any], str]:
    """`_CANONICAL.encode`, with the C encoder built once rather than on every call (the payloads
    come from parsed JSON, so they hold no cycles to check for)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _CANONICAL.encode
    c_encode = make(None, None, _string, None, ":", ",", True, False, False)
    return lambda value: "".join(c_encode(value, 0))


_encode_canonical = _make_encode()


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, numbers as jsonb keeps them: the same text before the payload is
    stored and after it is read back from jsonb, so `verify` can recompute every hash.

    Raises `ValueError` for what jsonb cannot store (NaN, infinities, NUL characters).
    """
    text = _encode_canonical(value)
    if "e+" in text or "-0.0" in text:  # a cheap test; the walk only runs when it may matter
        text = _encode_canonical(_normalise(value))
    if "\\u0000" in text and _has_nul(value):
        raise ValueError("a string contains a NUL character, which PostgreSQL cannot store")
    return text


def row_content(
    *,
    event_id: uuid.UUID,
    type: str,
    version: int,
    key: str,
    correlation_id: uuid.UUID,
    causation_id: uuid.UUID | None,
    producer: str,
    occurred_at: datetime,
    topic: str,
    partition: int,
    offset: int,
    seq: int,
    payload_json: str,
) -> bytes:
    """The canonical JSON of a row's content columns (everything but prev_hash, row_hash and
    recorded_at), as UTF-8: a JSON array of the columns in this order, the payload last, no spaces.
    Times are UTC ISO 8601 (`+00:00`); ids are lower-case hyphenated UUIDs."""
    causation = "null" if causation_id is None else f'"{causation_id}"'
    return (
        f'["{event_id}",{_string(type)},{int(version)},{_string(key)},"{correlation_id}",{causation},'
        f"{_string(producer)},{_string(occurred_at.astimezone(UTC).isoformat())},{_string(topic)},"
        f"{int(partition)},{int(offset)},{int(seq)},{payload_json}]"
    ).encode()


def chain_hash(prev_hash: bytes, content: bytes) -> bytes:
    """sha256(prev_hash || content)."""
    return hashlib.sha256(prev_hash + content).digest()


# -- the projection ----------------------------------------------------------------------------

_NEW_HEADS = """
    INSERT INTO __schema__.audit_chain_heads (correlation_id, seq, row_hash)
    SELECT c, s, rh FROM unnest($1::uuid[], $2::bigint[], $3::bytea[]) AS u(c, s, rh) ORDER BY c
    ON CONFLICT (correlation_id) DO NOTHING
    RETURNING correlation_id"""
_LOCK_HEADS = """
    SELECT correlation_id, seq, row_hash FROM __schema__.audit_chain_heads
    WHERE correlation_id = ANY($1::uuid[]) ORDER BY correlation_id FOR UPDATE"""
_COLUMNS = (
    "event_id",
    "type",
    "version",
    "key",
    "correlation_id",
    "causation_id",
    "producer",
    "occurred_at",
    "payload",
    "topic",
    "partition",
    "offset",
    "seq",
    "prev_hash",
    "row_hash",
)
"""The columns a batch writes (by COPY, the cheapest bulk path for both ends): what the log
determines, then the chain's seq and hashes."""


def _sql_name(column: str) -> str:
    return f'"{column}"' if column in ("partition", "offset") else column


_MOVE_HEADS = """
    UPDATE __schema__.audit_chain_heads AS h SET seq = u.s, row_hash = u.rh
    FROM unnest($1::uuid[], $2::bigint[], $3::bytea[]) AS u(c, s, rh)
    WHERE h.correlation_id = u.c"""


class AuditTrailProjection(Projection):
    """Records every envelope of every topic once in `audit_events` (see the module docstring).

    Writes are set-based per partition batch, inside the runtime's transaction, in a fixed number
    of statements whatever the batch size:

    1. the batch's log positions, from the records the runtime hands the handler;
    2. the heads of the batch's correlations that exist are locked and read (SELECT … ORDER BY …
       FOR UPDATE); the others start new chains;
    3. seq, prev_hash and row_hash are computed in Python, in log order;
    4. the heads of new chains are inserted with their final values (INSERT … ON CONFLICT DO
       NOTHING RETURNING, in correlation order). A head another partition created meanwhile comes
       back missing: it is then locked and read like the others and those chains are recomputed
       (new chains start at the genesis hash, so the other new heads stay right);
    5. one COPY writes the rows;
    6. one UPDATE moves the heads that existed before.

    Locks are taken in correlation order within each step, so concurrent partitions cannot
    deadlock on heads (and a deadlock would be retried by the runtime like any transient fault).
    A batch of new chains only, the common case for users' requests, costs a lookup, one INSERT
    and the COPY.
    """

    name: ClassVar[str] = PROJECTION
    version: ClassVar[str] = "1"
    topics = ALL_TOPICS
    accepts = None
    catalog = _RecordingCatalog(CATALOG)
    sql_folder: ClassVar[str] = "sql/audit"
    digest_tables: ClassVar[Mapping[str, DigestSpec]] = {
        # seq, prev_hash and row_hash depend on the order in which partitions were processed, and
        # recorded_at on the clock: the digest covers what the log determines, by event_id.
        "audit_events": DigestSpec(tuple(_sql_name(c) for c in _COLUMNS[: _COLUMNS.index("seq")]), ("event_id",)),
        # The head's seq is the number of events of the correlation: deterministic; its hash is not.
        "audit_chain_heads": DigestSpec(("correlation_id", "seq"), ("correlation_id",)),
    }

    def __init__(self, *, generation: int = 1) -> None:
        super().__init__(generation=generation)
        self._new_heads_sql = render_sql(_NEW_HEADS, self.schema)
        self._lock_heads_sql = render_sql(_LOCK_HEADS, self.schema)
        self._move_heads_sql = render_sql(_MOVE_HEADS, self.schema)

    async def handle_batch(self, items: Sequence[tuple[DecodedEvent, HandlerContext]]) -> None:
        """Append the batch's envelopes to their correlations' chains (one partition, in order)."""
        if not items:
            return
        ctx0 = items[0][1]
        conn = ctx0.conn
        envelopes = [event.envelope for event, _ in items]
        payloads: list[str] = []
        for env in envelopes:
            try:
                payloads.append(canonical_json(env.payload))
            except ValueError as exc:
                raise Rejected(f"payload of {env.event_id} cannot be recorded: {exc}") from exc

        records = [ctx.record for _, ctx in items]
        if any(r is None for r in records) or len({(r.topic, r.partition) for r in records if r}) != 1:
            raise RuntimeError("the audit projection needs one partition's records per batch, with their positions")
        topic, partition = records[0].topic, records[0].partition  # type: ignore[union-attr]
        offsets = [r.offset for r in records]  # type: ignore[union-attr]

        correlations = sorted({env.correlation_id for env in envelopes})
        before = await self._lock_heads(conn, correlations)
        chained = _chain(envelopes, payloads, topic, partition, offsets, before)
        new = [c for c in correlations if c not in before]
        if new:
            heads = chained.heads
            created = {
                r[0]
                for r in await conn.fetch(
                    self._new_heads_sql, new, [heads[c][0] for c in new], [heads[c][1] for c in new]
                )
            }
            raced = [c for c in new if c not in created]
            if raced:  # another partition started these chains first: continue them
                before.update(await self._lock_heads(conn, raced))
                chained = _chain(envelopes, payloads, topic, partition, offsets, before)

        rows = [
            (e.event_id, e.type, e.version, e.key, e.correlation_id, e.causation_id, e.producer, e.occurred_at, pl,
             topic, partition, off, sq, ph, rh)
            for e, pl, off, sq, ph, rh in zip(
                envelopes, payloads, offsets, chained.seqs, chained.prevs, chained.hashes, strict=True
            )
        ]  # fmt: skip
        status = await conn.copy_records_to_table(
            "audit_events", records=rows, columns=_COLUMNS, schema_name=self.schema
        )
        if status != f"COPY {len(envelopes)}":
            raise RuntimeError(f"audit insert wrote {status!r} for {len(envelopes)} events")
        moved = [c for c in correlations if c in before]
        if moved:
            heads = chained.heads
            await conn.execute(self._move_heads_sql, moved, [heads[c][0] for c in moved], [heads[c][1] for c in moved])

    async def _lock_heads(
        self, conn: asyncpg.Connection, correlations: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[int, bytes]]:
        """(seq, row_hash) of the correlations' existing heads, each locked until commit."""
        return {r[0]: (r[1], bytes(r[2])) for r in await conn.fetch(self._lock_heads_sql, correlations)}


@dataclass
class _Chained:
    """A batch's place in its chains: each row's seq, prev_hash and row_hash, and the new heads."""

    seqs: list[int]
    prevs: list[bytes]
    hashes: list[bytes]
    heads: dict[uuid.UUID, tuple[int, bytes]]


def _chain(
    envelopes: Sequence[Envelope],
    payloads: Sequence[str],
    topic: str,
    partition: int,
    offsets: Sequence[int],
    heads_before: Mapping[uuid.UUID, tuple[int, bytes]],
) -> _Chained:
    """Append the envelopes, in log order, to chains whose heads are `heads_before` (a correlation
    missing from it starts a new chain at the genesis hash)."""
    heads: dict[uuid.UUID, tuple[int, bytes]] = dict(heads_before)
    genesis = (0, GENESIS_HASH)
    seqs: list[int] = []
    prevs: list[bytes] = []
    hashes: list[bytes] = []
    for env, payload_json, offset in zip(envelopes, payloads, offsets, strict=True):
        seq, prev = heads.get(env.correlation_id, genesis)
        seq += 1
        content = row_content(
            event_id=env.event_id,
            type=env.type,
            version=env.version,
            key=env.key,
            correlation_id=env.correlation_id,
            causation_id=env.causation_id,
            producer=env.producer,
            occurred_at=env.occurred_at,
            topic=topic,
            partition=partition,
            offset=offset,
            seq=seq,
            payload_json=payload_json,
        )
        digest = chain_hash(prev, content)
        heads[env.correlation_id] = (seq, digest)
        seqs.append(seq)
        prevs.append(prev)
        hashes.append(digest)
    return _Chained(seqs, prevs, hashes, heads)


# -- queries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRecord:
    """One row of the audit trail; hashes in hex."""

    event_id: uuid.UUID
    type: str
    version: int
    key: str
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None
    producer: str
    occurred_at: datetime
    payload: dict[str, Any]
    topic: str
    partition: int
    offset: int
    seq: int
    prev_hash: str
    row_hash: str
    recorded_at: datetime


@dataclass(frozen=True)
class LineageStep:
    """One event on the way from an event back to the input that started its chain."""

    depth: int
    event_id: uuid.UUID
    type: str
    producer: str
    occurred_at: datetime
    topic: str
    partition: int
    offset: int
    key: str
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None


@dataclass(frozen=True)
class ChainProblem:
    """Something `verify` found: `kind` is one of changed, missing, broken_link, tail_missing,
    head_mismatch, head_missing, beyond_head; `message` names the rows."""

    kind: str
    correlation_id: uuid.UUID
    event_id: uuid.UUID | None
    seq: int | None
    message: str

    def __str__(self) -> str:
        return self.message


_SHOW = """
    SELECT event_id, type, version, key, correlation_id, causation_id, producer, occurred_at, payload, topic,
           "partition", "offset", seq, prev_hash, row_hash, recorded_at
    FROM __schema__.audit_events WHERE correlation_id = $1 ORDER BY seq"""
_ALL_ROWS = """
    SELECT event_id, type, version, key, correlation_id, causation_id, producer, occurred_at, payload, topic,
           "partition", "offset", seq, prev_hash, row_hash, recorded_at
    FROM __schema__.audit_events ORDER BY correlation_id, seq"""
_HEADS = "SELECT correlation_id, seq, row_hash FROM __schema__.audit_chain_heads"
_LINEAGE = """
    WITH RECURSIVE walk AS (
        SELECT a.event_id, a.causation_id, 0 AS depth, ARRAY[a.event_id] AS path
        FROM __schema__.audit_events a WHERE a.event_id = $1
        UNION ALL
        SELECT a.event_id, a.causation_id, w.depth + 1, w.path || a.event_id
        FROM walk w JOIN __schema__.audit_events a ON a.event_id = w.causation_id
        WHERE w.depth < $2 AND NOT a.event_id = ANY(w.path)
    )
    SELECT w.depth, a.event_id, a.type, a.producer, a.occurred_at, a.topic, a."partition", a."offset",
           a.key, a.correlation_id, a.causation_id
    FROM walk w JOIN __schema__.audit_events a ON a.event_id = w.event_id
    ORDER BY w.depth"""


def _record(r: asyncpg.Record) -> AuditRecord:
    return AuditRecord(
        event_id=r["event_id"],
        type=r["type"],
        version=r["version"],
        key=r["key"],
        correlation_id=r["correlation_id"],
        causation_id=r["causation_id"],
        producer=r["producer"],
        occurred_at=r["occurred_at"],
        payload=json.loads(r["payload"]),
        topic=r["topic"],
        partition=r["partition"],
        offset=r["offset"],
        seq=r["seq"],
        prev_hash=bytes(r["prev_hash"]).hex(),
        row_hash=bytes(r["row_hash"]).hex(),
        recorded_at=r["recorded_at"],
    )


async def show(conn: asyncpg.Connection, correlation_id: uuid.UUID, *, schema: str | None = None) -> list[AuditRecord]:
    """Every recorded event of one correlation, in chain order (seq)."""
    sql = render_sql(_SHOW, await resolve_schema(conn, PROJECTION, schema))
    rows = await conn.fetch(sql, correlation_id)
    return [_record(r) for r in rows]


async def lineage(
    conn: asyncpg.Connection, event_id: uuid.UUID, *, schema: str | None = None, max_depth: int = 10_000
) -> list[LineageStep]:
    """The chain of causation from `event_id` (depth 0) back to the input that started it (the
    event with no causation id). Empty when the event is not recorded; if the last step still has
    a `causation_id`, its cause is not in the audit trail (the walk stops there)."""
    sql = render_sql(_LINEAGE, await resolve_schema(conn, PROJECTION, schema))
    rows = await conn.fetch(
        sql,
        event_id,
        max_depth,
    )
    return [
        LineageStep(
            depth=r["depth"],
            event_id=r["event_id"],
            type=r["type"],
            producer=r["producer"],
            occurred_at=r["occurred_at"],
            topic=r["topic"],
            partition=r["partition"],
            offset=r["offset"],
            key=r["key"],
            correlation_id=r["correlation_id"],
            causation_id=r["causation_id"],
        )
        for r in rows
    ]


def _recomputed_hash(r: asyncpg.Record) -> bytes:
    content = row_content(
        event_id=r["event_id"],
        type=r["type"],
        version=r["version"],
        key=r["key"],
        correlation_id=r["correlation_id"],
        causation_id=r["causation_id"],
        producer=r["producer"],
        occurred_at=r["occurred_at"],
        topic=r["topic"],
        partition=r["partition"],
        offset=r["offset"],
        seq=r["seq"],
        payload_json=canonical_json(json.loads(r["payload"])),
    )
    return chain_hash(bytes(r["prev_hash"]), content)


class _ChainCheck:
    """Walks one correlation's rows in seq order and collects what does not hold."""

    def __init__(self, correlation_id: uuid.UUID, problems: list[ChainProblem]) -> None:
        self.cid = correlation_id
        self.problems = problems
        self.last: tuple[int, bytes, uuid.UUID] | None = None  # seq, row_hash, event_id

    def add(self, kind: str, message: str, event_id: uuid.UUID | None = None, seq: int | None = None) -> None:
        self.problems.append(ChainProblem(kind, self.cid, event_id, seq, message))

    def row(self, r: asyncpg.Record) -> None:
        eid, seq, prev, stored = r["event_id"], r["seq"], bytes(r["prev_hash"]), bytes(r["row_hash"])
        cid = self.cid
        if _recomputed_hash(r) != stored:
            self.add(
                "changed",
                f"row changed: event {eid} (correlation {cid}, seq {seq}) no longer matches its row_hash",
                eid,
                seq,
            )
        last_seq, last_hash, last_eid = self.last if self.last else (0, GENESIS_HASH, None)
        if seq > last_seq + 1:
            missing = f"seq {last_seq + 1}" if seq == last_seq + 2 else f"seq {last_seq + 1}..{seq - 1}"
            where = (
                f"before event {eid} (seq {seq})"
                if last_eid is None
                else f"between event {last_eid} (seq {last_seq}) and event {eid} (seq {seq})"
            )
            self.add("missing", f"rows missing: correlation {cid} has no {missing} {where}", eid, seq)
        elif prev != last_hash:
            after = "the chain's start" if last_eid is None else f"event {last_eid} (seq {last_seq})"
            self.add(
                "broken_link",
                f"chain broken: event {eid} (correlation {cid}, seq {seq}) does not link to {after}",
                eid,
                seq,
            )
        self.last = (seq, stored, eid)

    def finish(self, head: tuple[int, bytes] | None) -> None:
        cid = self.cid
        if head is None:
            if self.last is not None:
                self.add("head_missing", f"chain head missing: correlation {cid} has rows up to seq {self.last[0]}")
            return
        head_seq, head_hash = head
        if self.last is None:
            self.add(
                "tail_missing",
                f"chain tail missing: correlation {cid} head says seq {head_seq} but its rows stop before seq 1 "
                f"(seq 1..{head_seq} deleted)",
                None,
                head_seq,
            )
            return
        last_seq, last_hash, last_eid = self.last
        if head_seq > last_seq:
            gone = f"seq {head_seq}" if head_seq == last_seq + 1 else f"seq {last_seq + 1}..{head_seq}"
            self.add(
                "tail_missing",
                f"chain tail missing: correlation {cid} head says seq {head_seq} but its rows stop at seq "
                f"{last_seq} (event {last_eid}); {gone} deleted",
                last_eid,
                last_seq,
            )
        elif head_seq < last_seq:
            self.add(
                "beyond_head",
                f"rows beyond the chain head: correlation {cid} head says seq {head_seq} but event {last_eid} "
                f"has seq {last_seq}",
                last_eid,
                last_seq,
            )
        elif head_hash != last_hash:
            self.add(
                "head_mismatch",
                f"chain head of correlation {cid} does not match its last row, event {last_eid} (seq {last_seq})",
                last_eid,
                last_seq,
            )


async def verify(conn: asyncpg.Connection, *, schema: str | None = None, fetch: int = 5000) -> list[ChainProblem]:
    """Check every hash chain of the audit trail; [] when intact.

    Recomputes each row's hash from its content, follows the links (seq and prev_hash) and compares
    the last row of each correlation with its chain head. Reads one consistent snapshot, streaming
    the rows (`fetch` at a time), so it works on tables larger than memory.
    """
    resolved = await resolve_schema(conn, PROJECTION, schema)
    problems: list[ChainProblem] = []
    if conn.is_in_transaction():
        await _verify(conn, resolved, problems, fetch)
    else:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await _verify(conn, resolved, problems, fetch)
    return problems


async def _verify(conn: asyncpg.Connection, schema: str, problems: list[ChainProblem], fetch: int) -> None:
    heads = {
        r["correlation_id"]: (r["seq"], bytes(r["row_hash"])) for r in await conn.fetch(render_sql(_HEADS, schema))
    }
    check: _ChainCheck | None = None
    async for r in conn.cursor(render_sql(_ALL_ROWS, schema), prefetch=fetch):
        if check is None or check.cid != r["correlation_id"]:
            if check is not None:
                check.finish(heads.pop(check.cid, None))
            check = _ChainCheck(r["correlation_id"], problems)
        check.row(r)
    if check is not None:
        check.finish(heads.pop(check.cid, None))
    for cid in sorted(heads):
        _ChainCheck(cid, problems).finish(heads[cid])
