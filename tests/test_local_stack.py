"""The local stack really runs: a Kafka broker and a PostgreSQL that keep their data.

The integration tests use the session's `servers` (the local stack unless Docker or external
servers are configured, see tests/conftest.py); the tests of `LocalStack` itself need it to be
the local stack.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from risklab.stack import KafkaBroker, LocalPostgres, StackError
from risklab.stack.kafka import find_java, metadata_ready, new_cluster_id

# -- helpers ----------------------------------------------------------------------------------


async def create_topic(bootstrap: str, partitions: int = 3) -> str:
    name = f"stack-test-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        for _ in range(100):  # metadata of a new topic reaches the broker's cache asynchronously
            if name in await admin.list_topics():
                break
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    return name


async def produce(bootstrap: str, topic: str, count: int, prefix: str = "m") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(count):
            await producer.send(topic, key=f"k{i % 7}".encode(), value=f"{prefix}{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, topic: str, expected: int, group: str | None = None, timeout: float = 60):
    """Read `expected` records of `topic` from the committed offset (or the beginning)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[str] = []
    try:
        deadline = time.monotonic() + timeout
        while len(values) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                values.extend(r.value.decode() for r in records)
        if group is not None:
            await consumer.commit()
    finally:
        await consumer.stop()
    return values


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    return sum(ends.values())


async def committed_total(bootstrap: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for meta in offsets.values())


def require_control(servers) -> None:
    if not servers.controllable:
        pytest.skip(f"fault controls need servers this session started (have {servers.kind})")


def require_local_stack(servers):
    if servers.kind != "local stack":
        pytest.skip(f"needs the local stack (have {servers.kind})")
    return servers.stack


# -- Kafka ------------------------------------------------------------------------------------


@pytest.mark.integration
async def test_broker_answers_metadata(servers):
    host, _, port = servers.kafka_bootstrap.split(",")[0].rpartition(":")
    assert metadata_ready(host, int(port))
    admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka_bootstrap)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert len(cluster["brokers"]) == 1
    assert cluster["cluster_id"]


@pytest.mark.integration
async def test_produce_consume_round_trip(servers):
    topic = await create_topic(servers.kafka_bootstrap, partitions=3)
    await produce(servers.kafka_bootstrap, topic, 50)
    values = await consume_all(servers.kafka_bootstrap, topic, 50, group=f"g-{topic}")
    assert sorted(values) == sorted(f"m{i}" for i in range(50))


@pytest.mark.integration
async def test_topics_are_not_auto_created(servers):
    topic = f"stack-test-absent-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap, request_timeout_ms=1000)
    await producer.start()
    try:
        with pytest.raises(Exception):  # noqa: B017 - aiokafka raises a timeout for a missing topic
            await producer.send_and_wait(topic, b"x")
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka_bootstrap)
    await admin.start()
    try:
        assert topic not in await admin.list_topics()
    finally:
        await admin.close()


@pytest.mark.integration
async def test_broker_restart_keeps_topics_data_and_offsets(servers):
    require_control(servers)
    bootstrap = servers.kafka_bootstrap
    topic = await create_topic(bootstrap, partitions=2)
    group = f"g-{topic}"
    await produce(bootstrap, topic, 20, prefix="a")
    assert len(await consume_all(bootstrap, topic, 20, group=group)) == 20  # commits 20

    servers.restart_kafka()  # controlled shutdown + start
    assert await end_offsets(bootstrap, topic, 2) == 20
    # Right after a restart the group coordinator may still be loading __consumer_offsets and
    # answer with no offsets; the committed offsets must be back once it has loaded.
    deadline = time.monotonic() + 30
    committed = await committed_total(bootstrap, group)
    while committed != 20 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        committed = await committed_total(bootstrap, group)
    assert committed == 20
    await produce(bootstrap, topic, 10, prefix="b")

    servers.kill_kafka()  # crash: SIGKILL, then start again
    servers.start_kafka()
    assert await end_offsets(bootstrap, topic, 2) == 30
    rest = await consume_all(bootstrap, topic, 10, group=group)
    assert sorted(rest) == sorted(f"b{i}" for i in range(10))
    everything = await consume_all(bootstrap, topic, 30)
    assert len(everything) == 30


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.mark.integration
async def test_postgres_accepts_connections(servers, database_url):
    assert database_url.rsplit("/", 1)[1].startswith("risklab_test_")
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT current_database()") == database_url.rsplit("/", 1)[1]
        assert await conn.fetchval("SHOW fsync") == "on"
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        await conn.execute("INSERT INTO t VALUES (1, 'one')")
        assert await conn.fetchval("SELECT v FROM t WHERE id = 1") == "one"
    finally:
        await conn.close()
    # the main database exists too
    conn = await asyncpg.connect(servers.database_url)
    await conn.close()


