"""The transport contract: ordering, consumer groups, commits, redelivery, replay and limits.

Every test runs on the memory transport and on Kafka (`bus` fixture) with fresh topics and groups,
and checks exact contents: which records, on which partition, at which offsets, read by whom.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping

import pytest

from bus.codec import decode_envelope, encode
from bus.envelope import Envelope, utc_now
from bus.errors import CommitFailed, MessageTooLarge, TransportClosed, UnknownTopic
from bus.partitioning import partition_for, record_size
from bus.topics import TopicSpec
from bus.transport import Record, RecordMetadata, Subscription, TopicPartition

from .conftest import Bus

pytestmark = pytest.mark.timeout(60)

WAIT = 30.0  # seconds a test waits for records or an assignment before failing
QUIET = 0.6  # seconds of polling that must bring nothing more


def envelope(key: str, seq: int, *, blob: str = "") -> Envelope:
    payload: dict[str, object] = {"seq": seq}
    if blob:
        payload["blob"] = blob
    return Envelope(
        event_id=uuid.uuid4(),
        type="contract.test_event",
        version=1,
        key=key,
        correlation_id=uuid.uuid4(),
        producer="contract-test/1",
        occurred_at=utc_now(),
        payload=payload,
    )


def keys_on_partitions(partitions: int, per_partition: int = 1) -> dict[int, list[str]]:
    """Keys that Kafka's partitioner puts on each partition, `per_partition` of each."""
    out: dict[int, list[str]] = {p: [] for p in range(partitions)}
    i = 0
    while any(len(v) < per_partition for v in out.values()):
        key = f"subject-{i}"
        p = partition_for(key.encode(), partitions)
        if len(out[p]) < per_partition:
            out[p].append(key)
        i += 1
    return out


def seq_of(record: Record) -> int:
    return int(decode_envelope(record.value).payload["seq"])


def positions(records: Iterable[Record]) -> set[tuple[str, int, int]]:
    return {(r.topic, r.partition, r.offset) for r in records}


def by_partition(records: Iterable[Record]) -> dict[TopicPartition, list[int]]:
    out: dict[TopicPartition, list[int]] = defaultdict(list)
    for r in records:
        out[r.tp].append(r.offset)
    return dict(out)


class Reader:
    """Polls one member and keeps what it read (in order), committing after each batch if asked."""

    def __init__(self, member: Subscription, *, commit: bool = False) -> None:
        self.member = member
        self.commit = commit
        self.records: list[Record] = []

    async def poll_once(self, timeout: float = 0.2) -> None:
        batch = await self.member.poll(timeout=timeout)
        for tp, records in batch.items():
            assert records, "poll returned an empty list for a partition"
            assert [r.offset for r in records] == sorted(r.offset for r in records), "batch out of offset order"
            assert all(r.tp == tp for r in records)
            self.records.extend(records)
        if self.commit and batch:
            await self.member.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})


