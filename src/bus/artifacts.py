"""The artifact store: large documents and data sets kept outside the events, named by content.

Events stay small: a large input or result is written here and travels as a URI (an
`ArtifactRef`). Two backends honour one `ArtifactStore` protocol (checked by one contract test
suite): `LocalArtifactStore`, files under a folder with `file://` URIs, for the embedded default;
and `S3ArtifactStore`, objects in an S3 bucket with `s3://` URIs, for workers on several machines.

`put` writes under a content address, `sha256/<first two hex digits>/<hex digest><suffix>`, so
the same bytes always get the same URI and are written once: a recomputation or a redelivered
request finds the object already there and does not rewrite it. `get` refuses a URI that belongs
to another backend, bucket, prefix or folder (`ValueError`, a caller's mistake), and checks what
it read against the digest in a content-addressed name, so a damaged object is never used.

Errors: every storage failure is an `ArtifactError`, a subclass of `OSError` (the family a
missing or unreadable file already belongs to), naming the URI: `ArtifactNotFound` for a missing
object, `ArtifactCorrupted` for bytes that do not match their digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit
from urllib.request import url2pathname

from bus.errors import BusError
from bus.events.common import ArtifactRef

CONTENT_PREFIX = "sha256/"
"""First segment of content-addressed keys (below the folder or the S3 prefix)."""
_CONTENT_KEY = re.compile(r"(?:^|/)sha256/([0-9a-f]{2})/([0-9a-f]{64})(?:\.[A-Za-z0-9_-]+)*$")
_SUFFIX = re.compile(r"(?:\.[A-Za-z0-9_-]{1,16}){0,3}")


class ArtifactError(BusError, OSError):
    """Reading or writing an artifact failed; `uri` names it. A subclass of `OSError`."""

    def __init__(self, uri: str, message: str) -> None:
        super().__init__(message)
        self.uri = uri


class ArtifactNotFound(ArtifactError):
    """No artifact exists at `uri`."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri, f"artifact not found: {uri}")


class ArtifactCorrupted(ArtifactError):
    """The bytes stored at `uri` do not have the SHA-256 digest its name (or record) promises."""

    def __init__(self, uri: str, expected: str, actual: str) -> None:
        super().__init__(uri, f"artifact {uri} is corrupted: its SHA-256 is {actual}, expected {expected}")
        self.expected = expected
        self.actual = actual


class ArtifactStore(Protocol):
    """Where artifacts are written and read back by URI. Methods block: call them in a thread."""

    def put(self, data: bytes, *, media_type: str = "application/json", suffix: str = ".json") -> ArtifactRef:
        """Store `data` under its content address (once) and return its reference."""
        ...

    def put_json(self, obj: Any) -> ArtifactRef:
        """Store `obj` as canonical JSON (see `canonical_json`)."""
        ...

    def get(self, uri: str) -> bytes:
        """The bytes at `uri`, checked against their content address."""
        ...

    def get_json(self, uri: str) -> Any:
        """The JSON value at `uri`."""
        ...

    def exists(self, uri: str) -> bool:
        """Whether an artifact is stored at `uri`."""
        ...


def canonical_json(obj: Any) -> bytes:
    """`obj` as strict JSON in one spelling (sorted keys, no spaces, UTF-8), so equal values hash alike.

    Raises `ValueError` for NaN or infinities and `TypeError` for values JSON cannot hold.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()


def content_key(digest: str, suffix: str = ".json") -> str:
    """The content-addressed key of bytes whose SHA-256 hex digest is `digest`."""
    if not _SUFFIX.fullmatch(suffix):
        raise ValueError(f"suffix {suffix!r}: expected up to three parts like '.json' (letters, digits, _ or -)")
    return f"{CONTENT_PREFIX}{digest[:2]}/{digest}{suffix}"


def file_uri_path(uri: str) -> Path:
    """The local path named by a `file://` URI (on this host)."""
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise ValueError(f"artifact {uri!r}: expected a file:// URI, not {parts.scheme or 'a bare path'!r}")
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"artifact {uri!r}: file URI on another host {parts.netloc!r}")
    return Path(url2pathname(parts.path))


def _verified(uri: str, key: str, data: bytes, recorded: str | None = None) -> bytes:
    """`data` if it matches the digest its content-addressed `key` ends with (or the `recorded` one)."""
    match = _CONTENT_KEY.search(key)
    expected = match[2] if match and match[2].startswith(match[1]) else recorded
    if expected is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ArtifactCorrupted(uri, expected, actual)
    return data


def _parse_json(uri: str, data: bytes) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    try:
        return json.loads(data, parse_constant=refuse)
    except ValueError as exc:
        raise ValueError(f"artifact {uri} is not JSON: {exc}") from exc


class _JsonMethods:
    """`put_json` and `get_json` on top of a backend's `put` and `get`."""

    def put(self, data: bytes, *, media_type: str = "application/json", suffix: str = ".json") -> ArtifactRef:
        raise NotImplementedError

    def get(self, uri: str) -> bytes:
        raise NotImplementedError

    def put_json(self, obj: Any) -> ArtifactRef:
        """Store `obj` as canonical JSON (see `canonical_json`)."""
        return self.put(canonical_json(obj), media_type="application/json", suffix=".json")

    def get_json(self, uri: str) -> Any:
        """The JSON value at `uri`; `ValueError` if the bytes are not strict JSON."""
        return _parse_json(uri, self.get(uri))


