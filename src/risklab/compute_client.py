"""Asking the engine workers for heavy computation and waiting for the combined answer.

`request_and_gather` is the requester side for callers outside the actor runtime (the
`risklab compute` command, scripts, notebooks): it publishes one `ComputeRequested` per chunk on
`compute.requests`, reads `compute.results` in a consumer group of its own from where the topic
ended before publishing (so it never scans old results and never misses an answer), keeps the
first answer of each chunk (a redelivered answer is ignored), and folds the chunk results with
the kind's combiner. Actors gather chunks transactionally with `bus.compute.record_chunk` instead.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bus.artifacts import ArtifactStore, LocalArtifactStore, file_uri_path
from bus.catalog import CATALOG
from bus.codec import decode
from bus.compute import chunk_requests
from bus.errors import InvalidEvent
from bus.events.compute import ComputeCompleted, ComputeFailed
from bus.topics import COMPUTE_REQUESTS, COMPUTE_RESULTS
from bus.transport import Transport, subscribe_from_now
from engines import registry

PRODUCER = "risklab-cli"


class ComputeRequestFailed(Exception):
    """Some chunks of a request failed (reasons by chunk index) or never answered (`missing`)."""

    def __init__(
        self, request_id: str, kind: str, failures: Mapping[int, str], missing: Sequence[int] = (), reason: str = ""
    ) -> None:
        self.request_id = request_id
        self.kind = kind
        self.failures = dict(failures)
        self.missing = list(missing)
        parts = [reason] if reason else []
        parts += [f"chunk {i}: {why}" for i, why in sorted(self.failures.items())]
        if self.missing:
            parts.append(f"no answer for chunk{'s' if len(self.missing) > 1 else ''} {_ranges(self.missing)}")
        super().__init__(f"compute request {request_id} ({kind}) failed: " + "; ".join(parts))


class ComputeTimedOut(ComputeRequestFailed):
    """Not every chunk answered within the timeout (are engine workers running?)."""


def _ranges(indices: Sequence[int]) -> str:
    """`[0, 1, 2, 5]` -> "0-2, 5": a compact list for messages about many chunks."""
    out: list[str] = []
    ordered = sorted(indices)
    start = prev = ordered[0]
    for i in [*ordered[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(out)


def artifact_path(uri: str) -> Path:
    """The local path of a `file://` artifact URI."""
    return file_uri_path(uri)


def load_artifact(uri: str) -> Any:
    """The JSON content of a `file://` artifact anywhere on this host (checked if content-addressed).

    The reader `request_and_gather` uses when given no store; a store reads only its own URIs.
    """
    path = artifact_path(uri)
    return LocalArtifactStore(path.parent).get_json(uri)


async def request_and_gather(
    transport: Transport,
    kind: str,
    chunk_inputs: Sequence[Mapping[str, Any]],
    *,
    seed: int | None,
    timeout: float,
    request_id: str | None = None,
    producer: str = PRODUCER,
    store: ArtifactStore | None = None,
) -> dict[str, Any]:
    """Have the engine workers compute `kind` over `chunk_inputs` (one chunk each) and combine.

    Each chunk gets its own seed derived from `seed` (recorded in its request). Raises
    `engines.registry.UnknownKind` before publishing anything if the kind is unknown here,
    `ComputeRequestFailed` with every failed chunk's reason, or `ComputeTimedOut` if some
    chunks have not answered after `timeout` seconds. Results sent by reference are read from
    `store` (the one the workers write to); without one, only `file://` results can be read.
    """
    registry.get(kind)  # fail fast: this side must be able to combine what comes back
    request_id = request_id or f"compute-{uuid.uuid4().hex}"
    requests = chunk_requests(request_id, kind, [dict(i) for i in chunk_inputs], seed)
    correlation_id = uuid.uuid4()
    envelopes = [
        CATALOG.envelope(r, producer=producer, correlation_id=correlation_id, key=r.chunk_key()) for r in requests
    ]
    count = len(requests)

    # Start reading results where the topic ends now, before any request is out.
    subscription = await subscribe_from_now(transport, f"{producer}-gather-{request_id}", [COMPUTE_RESULTS])
    results: dict[int, dict[str, Any] | str] = {}
    failures: dict[int, str] = {}
    try:
        await transport.publish_many(COMPUTE_REQUESTS, envelopes)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        key = request_id.encode()
        while len(results) + len(failures) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                missing = [i for i in range(count) if i not in results and i not in failures]
                raise ComputeTimedOut(request_id, kind, failures, missing, reason=f"timed out after {timeout:g} s")
            batches = await subscription.poll(min(remaining, 0.5))
            for records in batches.values():
                for record in records:
                    if record.key != key:
                        continue
                    try:
                        answer = decode(record.value).event
                    except InvalidEvent:
                        continue  # not ours to judge: the runtime's consumers dead-letter it
                    if not isinstance(answer, ComputeCompleted | ComputeFailed) or answer.request_id != request_id:
                        continue
                    i = answer.chunk_index
                    if i in results or i in failures or i >= count:
                        continue  # a redelivered or stray answer: the first one counts
                    if isinstance(answer, ComputeFailed):
                        failures[i] = f"{answer.error_type}: {answer.error} (worker {answer.worker})"
                    else:
                        results[i] = answer.result if answer.result is not None else str(answer.result_ref)
    finally:
        await subscription.close()
    if failures:
        raise ComputeRequestFailed(request_id, kind, failures)
    read = load_artifact if store is None else store.get_json
    gathered: list[dict[str, Any]] = []
    for i in range(count):
        answer_i = results[i]
        if isinstance(answer_i, str):
            try:
                answer_i = await asyncio.to_thread(read, answer_i)
            except (OSError, ValueError) as exc:
                raise ComputeRequestFailed(
                    request_id, kind, {i: f"result artifact {answer_i} unreadable: {exc}"}
                ) from exc
        gathered.append(answer_i)
    try:
        return registry.combine(kind, gathered)
    except ValueError as exc:
        raise ComputeRequestFailed(request_id, kind, {}, reason=f"combining the chunks failed: {exc}") from exc
