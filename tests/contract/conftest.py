"""Fixtures of the transport contract: a fresh transport of each kind per test, with its own topics
and groups (names `ct-<8 hex>-...`), and every subscription closed when the test ends.

The Kafka variant is an integration test on the broker of the session fixture `servers`
(tests/conftest.py: external servers named in the environment, testcontainers, or the local stack).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest

from bus.kafka import KafkaTransport
from bus.memory import MemoryTransport
from bus.topics import TopicSpec
from bus.transport import AssignCallback, RevokeCallback, Subscription, TopicPartition, Transport


@dataclass
class Bus:
    """One transport under contract, and the topics, groups and members a test made on it."""

    kind: str
    transport: Transport
    prefix: str = field(default_factory=lambda: f"ct-{uuid.uuid4().hex[:8]}")
    topics: list[str] = field(default_factory=list)
    members: list[Subscription] = field(default_factory=list)
    _names: int = 0

    def name(self, what: str) -> str:
        self._names += 1
        return f"{self.prefix}-{what}{self._names}"

    async def topic(self, partitions: int = 4, *, max_message_bytes: int = 1_048_576) -> str:
        name = self.name("t")
        await self.transport.ensure_topics([TopicSpec(name, partitions, max_message_bytes=max_message_bytes)])
        self.topics.append(name)
        return name

    def group(self) -> str:
        return self.name("g")

    async def subscribe(
        self,
        group: str,
        topics: Sequence[str],
        *,
        on_assign: AssignCallback | None = None,
        on_revoke: RevokeCallback | None = None,
    ) -> Subscription:
        member = await self.transport.subscribe(group, topics, on_assign=on_assign, on_revoke=on_revoke)
        self.members.append(member)
        return member

    async def partitions(self, topic: str) -> frozenset[TopicPartition]:
        return frozenset((await self.transport.end_offsets([topic])).keys())


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.integration)])
def transport_target(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """Which transport a test runs on, and the Kafka bootstrap address (resolved outside the loop)."""
    if request.param == "kafka":
        return "kafka", str(request.getfixturevalue("servers").kafka_bootstrap)
    return "memory", None


@pytest.fixture
async def bus(transport_target: tuple[str, str | None]) -> AsyncIterator[Bus]:
    kind, bootstrap = transport_target
    if kind == "kafka":
        assert bootstrap is not None
        transport: Transport = KafkaTransport(bootstrap, client_id="risklab-contract", delivery_timeout=30.0)
    else:
        transport = MemoryTransport()
    await transport.start()
    harness = Bus(kind, transport)
    try:
        yield harness
    finally:
        for member in harness.members:
            with contextlib.suppress(Exception):
                await member.close()
        if isinstance(transport, KafkaTransport):
            with contextlib.suppress(Exception):
                await transport.delete_topics(harness.topics)
        await transport.close()