class LocalArtifactStore(_JsonMethods):
    """Artifacts as files under `root`, named by `file://` URIs, written atomically."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    def put(self, data: bytes, *, media_type: str = "application/json", suffix: str = ".json") -> ArtifactRef:
        """Write `data` once under its content address: an existing file is left as it is."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.root / content_key(digest, suffix)
        ref = ArtifactRef(uri=path.as_uri(), sha256=digest, media_type=media_type)
        if path.is_file():
            return ref
        try:
            _write_atomically(path, data)
        except OSError as exc:
            raise ArtifactError(ref.uri, f"writing artifact {ref.uri} failed: {exc}") from exc
        return ref

    def get(self, uri: str) -> bytes:
        path = self._path(uri)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFound(uri) from None
        except OSError as exc:
            raise ArtifactError(uri, f"reading artifact {uri} failed: {exc}") from exc
        return _verified(uri, urlsplit(uri).path, data)

    def exists(self, uri: str) -> bool:
        return self._path(uri).is_file()

    def _path(self, uri: str) -> Path:
        """The file of `uri`, which must lie under the root (after resolving `..` and links)."""
        path = file_uri_path(uri).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"artifact {uri}: not in this store's folder {self.root}")
        return path


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `path` through a synced temporary file renamed over it: readers never see a partial file.

    Two writers of the same content address may race; both rename identical bytes into place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class S3ArtifactStore(_JsonMethods):
    """Artifacts as objects in an S3 bucket under `prefix`, named by `s3://bucket/key` URIs.

    The boto3 client is created on first use (boto3 is imported only then) with boto3's usual
    credential chain: environment, shared files, instance roles. Pass `client` to use another
    one. Each object carries its media type as ContentType and its SHA-256 in metadata (`sha256`).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "risklab/",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"bucket {bucket!r}: expected a bucket name without '/'")
        prefix = prefix.strip("/")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self._client = client
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3ArtifactStore('s3://{self.bucket}/{self.prefix}')"

    @property
    def client(self) -> Any:
        """The boto3 S3 client, created once (from a session of this store's own)."""
        with self._client_lock:
            if self._client is None:
                import boto3

                session = boto3.session.Session()
                self._client = session.client("s3", endpoint_url=self.endpoint_url, region_name=self.region)
            return self._client

    def put(self, data: bytes, *, media_type: str = "application/json", suffix: str = ".json") -> ArtifactRef:
        """Upload `data` once under its content address: an existing object is not rewritten."""
        digest = hashlib.sha256(data).hexdigest()
        key = self.prefix + content_key(digest, suffix)
        ref = ArtifactRef(uri=f"s3://{self.bucket}/{key}", sha256=digest, media_type=media_type)
        if self._head(ref.uri, key) is not None:
            return ref
        with _s3_errors(ref.uri, "writing"):
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=media_type, Metadata={"sha256": digest}
            )
        return ref

    def get(self, uri: str) -> bytes:
        key = self._key(uri)
        with _s3_errors(uri, "reading"):
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            data = response["Body"].read()
        recorded = response.get("Metadata", {}).get("sha256")
        return _verified(uri, key, data, recorded)

    def exists(self, uri: str) -> bool:
        return self._head(uri, self._key(uri)) is not None

    def _key(self, uri: str) -> str:
        """The object key of `uri`, which must name this bucket and lie under the prefix."""
        parts = urlsplit(uri)
        key = parts.path.lstrip("/")
        if parts.scheme != "s3" or parts.netloc != self.bucket or not key.startswith(self.prefix) or key == self.prefix:
            raise ValueError(f"artifact {uri}: not in this store (s3://{self.bucket}/{self.prefix})")
        return key

    def _head(self, uri: str, key: str) -> dict[str, Any] | None:
        """The object's metadata, or None when it does not exist."""
        try:
            with _s3_errors(uri, "looking up"):
                return self.client.head_object(Bucket=self.bucket, Key=key)
        except ArtifactNotFound:
            return None


@contextmanager
def _s3_errors(uri: str, doing: str) -> Iterator[None]:
    """Turn botocore's exceptions into `ArtifactNotFound` / `ArtifactError` naming the URI."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            raise ArtifactNotFound(uri) from None
        message = error.get("Message") or exc
        raise ArtifactError(uri, f"{doing} artifact {uri} failed: {code}: {message}") from exc
    except BotoCoreError as exc:
        raise ArtifactError(uri, f"{doing} artifact {uri} failed: {exc}") from exc
