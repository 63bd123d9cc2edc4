"""Which partition a key goes to, and the size limit a record must respect.

The memory transport uses Kafka's own default partitioner (murmur2 of the key bytes) so that a
key lands on the same partition number whichever transport carries it.
"""

from __future__ import annotations

import functools
import itertools

from aiokafka.partitioner import murmur2

from bus.codec import Headers
from bus.errors import MessageTooLarge
from bus.topics import TopicSpec

_unkeyed = itertools.count()


@functools.lru_cache(maxsize=1 << 16)
def _key_hash(key: bytes) -> int:
    # murmur2 is pure Python; keys (aggregates) repeat, so each is hashed once
    return murmur2(key) & 0x7FFFFFFF


def partition_for(key: bytes | None, partitions: int) -> int:
    """Kafka's default partition for `key` among `partitions`; unkeyed records go round robin."""
    if key is None:
        return next(_unkeyed) % partitions
    return _key_hash(key) % partitions


def record_size(key: bytes | None, value: bytes, headers: Headers) -> int:
    """Bytes a record occupies for the size limit: key, value and headers."""
    return len(key or b"") + len(value) + sum(len(k) + len(v) for k, v in headers)


def check_size(spec: TopicSpec, key: bytes | None, value: bytes, headers: Headers) -> None:
    """Raise `MessageTooLarge` if the record exceeds the topic's limit."""
    size = record_size(key, value, headers)
    if size > spec.max_message_bytes:
        raise MessageTooLarge(spec.name, size, spec.max_message_bytes)
