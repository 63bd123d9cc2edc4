"""Shared pytest fixtures. Each section is self-contained; append new sections below."""

from __future__ import annotations

# =========================================================================================
# Test servers: a real Kafka broker and a real PostgreSQL for integration tests.
#
#   servers       (session)  -> Servers: .kafka_bootstrap, .database_url, fault controls
#   database_url  (function) -> URL of a fresh database `risklab_test_<uuid8>`, dropped after
#
# Where the servers come from, in this order:
#   a) RISKLAB_KAFKA_BOOTSTRAP and RISKLAB_DATABASE_URL both set: those (not controllable);
#   b) a working Docker engine (`docker info` succeeds): testcontainers Kafka + PostgreSQL;
#   c) otherwise the local stack (risklab.stack) under <repo>/.risklab-test/ on ports
#      29192/29193/25532 (below the ephemeral port range), stopped at session end when this session started it.
# RISKLAB_TEST_SERVERS=external|docker|local forces one way. The servers are brought up the
# first time a test asks for them. With CI set, failing to get servers is an error; elsewhere
# the tests that need them are skipped with the reason.
# =========================================================================================
import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

_T = TypeVar("_T")
REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_STACK_HOME = REPO_ROOT / ".risklab-test"
TEST_KAFKA_PORT = 29192
TEST_KAFKA_CONTROLLER_PORT = 29193
TEST_POSTGRES_PORT = 25532
DOCKER_KAFKA_IMAGE = "apache/kafka:4.1.1"
DOCKER_POSTGRES_IMAGE = "postgres:18"


class ServersNotControllable(RuntimeError):
    """A fault control was asked of servers this test session did not start (external ones)."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def run_async(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion on a private loop in a worker thread.

    Usable from sync fixtures and from inside a running loop alike, and it leaves the session
    loop of pytest-asyncio alone.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="risklab-test-async") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _pg_url_with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _asyncpg_dsn(url: str) -> str:
    """asyncpg takes postgresql:// or postgres:// only (strip a SQLAlchemy-style +driver)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def _wait_postgres(url: str, timeout: float) -> None:
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    deadline = time.monotonic() + timeout
    while True:
        try:
            run_async(probe)
            return
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"PostgreSQL at {url} not reachable within {timeout:.0f} s: {exc!r}") from exc
            time.sleep(0.5)


def _wait_kafka(bootstrap: str, timeout: float) -> None:
    from risklab.stack.kafka import metadata_ready

    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    deadline = time.monotonic() + timeout
    last: object = "no answer"
    while True:
        try:
            if metadata_ready(host.strip("[]"), int(port), timeout=5.0):
                return
            last = "metadata listed no broker"
        except OSError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise RuntimeError(f"Kafka at {bootstrap} not ready within {timeout:.0f} s: {last!r}")
        time.sleep(0.5)


class Servers:
    """A Kafka broker and a PostgreSQL server for tests, with fault controls where possible."""

    kind = "abstract"

    def __init__(self, kafka_bootstrap: str, database_url: str) -> None:
        self.kafka_bootstrap = kafka_bootstrap
        self.database_url = database_url

    def __repr__(self) -> str:
        return f"<{type(self).__name__} kafka={self.kafka_bootstrap} postgres={self.database_url}>"

    def _refuse(self, action: str) -> None:
        raise ServersNotControllable(
            f"cannot {action}: the test servers are {self.kind} ({self.kafka_bootstrap}, {self.database_url}) "
            "and this session does not control them. Unset RISKLAB_KAFKA_BOOTSTRAP/RISKLAB_DATABASE_URL "
            "to run fault tests on servers the session starts itself."
        )

    @property
    def controllable(self) -> bool:
        return False

    def stop_kafka(self) -> None:
        """Controlled shutdown of the broker (data kept)."""
        self._refuse("stop Kafka")

    def start_kafka(self) -> None:
        """Start the broker again and wait until it answers metadata requests."""
        self._refuse("start Kafka")

    def restart_kafka(self) -> None:
        self.stop_kafka()
        self.start_kafka()

    def kill_kafka(self) -> None:
        """Crash the broker (SIGKILL); start_kafka() brings it back with its data."""
        self._refuse("kill Kafka")

    def stop_postgres(self) -> None:
        """Fast shutdown of PostgreSQL (data kept)."""
        self._refuse("stop PostgreSQL")

    def start_postgres(self) -> None:
        self._refuse("start PostgreSQL")

    def restart_postgres(self) -> None:
        self.stop_postgres()
        self.start_postgres()

    def kill_postgres(self) -> None:
        """Crash PostgreSQL (SIGKILL); start_postgres() recovers it from its WAL."""
        self._refuse("kill PostgreSQL")

    def close(self) -> None:
        """Release what this session started."""


class ExternalServers(Servers):
    kind = "external"


