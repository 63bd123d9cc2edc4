"""How the memory transport shares one poll between the partitions a member owns."""

from __future__ import annotations

import itertools

from bus.memory import MemoryTransport
from bus.partitioning import partition_for
from bus.topics import TopicSpec


def key_on(partition: int, partitions: int) -> bytes:
    """A key Kafka's partitioner sends to `partition`."""
    return next(k for i in itertools.count() if partition_for(k := f"k{i}".encode(), partitions) == partition)


async def test_a_poll_shares_its_records_between_the_partitions_that_have_some() -> None:
    """A busy partition does not take a whole poll: every partition with records gets its share,
    in offset order, and what a share leaves behind comes in the next poll."""
    transport = MemoryTransport([TopicSpec("t", 4)])
    counts = {0: 500, 1: 30, 2: 300, 3: 0}
    for partition, n in counts.items():
        key = key_on(partition, 4)
        for i in range(n):
            await transport.publish_raw("t", key, f"{partition}-{i}".encode())
    sub = await transport.subscribe("g", ["t"])

    first = await sub.poll(0.1, max_records=300)
    got = {tp.partition: [r.offset for r in records] for tp, records in first.items()}
    assert sum(map(len, got.values())) == 300
    assert sorted(got) == [0, 1, 2]  # partition 3 has nothing
    assert got[1] == list(range(30))  # the small partition is drained
    assert len(got[0]) == len(got[2]) == 135  # the rest of the budget is shared evenly
    assert all(offsets == list(range(len(offsets))) for offsets in got.values())

    seen = {p: len(o) for p, o in got.items()}
    while batch := await sub.poll(0.05, max_records=300):
        for tp, records in batch.items():
            assert [r.offset for r in records] == list(range(seen.get(tp.partition, 0), records[-1].offset + 1))
            seen[tp.partition] = records[-1].offset + 1
    assert seen == {0: 500, 1: 30, 2: 300}
    await transport.close()
