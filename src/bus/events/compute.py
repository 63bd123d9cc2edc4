"""Compute events: heavy work sent to engine workers and their answers, chunk by chunk."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from bus.catalog import CATALOG, Event
from bus.events.common import Identifier
from bus.topics import COMPUTE_REQUESTS, COMPUTE_RESULTS


class _ChunkFields(Event):
    request_id: Identifier = Field(description="Shared by all chunks of one request; the partition key.")
    kind: Identifier = Field(description="Engine function in the worker registry, e.g. mc.european_option.")
    chunk_index: int = Field(ge=0)
    chunk_count: int = Field(ge=1, le=100_000)

    @model_validator(mode="after")
    def _index_in_range(self) -> _ChunkFields:
        if self.chunk_index >= self.chunk_count:
            raise ValueError(f"chunk_index {self.chunk_index} must be below chunk_count {self.chunk_count}")
        return self


@CATALOG.register
class ComputeRequested(_ChunkFields, type="compute.requested", version=1, topic=COMPUTE_REQUESTS, key="request_id"):
    """One chunk of work for the engine workers. Inputs travel inline or by artifact reference.

    Requesters key each chunk by `chunk_key()` ("<request_id>#<chunk_index>"), so the chunks of one
    request spread over the partitions and every engine worker of the group takes a share; the
    request id alone is accepted as the key too.
    """

    inputs: dict[str, Any] = Field(default_factory=dict, description="Arguments of the engine function.")
    inputs_ref: str | None = Field(default=None, description="Artifact URI of large inputs, instead of inline.")
    seed: int | None = Field(default=None, ge=0, description="Random seed of this chunk, recorded for replay.")

    def chunk_key(self) -> str:
        """The partition key that spreads a request's chunks over the engine workers."""
        return f"{self.request_id}#{self.chunk_index}"

    def accepts_key(self, key: str) -> bool:
        return key in (self.request_id, self.chunk_key())


@CATALOG.register
class ComputeCompleted(_ChunkFields, type="compute.completed", version=1, topic=COMPUTE_RESULTS, key="request_id"):
    """A chunk's result, inline or by artifact reference."""

    result: dict[str, Any] | None = None
    result_ref: str | None = None
    elapsed_seconds: float = Field(ge=0)
    worker: str

    @model_validator(mode="after")
    def _has_result(self) -> ComputeCompleted:
        if (self.result is None) == (self.result_ref is None):
            raise ValueError("exactly one of result and result_ref must be given")
        return self


@CATALOG.register
class ComputeFailed(_ChunkFields, type="compute.failed", version=1, topic=COMPUTE_RESULTS, key="request_id"):
    """A chunk that could not be computed, with the reason; never silence."""

    error_type: str
    error: str
    worker: str