class LocalStackServers(Servers):
    """The local stack (risklab.stack) under <repo>/.risklab-test/.

    Components this session starts are stopped at its end. Components found running are reused
    and left running, unless the test session that started them is gone (it crashed or was
    killed): those are adopted and stopped at the end, so they don't linger.
    """

    kind = "local stack"

    def __init__(self, home: Path) -> None:
        import psutil

        from risklab.settings import Settings
        from risklab.stack import LocalStack

        settings = Settings(
            home=home,
            kafka_port=TEST_KAFKA_PORT,
            kafka_controller_port=TEST_KAFKA_CONTROLLER_PORT,
            postgres_port=TEST_POSTGRES_PORT,
        )
        self.stack = LocalStack(settings)
        self._owner_file = Path(home) / ".test-session.pid"
        status = self.stack.status()
        owner = None
        try:
            owner = int(self._owner_file.read_text().strip())
        except (OSError, ValueError):
            pass
        orphaned = owner is not None and owner != os.getpid() and not psutil.pid_exists(owner)
        self._kafka_was_running = status.kafka.running and not orphaned
        self._postgres_was_running = status.postgres.running and not orphaned
        try:
            self.stack.up()
        except Exception:
            self.close()
            raise
        if not (self._kafka_was_running and self._postgres_was_running):
            self._owner_file.write_text(f"{os.getpid()}\n")
        super().__init__(self.stack.kafka_bootstrap, self.stack.database_url)

    @property
    def controllable(self) -> bool:
        return True

    def stop_kafka(self) -> None:
        self.stack.kafka.stop()

    def start_kafka(self) -> None:
        self.stack.kafka.start()

    def restart_kafka(self) -> None:
        self.stack.kafka.restart()

    def kill_kafka(self) -> None:
        self.stack.kafka.kill()

    def stop_postgres(self) -> None:
        self.stack.postgres.stop()

    def start_postgres(self) -> None:
        self.stack.postgres.start()

    def restart_postgres(self) -> None:
        self.stack.postgres.restart()

    def kill_postgres(self) -> None:
        self.stack.postgres.kill()

    def close(self) -> None:
        # Stop what this session started; leave running what it found running (someone else's).
        errors = []
        if not self._kafka_was_running:
            try:
                self.stack.kafka.stop()
            except Exception as exc:
                errors.append(exc)
        if not self._postgres_was_running:
            try:
                self.stack.postgres.stop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise RuntimeError(f"stopping the test stack failed: {errors}")
        try:
            if int(self._owner_file.read_text().strip()) == os.getpid():
                self._owner_file.unlink()
        except (OSError, ValueError):
            pass


class DockerServers(Servers):
    """testcontainers: Apache Kafka (KRaft) and PostgreSQL in Docker, on fixed host ports.

    Each server listens inside its container on the same port number as on the host, bound
    explicitly, so stopping and starting a container (fault tests) keeps the addresses, and with
    them Kafka's advertised listener, unchanged. Kafka's advertised address is only known once its
    container runs (it depends on how testcontainers reaches containers), so the container waits
    for an env file that sets it; the file stays in the container and is read again on restarts.
    """

    kind = "docker"
    KAFKA_ENV_FILE = "/tmp/risklab-kafka.env"

    def __init__(self) -> None:
        from testcontainers.core.container import DockerContainer

        from risklab.stack.kafka import new_cluster_id

        self._kafka: Any = None
        self._postgres: Any = None
        try:
            kafka_port = _free_port()
            kafka = DockerContainer(DOCKER_KAFKA_IMAGE).with_bind_ports(kafka_port, kafka_port)
            for key, value in {
                "KAFKA_NODE_ID": "1",
                "KAFKA_PROCESS_ROLES": "broker,controller",
                "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{kafka_port},CONTROLLER://127.0.0.1:9093",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
                "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@127.0.0.1:9093",
                "CLUSTER_ID": new_cluster_id(),
                "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
                "KAFKA_NUM_PARTITIONS": "6",
                "KAFKA_DEFAULT_REPLICATION_FACTOR": "1",
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
                "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
                "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
                "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
                "KAFKA_BROKER_SESSION_TIMEOUT_MS": "6000",
                "KAFKA_BROKER_HEARTBEAT_INTERVAL_MS": "1000",
                "KAFKA_HEAP_OPTS": "-Xms512m -Xmx1g",
            }.items():
                kafka.with_env(key, value)
            env_file = self.KAFKA_ENV_FILE
            kafka.with_command(
                [
                    "bash",
                    "-c",
                    f"while [ ! -f {env_file} ]; do sleep 0.1; done; . {env_file}; exec /etc/kafka/docker/run",
                ]
            )
            self._kafka = kafka.start()
            host = kafka.get_container_host_ip()
            port = kafka.get_exposed_port(kafka_port)
            _put_file(kafka, env_file, f"export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://{host}:{port}\n")
            bootstrap = f"{host}:{port}"
            _wait_kafka(bootstrap, 120)

            pg_port = _free_port()
            postgres = DockerContainer(DOCKER_POSTGRES_IMAGE).with_bind_ports(5432, pg_port)
            postgres.with_env("POSTGRES_USER", "postgres")
            postgres.with_env("POSTGRES_PASSWORD", "postgres")
            postgres.with_env("POSTGRES_DB", "risklab")
            postgres.with_command(
                ["postgres", "-c", "max_connections=200", "-c", "fsync=on", "-c", "synchronous_commit=on"]
            )
            self._postgres = postgres.start()
            pg_host = postgres.get_container_host_ip()
            database_url = f"postgresql://postgres:postgres@{pg_host}:{postgres.get_exposed_port(5432)}/risklab"
            # The image's entrypoint first runs a socket-only server while it initialises, then the
            # real one: wait until TCP connections work.
            _wait_postgres(database_url, 120)
        except Exception:
            self.close()
            raise
        super().__init__(bootstrap, database_url)

    @property
    def controllable(self) -> bool:
        return True

    def stop_kafka(self) -> None:
        self._kafka.get_wrapped_container().stop(timeout=60)

    def start_kafka(self) -> None:
        self._kafka.get_wrapped_container().start()
        _wait_kafka(self.kafka_bootstrap, 120)

    def kill_kafka(self) -> None:
        self._kafka.get_wrapped_container().kill()

    def stop_postgres(self) -> None:
        self._postgres.get_wrapped_container().stop(timeout=60)

    def start_postgres(self) -> None:
        self._postgres.get_wrapped_container().start()
        _wait_postgres(self.database_url, 120)

    def kill_postgres(self) -> None:
        self._postgres.get_wrapped_container().kill()

    def close(self) -> None:
        for container in (self._kafka, self._postgres):
            if container is not None:
                try:
                    container.stop()
                except Exception as exc:  # the Ryuk reaper removes it anyway
                    warnings.warn(f"removing test container failed: {exc!r}", stacklevel=1)
        self._kafka = self._postgres = None