@pytest.mark.integration
async def test_postgres_stop_start_and_crash_keep_data(servers, database_url):
    require_control(servers)
    conn = await asyncpg.connect(database_url)
    await conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    await conn.execute("INSERT INTO t VALUES (1, 'before-stop')")
    await conn.close()

    servers.stop_postgres()
    with pytest.raises(OSError):
        await asyncpg.connect(database_url, timeout=5)
    servers.start_postgres()

    conn = await asyncpg.connect(database_url)
    assert await conn.fetchval("SELECT v FROM t WHERE id = 1") == "before-stop"
    await conn.execute("INSERT INTO t VALUES (2, 'before-crash')")  # committed: must survive a crash
    await conn.close()

    servers.kill_postgres()
    servers.start_postgres()
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT id, v FROM t ORDER BY id")
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [(1, "before-stop"), (2, "before-crash")]


# -- LocalStack itself ------------------------------------------------------------------------


@pytest.mark.integration
def test_local_stack_up_is_idempotent(servers):
    stack = require_local_stack(servers)
    before = stack.status()
    assert before.running
    assert before.kafka.address == servers.kafka_bootstrap
    assert before.postgres.address in servers.database_url
    t0 = time.monotonic()
    after = stack.up()
    assert time.monotonic() - t0 < 10
    assert after.kafka.pid == before.kafka.pid
    assert after.postgres.pid == before.postgres.pid


def _taken_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def test_kafka_refuses_a_taken_port(tmp_path: Path):
    with _taken_port() as sock:
        port = sock.getsockname()[1]
        broker = KafkaBroker(tmp_path, port, port + 1 if port < 65535 else port - 1)
        with pytest.raises(StackError, match=f"port 127.0.0.1:{port} is taken"):
            broker.start()
        assert not broker.status().running


def test_postgres_refuses_a_taken_port(tmp_path: Path):
    with _taken_port() as sock:
        port = sock.getsockname()[1]
        pg = LocalPostgres(tmp_path, port)
        with pytest.raises(StackError, match=f"port 127.0.0.1:{port} is taken"):
            pg.start()
        assert pg.url == f"postgresql://postgres@127.0.0.1:{port}/risklab"


def test_cluster_ids_look_like_kafka_uuids():
    ids = {new_cluster_id() for _ in range(2000)}  # about 31 of 2000 raw draws start with '-'
    assert len(ids) == 2000
    assert all(len(i) == 22 and "=" not in i and not i.startswith("-") for i in ids)


@pytest.mark.integration
def test_storage_formats_with_a_cluster_id_that_starts_with_a_dash(servers, tmp_path: Path):
    """A stored id beginning with '-' (as older versions could write) must not be read as an option."""
    stack = require_local_stack(servers)
    broker = KafkaBroker(tmp_path, 29991, 29992)
    broker._write_config()
    broker.lib.symlink_to(stack.kafka.lib, target_is_directory=True)
    broker.cluster_id_file.write_text("-AxVy3kaQ6C1fPE9cmDGDw\n")
    broker._format_storage(find_java())
    assert "cluster.id=-AxVy3kaQ6C1fPE9cmDGDw" in (broker.data / "meta.properties").read_text()


def test_missing_java_and_maven_are_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import shutil

    from risklab.stack.kafka import find_java

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(StackError, match="no `java` was found"):
        find_java()
    with pytest.raises(StackError, match="`mvn` is not on PATH"):
        KafkaBroker(tmp_path, 1, 2).resolve()
