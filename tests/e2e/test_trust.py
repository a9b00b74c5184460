"""The trust model (docs/trust.md) is written down, linked from the guarantees, and true where it
can be checked: a recipe's plug-ins run even under ``--status``; an endpoint's key goes to the
endpoint's own host only (not to another host it redirects to) and is written nowhere."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from trice.cli import main
from trice.tools.factories import TOOL_FACTORIES

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-value-of-the-test"


class Recording:
    """A server on 127.0.0.1 that records each request's Authorization header and either redirects
    (307, same method and body) to ``redirect`` or answers a completion."""

    def __init__(self, redirect: str | None = None):
        self.auth: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                server.auth.append(self.headers.get("Authorization"))
                if redirect is not None:
                    self.send_response(307)
                    self.send_header("Location", redirect + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                answer = json.dumps({"choices": [{"index": 0, "text": "The answer is 2.", "finish_reason": "stop"}], "model": body["model"]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def redirecting() -> Iterator[tuple[Recording, Recording]]:
    other = Recording()
    named = Recording(redirect=f"http://localhost:{other.port}")  # another host name: the key must not follow
    yield named, other
    named.close()
    other.close()


def test_an_endpoint_key_goes_to_its_own_host_only_and_is_written_nowhere(tmp_path, monkeypatch, redirecting) -> None:
    named, other = redirecting
    monkeypatch.setenv("TRICE_TEST_KEY", SECRET)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "e0", "dataset": "svamp", "task": "math", "question": "What is 1 + 1?", "answers": ["2"]}) + "\n")
    argv = ["generate", "--input", str(src), "--output", str(tmp_path / "out.jsonl"), "--model", "m", "--backend", "openai",
            "--endpoint_url", f"http://127.0.0.1:{named.port}/v1", "--endpoint_api_key_env", "TRICE_TEST_KEY",
            "--endpoint_cache_dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 0
    assert named.auth == [f"Bearer {SECRET}"] and other.auth == [None]
    assert json.loads((tmp_path / "out.jsonl").read_text())["response"] == "The answer is 2."
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.parent.parent.name == "cache" for p in written)  # the answer was cached
    assert not [p for p in written if SECRET.encode() in p.read_bytes()]


def test_a_recipes_plugins_run_even_for_status(tmp_path, monkeypatch) -> None:
    (tmp_path / "side_effect_plugin.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('imported').write_text('ran')\n"
        "from trice.tools.factories import TOOL_FACTORIES\nfactory = TOOL_FACTORIES['calculator']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run"), "data": {"n_train": 10}, "plugins": {"tools": {"mine": "side_effect_plugin:factory"}}}))
    saved = dict(TOOL_FACTORIES)
    try:
        assert main(["run", str(recipe), "--status"]) == 0
    finally:  # the plug-in's tool must not leak into other tests
        TOOL_FACTORIES.clear()
        TOOL_FACTORIES.update(saved)
    assert (tmp_path / "imported").read_text() == "ran"  # as docs/trust.md says: a recipe is code


def test_the_trust_model_is_written_and_linked() -> None:
    trust = (ROOT / "docs" / "trust.md").read_text()
    assert "(trust.md)" in (ROOT / "docs" / "guarantees.md").read_text()
    for named in ("plugins:", "--status", "endpoint_api_key_env", "Authorization", "tests/e2e/test_trust.py"):
        assert named in trust, named