def _put_file(container: Any, path: str, content: str) -> None:
    """Write a file into a running container (as testcontainers' KafkaContainer does)."""
    import io
    import tarfile

    data = content.encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo(name=path.lstrip("/"))
        info.size = len(data)
        info.mtime = int(time.time())
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    archive.seek(0)
    container.get_wrapped_container().put_archive("/", archive.getvalue())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def docker_works() -> tuple[bool, str]:
    """Whether a Docker engine answers (`docker info`), with the reason when not."""
    if shutil.which("docker") is None:
        return False, "no docker client on PATH"
    try:
        proc = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`docker info` failed: {exc}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return False, f"`docker info` failed: {last}"
    return True, "docker engine answers"


def obtain_servers() -> Servers:
    """Servers for this session, by the selection order above; RuntimeError saying why none."""
    forced = os.environ.get("RISKLAB_TEST_SERVERS", "").strip().lower()
    if forced not in ("", "external", "docker", "local"):
        raise RuntimeError(f"RISKLAB_TEST_SERVERS={forced!r}: expected external, docker or local")
    bootstrap = os.environ.get("RISKLAB_KAFKA_BOOTSTRAP", "").strip()
    database_url = os.environ.get("RISKLAB_DATABASE_URL", "").strip()
    attempts: list[str] = []

    if forced in ("", "external"):
        if bootstrap and database_url:
            _wait_kafka(bootstrap, 30)
            _wait_postgres(database_url, 30)
            return ExternalServers(bootstrap, database_url)
        if bootstrap or database_url or forced == "external":
            raise RuntimeError(
                "external test servers need both RISKLAB_KAFKA_BOOTSTRAP and RISKLAB_DATABASE_URL "
                f"(got bootstrap={bootstrap or None!r}, database url set={bool(database_url)})"
            )

    if forced in ("", "docker"):
        ok, why = docker_works()
        if ok:
            try:
                return DockerServers()
            except Exception as exc:
                if forced == "docker":
                    raise
                attempts.append(f"docker (testcontainers) failed: {exc!r}")
                warnings.warn(f"testcontainers failed, falling back to the local stack: {exc!r}", stacklevel=1)
        elif forced == "docker":
            raise RuntimeError(f"RISKLAB_TEST_SERVERS=docker but {why}")
        else:
            attempts.append(f"docker: {why}")

    try:
        return LocalStackServers(TEST_STACK_HOME)
    except Exception as exc:
        attempts.append(f"local stack under {TEST_STACK_HOME}: {exc}")
        raise RuntimeError("no Kafka/PostgreSQL for integration tests:\n" + "\n".join(attempts)) from exc


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """A real Kafka broker and PostgreSQL for this test session (see the section header)."""
    try:
        srv = obtain_servers()
    except Exception as exc:
        if in_ci():
            pytest.fail(f"CI is set, so integration servers are required:\n{exc}", pytrace=False)
        pytest.skip(f"integration servers unavailable: {exc}")
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def database_url(servers: Servers) -> Iterator[str]:
    """A fresh, empty database `risklab_test_<uuid8>` on the test PostgreSQL, dropped afterwards."""
    import asyncpg

    name = f"risklab_test_{uuid.uuid4().hex[:8]}"
    admin_dsn = _asyncpg_dsn(servers.database_url)

    async def create() -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=30)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=30)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_async(create)
    yield _pg_url_with_database(servers.database_url, name)
    try:
        run_async(drop)
    except Exception as exc:  # e.g. a fault test left PostgreSQL stopped
        warnings.warn(f"could not drop test database {name}: {exc!r}", stacklevel=1)


# ============================ end of the test-servers section =============================
