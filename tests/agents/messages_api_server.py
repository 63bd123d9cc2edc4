"""A local stand-in for Anthropic's Messages API, for tests that drive the real `anthropic` SDK.

It serves `POST /v1/messages` on 127.0.0.1 (a free port) from a thread, answering the way the
Messages API does, and records every request (path, headers, JSON body) so a test can check what
the SDK sent and with which key (`x-api-key`, or the `Authorization: Bearer` header that the SDK
2.x sends; a request with neither gets the API's 401 `authentication_error`). What it answers is
switchable while it runs:

    with MessagesApiServer() as server:
        client = anthropic.AsyncAnthropic(api_key="test-key", base_url=server.base_url, max_retries=0)
        server.behaviour = ReplyWith("The margin rose because ...")
        ...
        server.behaviour = FailWith(529, "overloaded_error", "Overloaded")
        assert server.requests[-1].body["model"] == "claude-test"

A behaviour may also be a function of the recorded request returning one of the behaviours, for
tests that answer each agent differently. Stalled answers are released when the server closes, so
closing never waits for them.

Other test packages import it by path (the tests folders are not packages), for instance:
`sys.path.insert(0, str(Path(__file__).parents[1] / "agents"))` before `import messages_api_server`.
It also runs on its own, replying with a fixed text: `uv run python tests/agents/messages_api_server.py`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Behaviour",
    "FailWith",
    "MessagesApiServer",
    "RecordedRequest",
    "ReplyEmpty",
    "ReplyWith",
    "StallFor",
]


@dataclass(frozen=True)
class ReplyWith:
    """Answer 200 with one text block."""

    text: str = "The figures are within their limits."
    stop_reason: str = "end_turn"


@dataclass(frozen=True)
class ReplyEmpty:
    """Answer 200 with no content blocks at all."""

    stop_reason: str = "end_turn"


@dataclass(frozen=True)
class FailWith:
    """Answer with an HTTP error in the Messages API's error format (500 api_error, 529 overloaded_error...)."""

    status: int = 500
    error_type: str = "api_error"
    message: str = "Internal server error"


@dataclass(frozen=True)
class StallFor:
    """Wait `seconds` before answering (with `then`): longer than a client's timeout, it makes one."""

    seconds: float
    then: ReplyWith | ReplyEmpty | FailWith = field(default_factory=ReplyWith)


Behaviour = ReplyWith | ReplyEmpty | FailWith | StallFor


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received. Header names are lower-case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any

    @property
    def api_key(self) -> str | None:
        """The key the client sent: `x-api-key`, or the bearer token that newer SDKs send instead."""
        if key := self.headers.get("x-api-key"):
            return key
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return (token.strip() or None) if scheme.lower() == "bearer" else None

    def text_sent(self) -> str:
        """The system instruction and all user text of a Messages request, joined, for assertions."""
        if not isinstance(self.body, dict):
            return ""
        parts: list[str] = []
        system = self.body.get("system")
        if isinstance(system, str):
            parts.append(system)
        elif isinstance(system, list):
            parts.extend(block.get("text", "") for block in system if isinstance(block, dict))
        for message in self.body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(block.get("text", "") for block in content if isinstance(block, dict))
        return "\n".join(parts)


class MessagesApiServer:
    """A threaded HTTP server answering `POST /v1/messages`; use it as a context manager."""

    def __init__(self, behaviour: Behaviour | Callable[[RecordedRequest], Behaviour] | None = None) -> None:
        self.behaviour: Behaviour | Callable[[RecordedRequest], Behaviour] = behaviour or ReplyWith()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> MessagesApiServer:
        if self._httpd is not None:
            return self
        handler = _handler_for(self)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False  # stalled handlers are released, never waited for
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="messages-api-server", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> MessagesApiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- what tests read -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the Messages API server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The base URL to give the SDK (`base_url=`); the SDK appends `/v1/messages`."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- serving ---------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _behaviour_for(self, request: RecordedRequest) -> Behaviour:
        behaviour = self.behaviour
        if isinstance(behaviour, ReplyWith | ReplyEmpty | FailWith | StallFor):
            return behaviour
        return behaviour(request)

    def _answer(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for a request (after any stall)."""
        behaviour = self._behaviour_for(request)
        if isinstance(behaviour, StallFor):
            if self._closing.wait(behaviour.seconds):
                return _error(503, "api_error", "server closing")
            behaviour = behaviour.then
        if isinstance(behaviour, FailWith):
            return _error(behaviour.status, behaviour.error_type, behaviour.message)
        model = request.body.get("model", "unknown") if isinstance(request.body, dict) else "unknown"
        content: list[dict[str, Any]] = []
        if isinstance(behaviour, ReplyWith):
            content = [{"type": "text", "text": behaviour.text}]
        output_words = sum(len(block["text"].split()) for block in content)
        return 200, {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "content": content,
            "model": model,
            "stop_reason": behaviour.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": len(request.text_sent().split()),
                "output_tokens": output_words,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }


def _error(status: int, error_type: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"type": "error", "error": {"type": error_type, "message": message}}


def _handler_for(server: MessagesApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            request = RecordedRequest(
                method="POST",
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            server._record(request)
            if self.path.split("?", 1)[0] != "/v1/messages":
                self._send(*_error(404, "not_found_error", f"Not found: {self.path}"))
                return
            if request.api_key is None:
                self._send(*_error(401, "authentication_error", "x-api-key header is required"))
                return
            if not isinstance(body, dict):
                self._send(*_error(400, "invalid_request_error", "request body is not a JSON object"))
                return
            self._send(*server._answer(request))

        def do_GET(self) -> None:
            self._send(*_error(404, "not_found_error", f"Not found: {self.path}"))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timeout) and closed the connection

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests read `server.requests` instead

    return Handler


if __name__ == "__main__":
    import time

    with MessagesApiServer() as running:
        print(running.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
