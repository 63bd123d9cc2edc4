"""Compute chunks are keyed one by one, so a request's chunks spread over partitions and workers."""

from __future__ import annotations

import uuid

import pytest

import bus.events  # noqa: F401
from bus.catalog import CATALOG
from bus.compute import chunk_requests
from bus.errors import InvalidEvent
from bus.partitioning import partition_for


def test_chunks_carry_their_own_keys_and_the_catalog_accepts_them() -> None:
    requests = chunk_requests("req-9", "mc.european_option", [{}] * 12, seed=5)
    keys = [r.chunk_key() for r in requests]
    assert keys == [f"req-9#{i}" for i in range(12)]
    for r, key in zip(requests, keys, strict=True):
        envelope = CATALOG.envelope(r, producer="tests@1", key=key)
        assert CATALOG.parse(envelope) == r
        assert CATALOG.parse(CATALOG.envelope(r, producer="tests@1")) == r  # the request id alone still goes


def test_a_chunk_under_another_requests_key_is_refused() -> None:
    [r] = chunk_requests("req-9", "mc.european_option", [{}], seed=5)
    with pytest.raises(InvalidEvent, match="key"):
        CATALOG.parse(CATALOG.envelope(r, producer="tests@1", key="req-8#0", event_id=uuid.uuid4()))


def test_the_chunks_of_one_request_land_on_several_partitions() -> None:
    requests = chunk_requests("design-1.risk-manager.stress", "structured.stress", [{}] * 8)
    assert len({partition_for(r.chunk_key().encode(), 6) for r in requests}) > 1
