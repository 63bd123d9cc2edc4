"""The engine worker: the actor that answers `compute.requested` with a chunk's result.

Any number of worker processes share the `engine-worker` consumer group on `compute.requests`.
For each request the worker runs the registered engine (`engines.registry.run`) in `prepare`,
outside the database transaction and in a thread (numba's nopython parallel kernels release the
GIL, so the event loop keeps polling and relaying), then emits in `handle`, inside the runtime's
transaction, either `ComputeCompleted` or `ComputeFailed`. Nothing is silenced: an unknown kind,
inputs the engine refuses, an engine that raises, a result that is not JSON or an artifact that
cannot be read or written all come back to the requester as `ComputeFailed` with the reason.

The answer's event id is derived from the request's id (see `bus.runtime`), so a redelivered
request -- to this worker or another one -- does not produce a second answer. Results whose JSON
exceeds `inline_limit_bytes` are written to the artifact store (`bus.artifacts`: a local folder or
S3) as canonical JSON under their content address, so a recomputation finds the same object and
does not write it again, and travel as the artifact's URI in `result_ref`. Inputs given by
reference (`inputs_ref`) are read through the same store.

It takes one request per transaction (`max_batch = 1`) so that each chunk's answer
is committed as soon as it is computed and a crash repeats at most one chunk's work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from bus.artifacts import ArtifactError, ArtifactStore
from bus.codec import DecodedEvent
from bus.events.compute import ComputeCompleted, ComputeFailed, ComputeRequested
from bus.runtime.actor import Actor, HandlerContext
from bus.topics import COMPUTE_REQUESTS
from engines import registry

log = logging.getLogger("risklab.engine_worker")

INLINE_RESULT_LIMIT = 256 * 1024
"""Largest result (bytes of compact JSON) sent inline; larger ones go to the artifact store."""
MAX_ERROR_CHARS = 4000
"""Error messages are cut to this length, so that a failure always fits in a record."""
"""Runtime options for engine workers: one request per poll (see the module docstring)."""


def worker_identity() -> str:
    """This process as named in answers: host name and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ChunkOutcome:
    """What `prepare` computed for one request: a result (inline or by reference) or a failure."""

    elapsed_seconds: float
    result: dict[str, Any] | None = None
    result_ref: str | None = None
    error_type: str | None = None
    error: str | None = None


class EngineWorker(Actor):
    """Runs engine kinds for `compute.requested` events and answers on `compute.results`."""

    name = "engine-worker"
    topics = (COMPUTE_REQUESTS,)
    accepts = frozenset({ComputeRequested.event_type})
    max_batch = 1

    def __init__(
        self,
        store: ArtifactStore,
        *,
        inline_limit_bytes: int = INLINE_RESULT_LIMIT,
        worker: str | None = None,
    ) -> None:
        self.store = store
        self.inline_limit_bytes = inline_limit_bytes
        self.worker = worker or worker_identity()
        # The engines' parallel kernels use every core already; one computation at a time per
        # process (partitions are otherwise processed concurrently by the runtime).
        self._engine_slot = asyncio.Semaphore(1)

    async def on_start(self, conn: Any) -> None:
        """Import the engine modules before the first request (and fail early if one is broken)."""
        known = await asyncio.to_thread(registry.kinds)
        log.info("%s (%s) serves kinds: %s", self.name, self.worker, ", ".join(known))

    async def prepare(self, event: DecodedEvent) -> ChunkOutcome:
        """Compute the chunk; never raises for the request's or the engine's faults."""
        request = event.event
        assert isinstance(request, ComputeRequested)
        started = time.perf_counter()

        def failed(error_type: str, error: str) -> ChunkOutcome:
            if len(error) > MAX_ERROR_CHARS:
                error = error[: MAX_ERROR_CHARS - 15] + " ... (truncated)"
            log.warning(
                "%s: request %s chunk %d (%s) failed: %s: %s",
                self.name,
                request.request_id,
                request.chunk_index,
                request.kind,
                error_type,
                error,
            )
            return ChunkOutcome(time.perf_counter() - started, error_type=error_type, error=error)

        try:
            inputs = await self._inputs(request)
        except ValueError as exc:
            return failed("invalid_inputs", str(exc))
        except ArtifactError as exc:  # names the URI
            return failed("inputs_unavailable", str(exc))
        except OSError as exc:
            return failed("inputs_unavailable", f"{request.inputs_ref}: {exc}")
        try:
            async with self._engine_slot:
                result = await asyncio.to_thread(registry.run, request.kind, inputs, request.seed)
        except registry.UnknownKind as exc:
            return failed("unknown_kind", str(exc))
        except registry.InvalidInputs as exc:
            return failed("invalid_inputs", str(exc))
        except Exception as exc:
            log.exception("%s: engine %s raised", self.name, request.kind)
            return failed("engine_error", f"{type(exc).__name__}: {exc}")
        elapsed = time.perf_counter() - started
        if not isinstance(result, dict):
            return failed("engine_error", f"engine returned {type(result).__name__}, not a dict")
        try:
            encoded = json.dumps(result, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            return failed("engine_error", f"result is not strict JSON: {exc}")
        if len(encoded.encode()) <= self.inline_limit_bytes:
            return ChunkOutcome(elapsed, result=json.loads(encoded))
        try:
            ref = await asyncio.to_thread(self.store.put_json, result)
        except ArtifactError as exc:  # names the URI
            return failed("artifact_error", str(exc))
        except OSError as exc:
            return failed("artifact_error", f"writing the result to {self.store!r} failed: {exc}")
        return ChunkOutcome(elapsed, result_ref=ref.uri)

    async def _inputs(self, request: ComputeRequested) -> dict[str, Any]:
        if request.inputs_ref is None:
            return dict(request.inputs)
        if request.inputs:
            raise ValueError("inputs: give inputs inline or inputs_ref, not both")
        loaded = await asyncio.to_thread(self.store.get_json, request.inputs_ref)
        if not isinstance(loaded, dict):
            raise ValueError(f"inputs_ref: {request.inputs_ref} holds {type(loaded).__name__}, not an object")
        return loaded

    async def handle(self, event: DecodedEvent, ctx: HandlerContext) -> None:
        """Emit the chunk's answer computed in `prepare`."""
        request = event.event
        assert isinstance(request, ComputeRequested)
        outcome = ctx.prepared
        if not isinstance(outcome, ChunkOutcome):
            raise RuntimeError(f"request {request.request_id} chunk {request.chunk_index} reached handle unprepared")
        chunk = {
            "request_id": request.request_id,
            "kind": request.kind,
            "chunk_index": request.chunk_index,
            "chunk_count": request.chunk_count,
            "worker": self.worker,
        }
        if outcome.error_type is not None:
            ctx.emit(ComputeFailed(**chunk, error_type=outcome.error_type, error=outcome.error or ""))
        else:
            ctx.emit(
                ComputeCompleted(
                    **chunk,
                    result=outcome.result,
                    result_ref=outcome.result_ref,
                    elapsed_seconds=outcome.elapsed_seconds,
                )
            )
