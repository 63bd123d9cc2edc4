"""The Kafka transport: aiokafka with an idempotent producer and manually committed consumer groups.

Publishing: one idempotent producer (acks=all, one in-flight batch per partition, so the order
of records per partition is kept through retries). `publish` returns once the broker has the
record; `publish_many` enqueues every record and then waits for all of them. Sizes are checked
before anything is sent, against the topic's spec (or the broker's `max.message.bytes` for topics
the transport has no spec for), so an oversized event never reaches the broker and a batch of
events is refused as a whole. A topic that does not exist raises `UnknownTopic` at once (brokers
run with auto-creation off). While the broker is unreachable a publish waits and retries, up to
`delivery_timeout` seconds, then raises `DeliveryTimeout` (the record may still land later; the
idempotent producer never writes it twice, and event ids let consumers drop a republished copy).

Consuming: each `subscribe` is one `AIOKafkaConsumer` in the group, auto-commit off, reading a
group with no committed offset from the beginning. A rebalance listener calls our `on_revoke`
before partitions go and our `on_assign` after they come, and seeks to the offsets `on_assign`
returns. Kafka's classic group protocol is eager: on every rebalance all partitions are revoked
and the new assignment (possibly the same partitions) is assigned again, so `on_revoke` may name
partitions that come straight back and `on_assign` names the whole new assignment. `poll` never
returns records read under an assignment whose `on_assign` has not finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import errors as kerr
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import TopicPartition as KafkaTopicPartition

from bus.codec import Headers, encode
from bus.envelope import Envelope
from bus.errors import (
    BusError,
    CommitFailed,
    DeliveryFailed,
    DeliveryTimeout,
    MessageTooLarge,
    TransportClosed,
    UnknownTopic,
)
from bus.partitioning import check_size
from bus.topics import TopicSpec
from bus.transport import AssignCallback, Record, RecordMetadata, RevokeCallback, TopicPartition

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_SIZE = 1_048_576
DEFAULT_BATCH_SIZE = 16_384
_UNKNOWN_TOPIC = kerr.UnknownTopicOrPartitionError.errno
_TOO_LARGE = (kerr.MessageSizeTooLargeError, kerr.RecordListTooLargeError, kerr.RecordTooLargeError)


@dataclass(frozen=True)
class _TopicInfo:
    partitions: int
    limit: int
    """Largest record accepted, in bytes (the spec's, else the broker's, capped by the producer's)."""


def _wire_size(key: bytes | None, value: bytes, headers: Headers) -> int:
    """Upper bound of the bytes a record takes in a batch of its own (what the broker checks)."""
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers))


def _ktp(tp: TopicPartition) -> KafkaTopicPartition:
    return KafkaTopicPartition(tp.topic, tp.partition)


def _tp(tp: KafkaTopicPartition) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


def _consume_result(fut: asyncio.Future[Any]) -> None:
    """Retrieve a future's exception so an abandoned delivery does not log 'never retrieved'."""
    if not fut.cancelled():
        fut.exception()