async def pump(readers: list[Reader], until: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll all readers side by side until `until()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            got = [len(r.records) for r in readers]
            owned = [sorted(r.member.assignment()) for r in readers]
            raise AssertionError(f"timed out waiting for {what}; records read {got}, assignments {owned}")
        await asyncio.gather(*(r.poll_once() for r in readers))


async def quiet(readers: list[Reader], seconds: float = QUIET) -> None:
    """Poll for `seconds` more; nothing new may arrive."""
    before = [len(r.records) for r in readers]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.gather(*(r.poll_once(0.1) for r in readers))
    extra = [r.records[n:] for r, n in zip(readers, before, strict=True)]
    assert not any(extra), f"unexpected records: {[positions(e) for e in extra]}"


def owns_exactly(reader: Reader, tps: frozenset[TopicPartition]) -> Callable[[], bool]:
    return lambda: reader.member.assignment() == tps


def split_between(a: Reader, b: Reader, tps: frozenset[TopicPartition]) -> Callable[[], bool]:
    def done() -> bool:
        sa, sb = a.member.assignment(), b.member.assignment()
        return bool(sa) and bool(sb) and not (sa & sb) and (sa | sb) == tps

    return done


async def publish_spread(bus: Bus, topic: str, partitions: int, per_partition: int) -> list[RecordMetadata]:
    """Publish `per_partition` events on every partition (one key per partition, seq 0..n-1)."""
    keys = keys_on_partitions(partitions)
    envs = [envelope(keys[p][0], seq) for seq in range(per_partition) for p in range(partitions)]
    return await bus.transport.publish_many(topic, envs)


# -- ordering -----------------------------------------------------------------------------


async def test_each_key_is_read_in_publish_order_from_one_partition(bus: Bus) -> None:
    topic = await bus.topic(partitions=4)
    keys = [f"study-{i}" for i in range(16)]
    envs = [envelope(key, seq) for seq in range(12) for key in keys]  # keys interleaved
    metas = [await bus.transport.publish(topic, e) for e in envs[:40]]
    metas += await bus.transport.publish_many(topic, envs[40:100])
    metas += await bus.transport.publish_many(topic, envs[100:])
    assert len(metas) == len(envs)
    for env, meta in zip(envs, metas, strict=True):
        assert meta.topic == topic
        assert meta.partition == partition_for(env.key.encode(), 4), "same partitioner on every transport"
    offsets = defaultdict(list)
    for meta in metas:
        offsets[meta.partition].append(meta.offset)
    assert all(v == list(range(len(v))) for v in offsets.values()), "offsets per partition are 0, 1, 2, ..."
    assert len(offsets) > 1, "16 keys must spread over several partitions"

    reader = Reader(await bus.subscribe(bus.group(), [topic]))
    await pump([reader], lambda: len(reader.records) >= len(envs), "all events")
    await quiet([reader])

    assert len(reader.records) == len(envs)
    assert sorted(decode_envelope(r.value).event_id for r in reader.records) == sorted(e.event_id for e in envs)
    seen: dict[str, list[int]] = defaultdict(list)
    parts: dict[str, set[int]] = defaultdict(set)
    for r in reader.records:
        env = decode_envelope(r.value)
        assert r.key == env.key.encode()
        assert r.header("event_id") == str(env.event_id)
        assert r.header("type") == "contract.test_event"
        seen[env.key].append(env.payload["seq"])
        parts[env.key].add(r.partition)
    for key in keys:
        assert seen[key] == list(range(12)), f"{key} out of order: {seen[key]}"
        assert parts[key] == {partition_for(key.encode(), 4)}
    for tp, offs in by_partition(reader.records).items():
        assert offs == list(range(len(offs))), f"{tp} read out of order or with gaps"


# -- consumer groups ----------------------------------------------------------------------


async def test_group_members_share_the_partitions_without_overlap(bus: Bus) -> None:
    topic = await bus.topic(partitions=4)
    all_tps = await bus.partitions(topic)
    group = bus.group()
    a = Reader(await bus.subscribe(group, [topic]), commit=True)
    b = Reader(await bus.subscribe(group, [topic]), commit=True)
    await pump([a, b], split_between(a, b, all_tps), "the two members to split the partitions")
    share_a, share_b = a.member.assignment(), b.member.assignment()

    keys = keys_on_partitions(4, per_partition=3)
    envs = [envelope(key, seq) for seq in range(10) for p in range(4) for key in keys[p]]
    await bus.transport.publish_many(topic, envs)
    await pump([a, b], lambda: len(a.records) + len(b.records) >= len(envs), "all events")
    await quiet([a, b])

    assert positions(a.records).isdisjoint(positions(b.records)), "a record went to both members"
    assert {r.tp for r in a.records} <= share_a and {r.tp for r in b.records} <= share_b
    assert {r.tp for r in a.records} == share_a and {r.tp for r in b.records} == share_b
    everything = a.records + b.records
    assert len(everything) == len(envs)
    assert Counter(decode_envelope(r.value).event_id for r in everything) == Counter(e.event_id for e in envs)
    assert a.member.assignment() == share_a and b.member.assignment() == share_b

    foreign = min(share_b)
    with pytest.raises(CommitFailed):
        await a.member.commit({foreign: 1})


async def test_uncommitted_records_go_again_to_the_next_owner(bus: Bus) -> None:
    topic = await bus.topic(partitions=4)
    all_tps = await bus.partitions(topic)
    group = bus.group()
    a = Reader(await bus.subscribe(group, [topic]))  # reads without committing
    b = Reader(await bus.subscribe(group, [topic]), commit=True)
    await pump([a, b], split_between(a, b, all_tps), "the two members to split the partitions")
    share_a = a.member.assignment()

    metas = await publish_spread(bus, topic, 4, per_partition=6)
    on_a = [m for m in metas if TopicPartition(m.topic, m.partition) in share_a]
    await pump([a, b], lambda: len(a.records) + len(b.records) >= len(metas), "all events")
    assert len(a.records) == len(on_a)
    # a commits the first 2 records of each of its partitions, then dies with the rest uncommitted
    await a.member.commit({tp: 2 for tp in share_a})
    await a.member.close()

    b.commit = False
    already = len(b.records)
    expected = {(m.topic, m.partition, m.offset) for m in on_a if m.offset >= 2}
    await pump([b], lambda: len(b.records) - already >= len(expected), "a's uncommitted records at b")
    await quiet([b])
    redelivered = b.records[already:]
    assert positions(redelivered) == expected, "exactly the uncommitted records come again"
    assert len(redelivered) == len(expected), "each of them once"
    assert b.member.assignment() == all_tps
    for tp, offs in by_partition(redelivered).items():
        assert offs == sorted(offs) and offs[0] == 2, f"{tp} must resume at the last commit"


async def test_committed_progress_is_not_read_again_and_a_new_group_replays_everything(bus: Bus) -> None:
    topic = await bus.topic(partitions=3)
    all_tps = await bus.partitions(topic)
    metas = await publish_spread(bus, topic, 3, per_partition=5)
    ends = await bus.transport.end_offsets([topic])
    assert ends == dict.fromkeys(all_tps, 5)
    group = bus.group()

    first = Reader(await bus.subscribe(group, [topic]))
    await pump([first], lambda: len(first.records) >= len(metas), "all events at the first member")
    assert positions(first.records) == {(m.topic, m.partition, m.offset) for m in metas}
    await first.member.commit({tp: 3 for tp in all_tps})  # the last 2 of each partition stay uncommitted
    await first.member.close()

    second = Reader(await bus.subscribe(group, [topic]), commit=True)
    await pump([second], lambda: len(second.records) >= 6, "the uncommitted records at the second member")
    await quiet([second])
    assert positions(second.records) == {(tp.topic, tp.partition, o) for tp in all_tps for o in (3, 4)}
    await second.member.close()

    third = Reader(await bus.subscribe(group, [topic]))
    await pump([third], owns_exactly(third, all_tps), "the third member's assignment")
    await quiet([third], 1.0)
    assert third.records == [], "a fully committed group reads nothing again"
    await third.member.close()

    replay = Reader(await bus.subscribe(bus.group(), [topic]))
    await pump([replay], lambda: len(replay.records) >= len(metas), "the replay")
    await quiet([replay])
    assert positions(replay.records) == {(m.topic, m.partition, m.offset) for m in metas}
    assert len(replay.records) == len(metas)
    for tp, offs in by_partition(replay.records).items():
        assert offs == [0, 1, 2, 3, 4], f"{tp} replayed out of order"
        assert [seq_of(r) for r in replay.records if r.tp == tp] == [0, 1, 2, 3, 4]


async def test_on_assign_start_offsets_are_honoured(bus: Bus) -> None:
    topic = await bus.topic(partitions=2)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    await publish_spread(bus, topic, 2, per_partition=10)
    group = bus.group()

    setter = Reader(await bus.subscribe(group, [topic]))
    await pump([setter], owns_exactly(setter, frozenset({p0, p1})), "the first member's assignment")
    await setter.member.commit({p1: 4})
    await setter.member.close()

    calls: list[frozenset[TopicPartition]] = []

    async def on_assign(tps: frozenset[TopicPartition]) -> Mapping[TopicPartition, int]:
        calls.append(tps)
        await asyncio.sleep(0.2)  # a slow store: nothing may be read before the answer
        return {p0: 7}  # p1 is not named: it resumes at its committed offset

    reader = Reader(await bus.subscribe(group, [topic], on_assign=on_assign))
    await pump([reader], lambda: len(reader.records) >= 3 + 6, "records from the chosen offsets")
    await quiet([reader])
    assert calls == [frozenset({p0, p1})]
    assert by_partition(reader.records) == {p0: [7, 8, 9], p1: [4, 5, 6, 7, 8, 9]}

    await reader.member.seek(p0, 1)
    await pump([reader], lambda: len(reader.records) >= 9 + 9, "records after seek")
    assert by_partition(reader.records[9:]) == {p0: [1, 2, 3, 4, 5, 6, 7, 8, 9]}


async def test_on_revoke_runs_before_partitions_move_to_another_member(bus: Bus) -> None:
    topic = await bus.topic(partitions=4)
    all_tps = await bus.partitions(topic)
    group = bus.group()
    log: list[tuple[str, frozenset[TopicPartition]]] = []

    async def a_revoked(tps: frozenset[TopicPartition]) -> None:
        log.append(("a-revoked", tps))

    async def b_assigned(tps: frozenset[TopicPartition]) -> Mapping[TopicPartition, int]:
        log.append(("b-assigned", tps))
        return {}

    a = Reader(await bus.subscribe(group, [topic], on_revoke=a_revoked), commit=True)
    await pump([a], owns_exactly(a, all_tps), "the first member to own every partition")
    assert log == []
    b = Reader(await bus.subscribe(group, [topic], on_assign=b_assigned), commit=True)
    await pump([a, b], split_between(a, b, all_tps), "the two members to split the partitions")

    revoked = [tps for what, tps in log if what == "a-revoked"]
    first_b = next(i for i, (what, tps) in enumerate(log) if what == "b-assigned" and tps)
    first_revoke = next(i for i, (what, _) in enumerate(log) if what == "a-revoked")
    assert first_revoke < first_b, f"b got partitions before a let them go: {log}"
    assert b.member.assignment() <= frozenset().union(*revoked)


# -- commits ------------------------------------------------------------------------------


async def test_commit_of_a_partition_not_owned_fails(bus: Bus) -> None:
    topic = await bus.topic(partitions=2)
    other = await bus.topic(partitions=2)
    all_tps = await bus.partitions(topic)
    member = Reader(await bus.subscribe(bus.group(), [topic]))
    await pump([member], owns_exactly(member, all_tps), "the member's assignment")

    await member.member.commit({TopicPartition(topic, 0): 0})  # owned: fine
    with pytest.raises(CommitFailed):
        await member.member.commit({TopicPartition(other, 0): 1})
    with pytest.raises(CommitFailed):
        await member.member.commit({TopicPartition(topic, 7): 1})
    with pytest.raises(CommitFailed):
        await member.member.seek(TopicPartition(other, 0), 0)
    await member.member.close()
    with pytest.raises(TransportClosed):
        await member.member.commit({TopicPartition(topic, 0): 0})
    with pytest.raises(TransportClosed):
        await member.member.poll(timeout=0.1)


# -- limits and errors --------------------------------------------------------------------


async def test_large_messages_are_rejected_naming_size_and_limit(bus: Bus) -> None:
    limit = 20_000
    topic = await bus.topic(partitions=2, max_message_bytes=limit)
    all_tps = await bus.partitions(topic)
    big = envelope("subject-1", 0, blob="x" * 30_000)
    enc = encode(big)

    with pytest.raises(MessageTooLarge) as info:
        await bus.transport.publish(topic, big)
    err = info.value
    assert (err.topic, err.size, err.limit) == (topic, record_size(enc.key, enc.value, enc.headers), limit)
    assert f"{err.size} bytes" in str(err) and f"{limit}-byte limit" in str(err) and topic in str(err)

    with pytest.raises(MessageTooLarge) as info:
        await bus.transport.publish_raw(topic, b"k", b"y" * 25_000, (("h", b"v"),))
    assert (info.value.size, info.value.limit) == (1 + 25_000 + 2, limit)
    assert await bus.transport.end_offsets([topic]) == dict.fromkeys(all_tps, 0), "nothing was published"

    fits = envelope("subject-1", 1, blob="z" * 12_000)
    meta = await bus.transport.publish(topic, fits)
    ends = await bus.transport.end_offsets([topic])
    assert sum(ends.values()) == 1 and ends[TopicPartition(topic, meta.partition)] == 1


async def test_publish_many_is_all_or_nothing_on_size(bus: Bus) -> None:
    topic = await bus.topic(partitions=2, max_message_bytes=20_000)
    all_tps = await bus.partitions(topic)
    batch = [envelope(f"subject-{i}", i) for i in range(5)]
    batch.insert(3, envelope("subject-9", 9, blob="x" * 30_000))
    with pytest.raises(MessageTooLarge):
        await bus.transport.publish_many(topic, batch)
    assert await bus.transport.end_offsets([topic]) == dict.fromkeys(all_tps, 0), "no record of the batch landed"

    metas = await bus.transport.publish_many(topic, batch[:3] + batch[4:])
    assert len(metas) == 5
    assert sum((await bus.transport.end_offsets([topic])).values()) == 5


async def test_unknown_topic_is_refused_at_once(bus: Bus) -> None:
    missing = bus.name("missing")
    started = time.monotonic()
    with pytest.raises(UnknownTopic):
        await bus.transport.publish(missing, envelope("subject-1", 0))
    with pytest.raises(UnknownTopic):
        await bus.transport.publish_raw(missing, b"k", b"v")
    with pytest.raises(UnknownTopic):
        await bus.transport.publish_many(missing, [envelope("subject-1", 0)])
    with pytest.raises(UnknownTopic):
        await bus.subscribe(bus.group(), [missing])
    with pytest.raises(UnknownTopic):
        await bus.transport.end_offsets([missing])
    assert time.monotonic() - started < 5.0, "UnknownTopic must not wait for a timeout"


async def test_end_offsets_are_the_next_offset_of_every_partition(bus: Bus) -> None:
    t1 = await bus.topic(partitions=3)
    t2 = await bus.topic(partitions=2)
    keys = keys_on_partitions(3)
    counts = {0: 4, 1: 0, 2: 7}
    for p, n in counts.items():
        metas = await bus.transport.publish_many(t1, [envelope(keys[p][0], i) for i in range(n)])
        assert [m.offset for m in metas] == list(range(n)) and {m.partition for m in metas} <= {p}
    ends = await bus.transport.end_offsets([t1, t2])
    expected = {TopicPartition(t1, p): n for p, n in counts.items()}
    expected |= {TopicPartition(t2, 0): 0, TopicPartition(t2, 1): 0}
    assert ends == expected
    meta = await bus.transport.publish(t1, envelope(keys[1][0], 0))
    assert (meta.partition, meta.offset) == (1, 0)
    assert (await bus.transport.end_offsets([t1]))[TopicPartition(t1, 1)] == 1


async def test_ensure_topics_is_idempotent_and_keeps_data(bus: Bus) -> None:
    name = bus.name("t")
    bus.topics.append(name)
    spec = TopicSpec(name, 3)
    await asyncio.gather(*(bus.transport.ensure_topics([spec]) for _ in range(3)))  # racing creators
    await bus.transport.publish(name, envelope("subject-1", 0))
    await bus.transport.ensure_topics([spec, TopicSpec(name, 5)])  # existing topics are left alone
    ends = await bus.transport.end_offsets([name])
    assert len(ends) == 3 and sum(ends.values()) == 1


# -- cancellation ---------------------------------------------------------------------------


async def test_a_poll_cancelled_while_records_stream_in_ends_the_consumer(bus: Bus) -> None:
    """A consumer task cancelled mid-poll ends, however the cancellation meets the records' arrival.

    A crashed actor is a cancelled task: a poll that swallowed the cancellation would keep the dead
    consumer alive, holding its partitions, and its restart would wait for them forever.
    """
    topic = await bus.topic(1)
    trials = 40 if bus.kind == "memory" else 5
    for trial in range(trials):
        member = await bus.subscribe(bus.group(), [topic])

        async def consume(m: Subscription = member) -> None:
            while True:
                await m.poll(0.2, 10)

        async def produce(stop: asyncio.Event, n: int = trial) -> None:
            while not stop.is_set():
                await bus.transport.publish(topic, envelope("subject-1", n))
                await asyncio.sleep(0)

        stop = asyncio.Event()
        producer = asyncio.create_task(produce(stop))
        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.002 * (trial % 5))
        consumer.cancel()
        done, _ = await asyncio.wait({consumer}, timeout=5)
        stop.set()
        await producer
        if not done:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
        assert done, f"trial {trial}: the cancelled consumer is still polling"
        assert consumer.cancelled()
        await member.close()
