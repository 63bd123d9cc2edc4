"""Where this process finds Kafka and PostgreSQL: the settings, or else the local stack."""

from __future__ import annotations

import dataclasses

from bus.kafka import KafkaTransport
from bus.memory import MemoryTransport
from bus.namespace import NamespacedTransport
from bus.topics import topic_specs
from bus.transport import Transport
from risklab.settings import Settings


def kafka_bootstrap(settings: Settings) -> str:
    """Bootstrap servers from `RISKLAB_KAFKA_BOOTSTRAP`, else the local stack's broker."""
    return settings.kafka_bootstrap or f"127.0.0.1:{settings.kafka_port}"


def database_url(settings: Settings) -> str:
    """PostgreSQL URL from `RISKLAB_DATABASE_URL`, else the local stack's server."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return f"postgresql://postgres@127.0.0.1:{settings.postgres_port}/risklab"


def open_transport(settings: Settings, *, client_id: str = "risklab") -> Transport:
    """The transport the settings ask for, with the topic catalog's specs."""
    specs = topic_specs(settings.partitions, settings.max_message_bytes)
    transport: Transport
    if settings.transport == "memory":
        transport = MemoryTransport(specs)
    else:
        if settings.namespace:
            specs = tuple(dataclasses.replace(s, name=f"{settings.namespace}.{s.name}") for s in specs)
        transport = KafkaTransport(kafka_bootstrap(settings), client_id=client_id, specs=specs)
    return NamespacedTransport(transport, settings.namespace) if settings.namespace else transport