class KafkaTransport:
    """The event log on Kafka: publish with an idempotent producer, consume in consumer groups."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "risklab",
        specs: Iterable[TopicSpec] = (),
        delivery_timeout: float = 120.0,
        linger_ms: int = 5,
        replication_factor: int | None = None,
        request_timeout_ms: int = 30_000,
        retry_backoff_ms: int = 200,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 1_000,
        rebalance_timeout_ms: int = 30_000,
        max_poll_interval_ms: int = 600_000,
        fetch_max_wait_ms: int = 250,
        isolation_level: str = "read_uncommitted",
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.delivery_timeout = delivery_timeout
        self._linger_ms = linger_ms
        self._replication_factor = replication_factor
        self._request_timeout_ms = request_timeout_ms
        self._retry_backoff_ms = retry_backoff_ms
        self._consumer_settings: dict[str, Any] = {
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "rebalance_timeout_ms": rebalance_timeout_ms,
            "max_poll_interval_ms": max_poll_interval_ms,
            "fetch_max_wait_ms": fetch_max_wait_ms,
            "isolation_level": isolation_level,
            "request_timeout_ms": request_timeout_ms,
            "retry_backoff_ms": retry_backoff_ms,
        }
        self._specs: dict[str, TopicSpec] = {}
        for spec in specs:
            self._specs[spec.name] = spec
        self._topics: dict[str, _TopicInfo] = {}
        self._producer: AIOKafkaProducer | None = None
        self._producer_shape: tuple[int, int] = (0, 0)
        self._producer_lock = asyncio.Lock()
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._subscriptions: set[KafkaSubscription] = set()
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the admin client and the producer, retrying until `delivery_timeout`."""
        if self._started:
            return
        deadline = self._deadline()
        self._admin = await self._retry_start(
            lambda: AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id=f"{self.client_id}-admin",
                request_timeout_ms=self._request_timeout_ms,
                retry_backoff_ms=self._retry_backoff_ms,
            ),
            deadline,
        )
        try:
            self._producer = await self._retry_start(self._new_producer, deadline)
        except BaseException:
            await self._admin.close()
            self._admin = None
            raise
        self._started = True

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            await sub.close()
        self._started = False
        producer, self._producer = self._producer, None
        admin, self._admin = self._admin, None
        offsets, self._offsets = self._offsets, None
        if producer is not None:
            await producer.stop()
        if offsets is not None:
            await offsets.stop()
        if admin is not None:
            await admin.close()

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.delivery_timeout

    @staticmethod
    def _remaining(deadline: float) -> float:
        return deadline - asyncio.get_running_loop().time()

    async def _retry_start(self, make: Any, deadline: float) -> Any:
        """Create and start a client, retrying while the broker cannot be reached."""
        while True:
            client = make()
            try:
                await client.start()
                return client
            except (kerr.KafkaConnectionError, kerr.NodeNotReadyError, kerr.KafkaTimeoutError, OSError) as exc:
                await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())
                if self._remaining(deadline) <= 0:
                    raise DeliveryTimeout(
                        f"Kafka at {self.bootstrap} unreachable for {self.delivery_timeout:.0f} s: {exc}"
                    ) from exc
                log.warning("Kafka at %s unreachable (%s); retrying", self.bootstrap, exc)
                await asyncio.sleep(min(1.0, max(self._remaining(deadline), 0)))

    def _producer_limits(self) -> tuple[int, int]:
        """(max_request_size, max_batch_size) consistent with every known topic limit.

        The producer must take the largest record any topic allows; a batch of several records
        must not exceed the smallest topic limit (aiokafka does not split a refused batch).
        """
        limits = [s.max_message_bytes for s in self._specs.values()]
        max_request = max([DEFAULT_MAX_REQUEST_SIZE, *limits])
        batch = min([DEFAULT_BATCH_SIZE, *limits])
        return max_request, batch

    def _new_producer(self) -> AIOKafkaProducer:
        max_request, batch = self._producer_limits()
        self._producer_shape = (max_request, batch)
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-producer",
            enable_idempotence=True,
            acks="all",
            linger_ms=self._linger_ms,
            max_request_size=max_request,
            max_batch_size=batch,
            request_timeout_ms=self._request_timeout_ms,
            retry_backoff_ms=self._retry_backoff_ms,
        )

    async def _live_producer(self) -> AIOKafkaProducer:
        """The producer, replaced when its sender died or the topic limits changed its shape."""
        if not self._started or self._producer is None:
            raise TransportClosed("Kafka transport is not started (or closed)")
        producer = self._producer
        sender_task = getattr(getattr(producer, "_sender", None), "sender_task", None)
        dead = sender_task is not None and sender_task.done()
        if not dead and self._producer_shape == self._producer_limits():
            return producer
        async with self._producer_lock:
            if self._producer is producer:
                log.warning("replacing the Kafka producer (%s)", "sender failed" if dead else "topic limits changed")
                new = await self._retry_start(self._new_producer, self._deadline())
                self._producer = new
                with contextlib.suppress(Exception):
                    await producer.stop()
            assert self._producer is not None
            return self._producer

    def _admin_client(self) -> AIOKafkaAdminClient:
        if not self._started or self._admin is None:
            raise TransportClosed("Kafka transport is not started (or closed)")
        return self._admin

    # -- topics ---------------------------------------------------------------------------

    async def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        """Create the missing topics with `TopicSpec.kafka_config()`; existing ones are left as they are."""
        specs = list(specs)
        admin = self._admin_client()
        for spec in specs:
            self._specs[spec.name] = spec
            self._topics.pop(spec.name, None)
        if not specs:
            return
        deadline = self._deadline()
        existing = await self._metadata([s.name for s in specs], deadline)
        missing = [s for s in specs if existing.get(s.name) is None]
        while missing:
            rf = self._replication_factor or min(3, max(1, len(admin._client.cluster.brokers())))
            new = [NewTopic(s.name, s.partitions, rf, topic_configs=s.kafka_config()) for s in missing]
            try:
                response = await admin.create_topics(new, timeout_ms=self._request_timeout_ms)
                errors = response.to_object()["topic_errors"]
            except (kerr.KafkaError, TimeoutError) as exc:  # broker unreachable or restarting
                errors = [{"topic": s.name, "error_code": -1, "error_message": repr(exc)} for s in missing]
            retry = []
            for err in errors:
                code = err["error_code"]
                if code in (0, kerr.TopicAlreadyExistsError.errno):
                    continue
                reason = f"{kerr.for_code(code).__name__} {err['error_message'] or ''}".strip()
                transient = code == -1 or code == kerr.InvalidReplicationFactorError.errno  # e.g. broker fenced
                transient = transient or getattr(kerr.for_code(code), "retriable", False)
                if not transient or self._remaining(deadline) <= 0:
                    raise BusError(f"creating topic {err['topic']!r} failed: {reason}")
                log.warning("creating topic %r: %s; retrying", err["topic"], reason)
                retry.append(err["topic"])
            created = [s.name for s in missing if s.name not in retry]
            if created:
                log.info("created topics %s", created)
            missing = [s for s in missing if s.name in retry]
            if missing:
                await asyncio.sleep(0.5)
        await self._wait_topics_ready([s.name for s in specs])

    async def delete_topics(self, names: Sequence[str]) -> None:
        """Delete topics (tests and tooling); missing ones are ignored."""
        if not names:
            return
        response = await self._admin_client().delete_topics(list(names), timeout_ms=self._request_timeout_ms)
        for err in response.to_object()["topic_error_codes"]:
            if err["error_code"] not in (0, _UNKNOWN_TOPIC):
                raise BusError(f"deleting topic {err['topic']!r} failed: {kerr.for_code(err['error_code']).__name__}")
        for name in names:
            self._topics.pop(name, None)

    async def _metadata(self, topics: Sequence[str], deadline: float) -> dict[str, int | None]:
        """Partition count of each topic (None when it does not exist), retrying while unreachable.

        A topic whose partitions have no leader yet (just created) is reported when they have one.
        """
        admin = self._admin_client()
        client = admin._client
        request = MetadataRequest(list(topics), allow_auto_topic_creation=False)
        last: Exception | None = None
        while True:
            node = client.get_random_node()
            if node is not None:
                try:
                    response = await client.send(node, request)
                except kerr.KafkaError as exc:
                    last = exc
                else:
                    out: dict[str, int | None] = {}
                    pending = False
                    for t in response.to_object()["topics"]:
                        code = t["error_code"]
                        if code == 0 and all(p["leader"] >= 0 for p in t["partitions"]):
                            out[t["topic"]] = len(t["partitions"])
                        elif code == _UNKNOWN_TOPIC:
                            out[t["topic"]] = None
                        else:
                            pending = True
                            last = kerr.for_code(code)() if code else kerr.LeaderNotAvailableError()
                    if not pending:
                        return out
            else:
                client.force_metadata_update()
            if self._remaining(deadline) <= 0:
                raise DeliveryTimeout(f"no metadata for {list(topics)} from {self.bootstrap}: {last!r}")
            await asyncio.sleep(self._retry_backoff_ms / 1000)

    async def _wait_topics_ready(self, names: Sequence[str]) -> None:
        deadline = self._deadline()
        while True:
            found = await self._metadata(names, deadline)
            if all(found.get(n) is not None for n in names):
                return
            if self._remaining(deadline) <= 0:
                missing = [n for n in names if found.get(n) is None]
                raise DeliveryTimeout(f"topics {missing} not visible on {self.bootstrap} after creation")
            await asyncio.sleep(0.1)

    async def _broker_limit(self, topic: str) -> int | None:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": None})
        try:
            responses = await self._admin_client().describe_configs([resource])
        except kerr.KafkaError as exc:
            log.warning("cannot read max.message.bytes of %r: %r", topic, exc)
            return None
        for response in responses:
            for res in response.to_object()["resources"]:
                for entry in res["config_entries"]:
                    if entry["config_names"] == "max.message.bytes" and entry["config_value"]:
                        return int(entry["config_value"])
        return None

    async def _topic(self, topic: str, deadline: float | None = None) -> _TopicInfo:
        """What the transport knows of an existing topic; `UnknownTopic` when there is none."""
        info = self._topics.get(topic)
        if info is not None:
            return info
        partitions = (await self._metadata([topic], deadline or self._deadline())).get(topic)
        if partitions is None:
            raise UnknownTopic(f"topic {topic!r} does not exist on {self.bootstrap} (auto-creation is off)")
        max_request, _ = self._producer_limits()
        spec = self._specs.get(topic)
        if spec is not None:
            limit = spec.max_message_bytes
        else:
            limit = min(await self._broker_limit(topic) or max_request, max_request)
        info = _TopicInfo(partitions, limit)
        self._topics[topic] = info
        return info

    # -- publishing -----------------------------------------------------------------------

    def _check(self, topic: str, info: _TopicInfo, key: bytes | None, value: bytes, headers: Headers) -> None:
        spec = self._specs.get(topic) or TopicSpec(topic, info.partitions, max_message_bytes=info.limit)
        check_size(spec, key, value, headers)
        wire = _wire_size(key, value, headers)
        if wire > info.limit:  # the broker counts the record's framing too
            raise MessageTooLarge(topic, wire, info.limit)

    async def publish(self, topic: str, envelope: Envelope) -> RecordMetadata:
        enc = encode(envelope)
        return await self.publish_raw(topic, enc.key, enc.value, enc.headers)

    async def publish_raw(self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()) -> RecordMetadata:
        return (await self._publish(topic, [(key, value, tuple(headers))]))[0]

    async def publish_many(self, topic: str, envelopes: Sequence[Envelope]) -> list[RecordMetadata]:
        encoded = [encode(e) for e in envelopes]
        return await self._publish(topic, [(e.key, e.value, e.headers) for e in encoded])

    async def publish_records(self, records: Sequence[tuple[str, bytes | None, bytes, Headers]]) -> None:
        await self._publish_to(list(records))

    async def _publish(
        self, topic: str, records: Sequence[tuple[bytes | None, bytes, Headers]]
    ) -> list[RecordMetadata]:
        return await self._publish_to([(topic, key, value, headers) for key, value, headers in records])

    async def _publish_to(self, records: list[tuple[str, bytes | None, bytes, Headers]]) -> list[RecordMetadata]:
        deadline = self._deadline()
        producer = await self._live_producer()
        infos = {topic: await self._topic(topic, deadline) for topic in dict.fromkeys(r[0] for r in records)}
        for topic, key, value, headers in records:  # all or nothing: every size is checked before any send
            self._check(topic, infos[topic], key, value, headers)
        if not records:
            return []
        futures = [
            await self._enqueue(producer, topic, key, value, tuple(headers), deadline)
            for topic, key, value, headers in records
        ]
        remaining = max(self._remaining(deadline), 0.001)
        done, pending = await asyncio.wait(futures, timeout=remaining)
        for fut in pending:
            fut.add_done_callback(_consume_result)
        for fut in futures:
            if fut in done and fut.exception() is not None:
                for other in futures:
                    if other in done:
                        _consume_result(other)
                topic, *record = records[futures.index(fut)]
                raise self._delivery_error(topic, tuple(record), fut.exception())
        if pending:
            raise DeliveryTimeout(
                f"{len(pending)} of {len(futures)} records to {sorted(infos)} not acknowledged by {self.bootstrap} "
                f"within {self.delivery_timeout:.0f} s"
            )
        return [
            RecordMetadata(r[0], m.partition, m.offset)
            for r, m in zip(records, (f.result() for f in futures), strict=True)
        ]

    async def _enqueue(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers,
        deadline: float,
    ) -> asyncio.Future[Any]:
        """Hand one record to the producer; retried while the producer cannot get the topic's metadata."""
        while True:
            try:
                async with asyncio.timeout(max(self._remaining(deadline), 0.001)):
                    return await producer.send(topic, value=value, key=key, headers=list(headers))
            except kerr.MessageSizeTooLargeError as exc:
                raise MessageTooLarge(topic, _wire_size(key, value, headers), self._producer_shape[0]) from exc
            except (kerr.UnknownTopicOrPartitionError, kerr.KafkaTimeoutError, TimeoutError) as exc:
                # The topic exists (checked before): the broker is unreachable or the buffer is full.
                if self._remaining(deadline) <= 0:
                    raise DeliveryTimeout(
                        f"could not hand a record for {topic!r} to {self.bootstrap} within "
                        f"{self.delivery_timeout:.0f} s: {exc!r}"
                    ) from exc
                await asyncio.sleep(self._retry_backoff_ms / 1000)

    def _delivery_error(
        self, topic: str, record: tuple[bytes | None, bytes, Headers], exc: BaseException | None
    ) -> BusError:
        key, value, headers = record
        if isinstance(exc, _TOO_LARGE):
            info = self._topics.get(topic)
            err: BusError = MessageTooLarge(topic, _wire_size(key, value, headers), info.limit if info else 0)
        elif isinstance(exc, kerr.UnknownTopicOrPartitionError):
            self._topics.pop(topic, None)
            err = UnknownTopic(f"topic {topic!r} does not exist on {self.bootstrap}")
        else:
            err = DeliveryFailed(f"publishing to {topic!r} failed: {exc!r}")
        err.__cause__ = exc
        return err

    # -- consuming ------------------------------------------------------------------------

    async def subscribe(
        self,
        group: str,
        topics: Sequence[str],
        *,
        on_assign: AssignCallback | None = None,
        on_revoke: RevokeCallback | None = None,
    ) -> KafkaSubscription:
        self._admin_client()
        deadline = self._deadline()
        for topic in topics:
            await self._topic(topic, deadline)
        consumer = await self._retry_start(
            lambda: AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                client_id=f"{self.client_id}-{group}",
                group_id=group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **self._consumer_settings,
            ),
            deadline,
        )
        sub = KafkaSubscription(self, consumer, group, tuple(topics), on_assign, on_revoke)
        consumer.subscribe(list(topics), listener=_Listener(sub))
        self._subscriptions.add(sub)
        return sub

    async def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        deadline = self._deadline()
        tps = [TopicPartition(t, p) for t in topics for p in range((await self._topic(t, deadline)).partitions)]
        if self._offsets is None:
            self._offsets = await self._retry_start(
                lambda: AIOKafkaConsumer(
                    bootstrap_servers=self.bootstrap,
                    client_id=f"{self.client_id}-offsets",
                    enable_auto_commit=False,
                    request_timeout_ms=self._request_timeout_ms,
                    retry_backoff_ms=self._retry_backoff_ms,
                ),
                deadline,
            )
        try:
            async with asyncio.timeout(max(self._remaining(deadline), 0.001)):
                found = await self._offsets.end_offsets([_ktp(tp) for tp in tps])
        except (kerr.KafkaTimeoutError, TimeoutError) as exc:
            raise DeliveryTimeout(f"end offsets of {list(topics)} not read from {self.bootstrap}: {exc!r}") from exc
        return {tp: found[_ktp(tp)] for tp in tps}


