"""The artifact store's contract, on both backends: a local folder, and S3 through a real S3 API
server (moto's server mode, on loopback). Then the engine worker writing large results to S3."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
from moto.server import ThreadedMotoServer

from bus.artifacts import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactStore,
    LocalArtifactStore,
    S3ArtifactStore,
    content_key,
    file_uri_path,
)
from bus.compute import chunk_requests
from bus.database import connect_pool
from bus.memory import MemoryTransport
from bus.runtime.runner import ActorRunner, RuntimeOptions
from bus.topics import topic_specs
from engines import registry
from risklab.artifacts import artifact_store
from risklab.compute_client import ComputeRequestFailed, request_and_gather
from risklab.engine_worker import EngineWorker
from risklab.settings import Settings


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, for this module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A new bucket, with dummy credentials in the environment (boto3's chain) and no AWS files."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"risklab-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return bucket


@dataclass
class Backend:
    """A store plus what the contract tests do behind its back."""

    store: ArtifactStore
    overwrite: Callable[[str, bytes], None]  # replace the stored bytes of a URI
    stamp: Callable[[str], Any]  # changes whenever the object at a URI is written
    foreign_uris: list[str]  # URIs of other backends, buckets, prefixes or folders
    missing_uri: str  # a content address in this store where nothing was written


def local_backend(tmp_path: Path) -> Backend:
    store = LocalArtifactStore(tmp_path / "artifacts")
    other = tmp_path / "other" / content_key("ab" * 32)

    def stamp(uri: str) -> Any:
        stat = file_uri_path(uri).stat()
        return stat.st_ino, stat.st_mtime_ns

    return Backend(
        store,
        overwrite=lambda uri, data: file_uri_path(uri).write_bytes(data),
        stamp=stamp,
        foreign_uris=[
            other.as_uri(),
            f"{store.root.as_uri()}/../other/{content_key('ab' * 32)}",
            f"s3://bucket/risklab/{content_key('ab' * 32)}",
            f"file://otherhost{store.root}/{content_key('ab' * 32)}",
        ],
        missing_uri=(store.root / content_key("cd" * 32)).as_uri(),
    )


def recorded_puts(store: S3ArtifactStore) -> list[str]:
    """The keys of every PutObject call the store's client makes from now on (a spy on botocore's events)."""
    puts: list[str] = []
    store.client.meta.events.register(
        "before-parameter-build.s3.PutObject", lambda params, **_: puts.append(params["Key"])
    )
    return puts


def s3_backend(endpoint: str, bucket: str) -> Backend:
    store = S3ArtifactStore(bucket, prefix="risklab/", endpoint_url=endpoint)
    puts = recorded_puts(store)
    raw = boto3.client("s3", endpoint_url=endpoint)

    def key(uri: str) -> str:
        return uri.removeprefix(f"s3://{bucket}/")

    def stamp(uri: str) -> Any:
        head = raw.head_object(Bucket=bucket, Key=key(uri))
        return puts.count(key(uri)), head["ETag"], head["LastModified"]

    return Backend(
        store,
        overwrite=lambda uri, data: raw.put_object(Bucket=bucket, Key=key(uri), Body=data),
        stamp=stamp,
        foreign_uris=[
            f"s3://another-bucket/risklab/{content_key('ab' * 32)}",
            f"s3://{bucket}/other-prefix/{content_key('ab' * 32)}",
            f"s3://{bucket}/risklab/",
            (Path("/tmp/risklab") / content_key("ab" * 32)).as_uri(),
        ],
        missing_uri=f"s3://{bucket}/risklab/{content_key('cd' * 32)}",
    )


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return local_backend(tmp_path)
    return s3_backend(request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_bucket"))


class TestArtifactStoreContract:
    def test_put_and_get_round_trip(self, backend: Backend) -> None:
        data = b"\x00binary\xffdata"
        digest = hashlib.sha256(data).hexdigest()
        ref = backend.store.put(data, media_type="application/octet-stream", suffix=".bin")
        assert ref.sha256 == digest and ref.media_type == "application/octet-stream"
        assert ref.uri.endswith(f"/sha256/{digest[:2]}/{digest}.bin")
        assert backend.store.exists(ref.uri)
        assert backend.store.get(ref.uri) == data

    def test_same_bytes_same_uri_written_once(self, backend: Backend) -> None:
        first = backend.store.put(b'{"x":1}')
        before = backend.stamp(first.uri)
        again = backend.store.put(b'{"x":1}')
        assert again == first
        assert backend.stamp(first.uri) == before  # not rewritten
        assert backend.store.put(b'{"x":2}').uri != first.uri

    def test_missing_artifact_is_not_found(self, backend: Backend) -> None:
        missing = backend.missing_uri
        assert not backend.store.exists(missing)
        with pytest.raises(ArtifactNotFound, match=re.escape(missing)) as info:
            backend.store.get(missing)
        assert isinstance(info.value, OSError) and info.value.uri == missing

    def test_corrupted_artifact_is_refused(self, backend: Backend) -> None:
        ref = backend.store.put_json({"price": 1.0})
        backend.overwrite(ref.uri, b'{"price":2.0}')
        with pytest.raises(ArtifactCorrupted, match=re.escape(ref.uri)) as info:
            backend.store.get_json(ref.uri)
        assert info.value.expected == ref.sha256
        assert info.value.actual == hashlib.sha256(b'{"price":2.0}').hexdigest()

    def test_uri_of_another_store_is_refused(self, backend: Backend) -> None:
        for uri in backend.foreign_uris:
            with pytest.raises(ValueError, match="artifact") as info:
                backend.store.get(uri)
            assert uri in str(info.value)
            with pytest.raises(ValueError):
                backend.store.exists(uri)

    def test_put_json_is_canonical(self, backend: Backend) -> None:
        ref = backend.store.put_json({"b": [1.5, "é"], "a": None})
        assert backend.store.get(ref.uri) == '{"a":null,"b":[1.5,"é"]}'.encode()
        assert backend.store.put_json({"a": None, "b": [1.5, "é"]}) == ref
        assert ref.media_type == "application/json" and ref.uri.endswith(".json")
        assert backend.store.get_json(ref.uri) == {"a": None, "b": [1.5, "é"]}
        with pytest.raises(ValueError):
            backend.store.put_json({"price": float("nan")})

    def test_bad_suffix_and_non_json_are_refused(self, backend: Backend) -> None:
        with pytest.raises(ValueError, match="suffix"):
            backend.store.put(b"x", suffix="/../../escape")
        ref = backend.store.put(b"not json", media_type="text/plain", suffix=".txt")
        with pytest.raises(ValueError, match=re.escape(f"artifact {ref.uri} is not JSON")):
            backend.store.get_json(ref.uri)


def test_s3_objects_carry_media_type_and_digest(s3_endpoint: str, s3_bucket: str) -> None:
    store = S3ArtifactStore(s3_bucket, prefix="lab", endpoint_url=s3_endpoint)
    ref = store.put(b"a,b\n1,2\n", media_type="text/csv", suffix=".csv")
    assert ref.uri == f"s3://{s3_bucket}/lab/{content_key(ref.sha256, '.csv')}"
    head = store.client.head_object(Bucket=s3_bucket, Key=ref.uri.removeprefix(f"s3://{s3_bucket}/"))
    assert head["ContentType"] == "text/csv" and head["Metadata"] == {"sha256": ref.sha256}


def test_s3_failures_are_artifact_errors_naming_the_uri(s3_endpoint: str, s3_bucket: str) -> None:
    store = S3ArtifactStore(f"{s3_bucket}-missing", endpoint_url=s3_endpoint)
    with pytest.raises(ArtifactError, match=re.escape(f"s3://{s3_bucket}-missing/risklab/sha256/")) as info:
        store.put(b"x")
    assert "NoSuchBucket" in str(info.value)


def test_settings_choose_the_backend(tmp_path: Path) -> None:
    local = artifact_store(Settings(home=tmp_path, artifacts_dir=None, artifacts_s3_bucket=None))
    assert isinstance(local, LocalArtifactStore) and local.root == (tmp_path / "artifacts").resolve()
    s3 = artifact_store(
        Settings(
            artifacts_s3_bucket="lab-bucket",
            artifacts_s3_prefix="desk/",
            artifacts_s3_endpoint_url="http://127.0.0.1:9",
            artifacts_s3_region="eu-west-3",
        )
    )
    assert isinstance(s3, S3ArtifactStore)
    assert (s3.bucket, s3.prefix, s3.endpoint_url, s3.region) == (
        "lab-bucket",
        "desk/",
        "http://127.0.0.1:9",
        "eu-west-3",
    )


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(database_url, min_size=1, max_size=8)
    try:
        yield pool
    finally:
        await pool.close()


async def test_engine_worker_results_travel_through_s3(pool: asyncpg.Pool, s3_endpoint: str, s3_bucket: str) -> None:
    option = {
        "spot": 100.0,
        "strike": 95.0,
        "rate": 0.01,
        "dividend_yield": 0.0,
        "volatility": 0.25,
        "maturity_years": 0.5,
        "option": "put",
        "paths": 2_000,
    }
    transport = MemoryTransport(topic_specs())
    worker_store = S3ArtifactStore(s3_bucket, endpoint_url=s3_endpoint)
    puts = recorded_puts(worker_store)
    worker = EngineWorker(worker_store, inline_limit_bytes=100)  # every result goes by reference
    options = RuntimeOptions(max_records=1, poll_timeout_seconds=0.05, backoff_seconds=0.05)
    requester_store = S3ArtifactStore(s3_bucket, endpoint_url=s3_endpoint)

    stop = asyncio.Event()
    task = asyncio.create_task(ActorRunner(worker, transport, pool, options).run(stop))
    try:
        result = await request_and_gather(
            transport, "mc.european_option", [option] * 2, seed=11, timeout=60, store=requester_store
        )
        # the same request again: same bytes, so no new object; a requester without the store is refused
        with pytest.raises(ComputeRequestFailed, match="expected a file:// URI"):
            await request_and_gather(transport, "mc.european_option", [option] * 2, seed=11, timeout=60)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    local = registry.combine(
        "mc.european_option",
        [registry.run("mc.european_option", r.inputs, r.seed) for r in chunk_requests("x", "mc", [option] * 2, 11)],
    )
    assert result == local
    assert len(puts) == 2 and all(key.startswith("risklab/sha256/") for key in puts)
