"""Fake servers on 127.0.0.1 for the remote clients and the sources that use them (OpenAI-compatible
endpoints, search servers): healthy, refusing, hanging, erroring, malformed, rejecting. Nothing here
leaves the machine.

Use the fixtures by importing them into a test module: ``from tests.helpers.fake_servers import serve``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

# A behaviour maps (hit number, path, request) to (status, body, content type), or None to hang. The
# request is the JSON body of a POST, or the query parameters of a GET (one value each); the path
# excludes the query string. A body given as an iterable of byte chunks is streamed chunk by chunk
# (no Content-Length; the connection closes at its end), for endless and dripping answers.
Reply = tuple[int, bytes | Iterable[bytes], str]
Behaviour = Callable[[int, str, dict], Reply | None]

# How long a call against a failing server may take in a test that configures sub-second timeouts and
# backoff. Loose on purpose: it tells "the configured timeout ended the wait" from "it waited for the
# clients' defaults (30 or 60 s) or forever", and no machine load comes near it.
GAVE_UP_WITHIN_S = 15.0


def tool_call(name: Any, arguments: Any, index: int = 0) -> dict[str, Any]:
    """One entry of an answer's ``tool_calls``; ``arguments`` an object is sent as its JSON text, as
    OpenAI and vLLM send it, anything else as it is (for malformed answers)."""
    text = json.dumps(arguments) if isinstance(arguments, dict) else arguments
    return {"id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": text}}


def openai_reply(path: str, request: dict, text: str | None = None, tool_calls: Any = None) -> Reply:
    """What an OpenAI-compatible server answers: ``text``, or by default the prompt echoed back, so
    tests see it arrived. ``tool_calls`` (chat only): the calls a server with a tool call parser
    returns (:func:`tool_call`); the content is then ``text`` (by default null, as vLLM sends it)."""
    if path.endswith("/chat/completions"):
        content = "echo: " + request["messages"][-1]["content"] if text is None and tool_calls is None else text
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        if tool_calls is not None:
            choice |= {"message": choice["message"] | {"tool_calls": tool_calls}, "finish_reason": "tool_calls"}
        body = {"id": "c", "object": "chat.completion", "created": 0, "model": request["model"], "choices": [choice]}
    else:
        content = "echo: " + request["prompt"] if text is None else text
        choice = {"index": 0, "text": content, "finish_reason": "stop", "logprobs": None}
        body = {"id": "c", "object": "text_completion", "created": 0, "model": request["model"], "choices": [choice]}
    return 200, json.dumps(body).encode(), "application/json"


def healthy(hit: int, path: str, request: dict) -> Reply:
    return openai_reply(path, request)


class FakeServer:
    """A ThreadingHTTPServer in a daemon thread, recording each request it received (POST and GET)."""

    def __init__(self, behaviour: Behaviour):
        self.behaviour = behaviour
        self.requests: list[tuple[str, dict, dict]] = []  # (path, lower-cased headers, JSON body or GET params)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer(self.path, json.loads(raw))

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                self._answer(parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)))

            def _answer(self, path: str, request: dict) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.requests.append((path, headers, request))
                    hit = len(server.requests)
                reply = server.behaviour(hit, path, request)
                if reply is None:  # hang, in small steps, until the test tears the server down
                    while not server.stopping.wait(0.05):
                        pass
                    return
                status, body, content_type = reply
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for chunk in body:
                        if server.stopping.is_set():
                            return
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up on it, as it should
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    @property
    def root(self) -> str:
        """The server's address without a path (search servers take their own paths)."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def hits(self) -> int:
        return len(self.requests)

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], FakeServer]]:
    servers: list[FakeServer] = []

    def start(behaviour: Behaviour) -> FakeServer:
        servers.append(FakeServer(behaviour))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def refused_url() -> str:
    """A URL nobody listens on: bind a port, then free it, so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