class _Listener(ConsumerRebalanceListener):
    def __init__(self, sub: KafkaSubscription) -> None:
        self._sub = sub

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._sub._revoked(frozenset(_tp(tp) for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._sub._assigned(frozenset(_tp(tp) for tp in assigned))


class KafkaSubscription:
    """A member of a consumer group on Kafka."""

    def __init__(
        self,
        transport: KafkaTransport,
        consumer: AIOKafkaConsumer,
        group: str,
        topics: tuple[str, ...],
        on_assign: AssignCallback | None,
        on_revoke: RevokeCallback | None,
    ) -> None:
        self._transport = transport
        self._consumer = consumer
        self.group = group
        self.topics = topics
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._ready = asyncio.Event()  # set once on_assign of the current assignment has finished
        self._epoch = 0  # bumped at every revocation
        self._callback_error: BaseException | None = None
        self._closed = False

    # -- rebalance callbacks (run by aiokafka's coordination task) ------------------------

    async def _revoked(self, revoked: frozenset[TopicPartition]) -> None:
        self._epoch += 1
        self._ready.clear()
        if revoked and self._on_revoke is not None:
            try:
                await self._on_revoke(revoked)
            except Exception as exc:
                log.exception("on_revoke of group %s failed for %s", self.group, sorted(revoked))
                self._callback_error = exc

    async def _assigned(self, assigned: frozenset[TopicPartition]) -> None:
        try:
            if assigned and self._on_assign is not None:
                starts = await self._on_assign(assigned)
                for tp, offset in starts.items():
                    if tp in assigned:
                        self._consumer.seek(_ktp(tp), offset)
        except Exception as exc:
            log.exception("on_assign of group %s failed for %s", self.group, sorted(assigned))
            self._callback_error = exc
        finally:
            self._ready.set()

    def _raise_callback_error(self) -> None:
        if self._callback_error is not None:
            exc, self._callback_error = self._callback_error, None
            raise exc

    # -- the Subscription protocol --------------------------------------------------------

    def assignment(self) -> frozenset[TopicPartition]:
        if self._closed:
            return frozenset()
        return frozenset(_tp(tp) for tp in self._consumer.assignment())

    async def poll(self, timeout: float = 1.0, max_records: int = 1000) -> dict[TopicPartition, list[Record]]:
        if self._closed:
            raise TransportClosed("subscription is closed")
        self._raise_callback_error()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        while True:
            remaining = deadline - loop.time()
            if not self._ready.is_set():
                if remaining <= 0:
                    return {}
                try:
                    async with asyncio.timeout(remaining):
                        await self._ready.wait()
                except TimeoutError:
                    return {}
                self._raise_callback_error()
                continue
            epoch = self._epoch
            try:
                # getmany waits for a rebalance in progress without bound: cap it. It can only be
                # cancelled before it takes records from its buffer, so nothing is lost.
                async with asyncio.timeout(max(remaining, 0.0) + 0.5):
                    batch = await self._consumer.getmany(
                        timeout_ms=max(int(remaining * 1000), 0), max_records=max_records
                    )
            except TimeoutError:
                batch = {}
            except kerr.ConsumerStoppedError as exc:
                raise TransportClosed("subscription is closed") from exc
            except kerr.KafkaError as exc:
                if not exc.retriable:
                    raise BusError(f"consumer of group {self.group} failed: {exc!r}") from exc
                log.warning("consumer of group %s: %r; retrying", self.group, exc)
                await asyncio.sleep(min(0.2, max(deadline - loop.time(), 0.0)))
                batch = {}
            if epoch != self._epoch or not self._ready.is_set():
                self._rewind(batch)  # read across a rebalance: read again under the new assignment
                if loop.time() >= deadline:
                    return {}
                continue
            if batch or loop.time() >= deadline:
                return {
                    _tp(tp): [
                        Record(
                            r.topic,
                            r.partition,
                            r.offset,
                            r.key,
                            r.value if r.value is not None else b"",
                            tuple((k, bytes(v or b"")) for k, v in r.headers),
                            r.timestamp,
                        )
                        for r in records
                    ]
                    for tp, records in batch.items()
                    if records
                }

    def _rewind(self, batch: Mapping[KafkaTopicPartition, list[Any]]) -> None:
        owned = self._consumer.assignment()
        for tp, records in batch.items():
            if records and tp in owned:
                self._consumer.seek(tp, records[0].offset)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self._closed:
            raise TransportClosed("subscription is closed")
        if not offsets:
            return
        owned = self.assignment()
        for tp in offsets:
            if tp not in owned:
                raise CommitFailed(f"{tp.topic}[{tp.partition}] is not assigned to this member of {self.group}")
        try:
            async with asyncio.timeout(self._transport.delivery_timeout):
                await self._consumer.commit({_ktp(tp): off for tp, off in offsets.items()})
        except (kerr.CommitFailedError, kerr.IllegalStateError) as exc:
            raise CommitFailed(f"commit for group {self.group} failed: {exc}") from exc
        except TimeoutError as exc:
            raise CommitFailed(
                f"commit for group {self.group} not acknowledged within {self._transport.delivery_timeout:.0f} s"
            ) from exc

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self.assignment():
            raise CommitFailed(f"cannot seek {tp.topic}[{tp.partition}]: not assigned")
        try:
            self._consumer.seek(_ktp(tp), offset)
        except kerr.IllegalStateError as exc:
            raise CommitFailed(f"cannot seek {tp.topic}[{tp.partition}]: {exc}") from exc

    async def close(self) -> None:
        """Leave the group (the partitions go to the other members at once)."""
        if self._closed:
            return
        self._closed = True
        self._transport._subscriptions.discard(self)
        await self._consumer.stop()
