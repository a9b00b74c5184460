"""The remote client against fake servers on 127.0.0.1: healthy, refusing, hanging, erroring,
malformed, rejecting. Nothing here leaves the machine."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fake_servers import GAVE_UP_WITHIN_S, Reply, healthy, openai_reply, refused_url, serve, tool_call  # noqa: F401 (refused_url, serve: fixtures)
from trice.core.native import NativeCallError, NativeToolCall, parse_native_call, tool_schema
from trice.utils.config import ConfigError, build_config
from trice.utils.diskcache import DiskCache
from trice.generation.remote import Circuit, EndpointConfig, EndpointError, OpenAIEndpoint, ToolChat, retrying


def endpoint(base_url: str, **fields: Any) -> OpenAIEndpoint:
    settings: dict[str, Any] = dict(model="fake-model", max_retries=2, backoff_initial=0.01, backoff_max=0.05, connect_timeout=1.0, read_timeout=2.0)
    settings.update(fields)
    return OpenAIEndpoint(EndpointConfig(base_url=base_url, **settings))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "trice.generation.remote" and r.levelno == logging.WARNING]


# (a) a healthy server


@pytest.mark.parametrize("mode", ["chat", "completions"])
def test_complete_in_both_modes_and_cache_on_disk(serve, tmp_path: Path, mode: str) -> None:
    server = serve(healthy)
    ep = endpoint(server.url, mode=mode, cache_dir=str(tmp_path))
    assert ep.complete("2+2?") == "echo: 2+2?"
    path, _, body = server.requests[0]
    assert path == f"/v1/{'chat/completions' if mode == 'chat' else 'completions'}"
    assert body["model"] == "fake-model" and body["max_tokens"] == 128 and body["temperature"] == 0.0
    assert "stop" not in body  # an empty stop list is not sent

    assert ep.complete("2+2?") == "echo: 2+2?"
    assert server.hits == 1
    assert endpoint(server.url, mode=mode, cache_dir=str(tmp_path)).complete("2+2?") == "echo: 2+2?"
    assert server.hits == 1
    entries = list(tmp_path.glob("*/*.json"))
    assert len(entries) == 1 and entries[0].parent.name == entries[0].stem[:2]

    ep.complete("3+3?")
    ep.complete("2+2?", max_tokens=7)  # other parameters, other key
    assert server.hits == 3


def test_chat_messages_overrides_and_api_key(serve, monkeypatch) -> None:
    server = serve(healthy)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert endpoint(server.url).complete(messages, max_tokens=7, stop=["\n"]) == "echo: hi"
    _, headers, body = server.requests[0]
    assert body["messages"] == messages and body["max_tokens"] == 7 and body["stop"] == ["\n"]
    assert headers["authorization"] == "Bearer EMPTY"

    monkeypatch.setenv("TEACHER_KEY", "sk-local")
    endpoint(server.url, api_key_env="TEACHER_KEY").complete("x")
    assert server.requests[1][1]["authorization"] == "Bearer sk-local"


def test_bad_calls_are_caller_errors(serve) -> None:
    ep = endpoint(serve(healthy).url, mode="completions")
    with pytest.raises(TypeError, match="unknown overrides"):
        ep.complete("x", temprature=0.5)
    with pytest.raises(TypeError, match="completions mode takes a str"):
        ep.complete([{"role": "user", "content": "x"}])


def test_cache_ignores_server_address_and_damaged_entries(serve, tmp_path: Path) -> None:
    first, second = serve(healthy), serve(healthy)
    endpoint(first.url, cache_dir=str(tmp_path)).complete("q")
    ep = endpoint(second.url, cache_dir=str(tmp_path))
    assert ep.complete("q") == "echo: q" and second.hits == 0  # same model elsewhere: same answer

    (entry,) = tmp_path.glob("*/*.json")
    entry.write_text("{torn", encoding="utf-8")
    assert ep.complete("q") == "echo: q" and second.hits == 1
    assert json.loads(entry.read_text(encoding="utf-8"))["text"] == "echo: q"  # rewritten whole


def test_sampled_requests_cached_only_on_request(serve, tmp_path: Path) -> None:
    server = serve(healthy)
    ep = endpoint(server.url, cache_dir=str(tmp_path), temperature=0.7)
    ep.complete("q")
    ep.complete("q")
    assert server.hits == 2 and not list(tmp_path.glob("*/*.json"))

    ep = endpoint(server.url, cache_dir=str(tmp_path), temperature=0.7, cache_sampled=True)
    ep.complete("q", sample_index=0)
    ep.complete("q", sample_index=0)
    ep.complete("q", sample_index=1)
    assert server.hits == 4
    assert ep.complete_many(["q", "q"], sample_index=1) == ["echo: q", "echo: q"] and server.hits == 4
    with pytest.raises(ValueError, match="sample_index"):
        ep.complete("q")


# (b) connection refused, (c) hanging


def test_refused_connection_is_unavailable_after_retries(refused_url: str) -> None:
    start = time.monotonic()
    with pytest.raises(EndpointError) as info:
        endpoint(refused_url, max_retries=2).complete("q")
    assert info.value.kind == "unavailable" and info.value.attempts == 3
    assert "127.0.0.1" in str(info.value)
    assert time.monotonic() - start < GAVE_UP_WITHIN_S


def test_hanging_server_times_out(serve) -> None:
    server = serve(lambda hit, path, request: None)
    start = time.monotonic()
    with pytest.raises(EndpointError) as info:
        endpoint(server.url, read_timeout=0.3, max_retries=1).complete("q")
    assert info.value.kind == "timeout" and info.value.attempts == 2 and server.hits == 2
    assert time.monotonic() - start < GAVE_UP_WITHIN_S


# (d) server errors, (e) malformed answers, (f) rejections


def test_server_errors_are_retried(serve) -> None:
    flaky = serve(lambda hit, path, request: (500, b"oops", "text/plain") if hit <= 2 else openai_reply(path, request))
    assert endpoint(flaky.url, max_retries=3).complete("q") == "echo: q"
    assert flaky.hits == 3

    busy = serve(lambda hit, path, request: (429, b"{}", "text/plain") if hit == 1 else openai_reply(path, request))
    assert endpoint(busy.url).complete("q") == "echo: q" and busy.hits == 2

    broken = serve(lambda hit, path, request: (500, b"oops", "text/plain"))
    with pytest.raises(EndpointError) as info:
        endpoint(broken.url, max_retries=2).complete("q")
    assert info.value.kind == "unavailable" and "HTTP 500" in str(info.value) and broken.hits == 3


@pytest.mark.parametrize("body,content_type", [(b"not json{", "application/json"), (b"not json{", "text/plain"), (b'{"choices": []}', "application/json")])
def test_malformed_answers_are_bad_responses(serve, body: bytes, content_type: str) -> None:
    server = serve(lambda hit, path, request: (200, body, content_type))
    with pytest.raises(EndpointError) as info:
        endpoint(server.url, max_retries=1).complete("q")
    assert info.value.kind == "bad_response" and server.hits == 2


@pytest.mark.parametrize("status", [400, 401, 404])
def test_rejections_fail_at_once_and_spare_the_circuit(serve, status: int) -> None:
    server = serve(lambda hit, path, request: (status, b'{"error": {"message": "nope"}}', "application/json"))
    ep = endpoint(server.url, max_retries=3, circuit_threshold=2)
    for _ in range(3):
        with pytest.raises(EndpointError) as info:
            ep.complete("q")
        assert info.value.kind == "rejected" and info.value.attempts == 1 and f"HTTP {status}" in str(info.value)
    assert server.hits == 3 and not ep.circuit.open


# (g) the circuit


def test_circuit_fails_fast_with_one_warning(serve, caplog) -> None:
    server = serve(lambda hit, path, request: (503, b"down", "text/plain"))
    ep = endpoint(server.url, max_retries=0, circuit_threshold=2)
    with caplog.at_level(logging.WARNING, logger="trice.generation.remote"):
        for _ in range(2):
            with pytest.raises(EndpointError):
                ep.complete("q")
        assert server.hits == 2 and ep.circuit.open
        for _ in range(3):
            with pytest.raises(EndpointError, match="circuit open") as info:
                ep.complete("q")
            assert info.value.kind == "unavailable" and info.value.attempts == 0
    assert server.hits == 2
    (warning,) = warnings_of(caplog)
    assert server.url in warning.getMessage() and "HTTP 503" in warning.getMessage()


def test_complete_many_against_dead_server(refused_url: str, caplog) -> None:
    ep = endpoint(refused_url, max_retries=1, circuit_threshold=2)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="trice.generation.remote"):
        results = ep.complete_many([f"q{i}" for i in range(10)], n_workers=4)
    assert len(results) == 10 and all(isinstance(r, EndpointError) and r.kind == "unavailable" for r in results)
    assert time.monotonic() - start < GAVE_UP_WITHIN_S
    assert len(warnings_of(caplog)) == 1


def test_complete_many_keeps_order(serve) -> None:
    def reject_bad(hit: int, path: str, request: dict) -> Reply:
        if request["messages"][0]["content"] == "bad":
            return 401, b"{}", "application/json"
        return openai_reply(path, request)

    server = serve(reject_bad)
    results = endpoint(server.url).complete_many(["a", "bad", "c"], n_workers=2)
    assert results[0] == "echo: a" and results[2] == "echo: c"
    assert isinstance(results[1], EndpointError) and results[1].kind == "rejected"


def test_circuit_trial_after_cooldown(caplog) -> None:
    now = [0.0]
    circuit = Circuit("http://x", threshold=2, cooldown=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="trice.generation.remote"):
        circuit.failure(RuntimeError("a"))
        assert circuit.allow()
        circuit.failure(RuntimeError("b"))
        assert circuit.open and not circuit.allow()
        now[0] = 10.0
        assert circuit.allow() and not circuit.allow()  # one trial per cooldown
        circuit.failure(RuntimeError("c"))  # trial failed: open again, no second warning
        now[0] = 19.0
        assert not circuit.allow()
        now[0] = 20.0
        assert circuit.allow()  # a trial that never reports back (a caller's bug) ...
        now[0] = 30.0
        assert circuit.allow()  # ... does not block the next one
        circuit.success()
        assert not circuit.open and circuit.allow() and circuit.failures == 0
    assert len(warnings_of(caplog)) == 1
    assert any("circuit closed" in r.getMessage() for r in caplog.records)


# config and retry policy


def test_config_from_yaml_keys_and_validation() -> None:
    values = {"model": "m", "mode": "completions", "stop": ["\n"], "cache_dir": "c"}
    config = build_config(EndpointConfig, values, "t.yaml")
    assert config.stop == ["\n"] and config.cache_dir == "c"
    with pytest.raises(ConfigError, match="unknown key 'modle'"):
        build_config(EndpointConfig, {"modle": "m"}, "t.yaml")
    for bad, name in [
        ({"mode": "edit"}, "mode"),
        ({"read_timeout": 0}, "read_timeout"),
        ({"model": ""}, "model"),
        ({"max_retries": -1}, "max_retries"),
        ({"top_p": 0}, "top_p"),
    ]:
        with pytest.raises(ConfigError, match=name):
            build_config(EndpointConfig, {"model": "m", **bad}, "t.yaml")


def test_retrying_reraises_the_last_error_and_skips_rejections() -> None:
    calls: list[str] = []

    def fail(kind: str) -> None:
        calls.append(kind)
        raise EndpointError(kind, kind)

    policy = EndpointConfig(model="m", max_retries=2, backoff_initial=0.0)
    with pytest.raises(EndpointError, match="timeout"):
        retrying(policy)(fail, "timeout")
    with pytest.raises(EndpointError, match="rejected"):
        retrying(policy)(fail, "rejected")
    assert calls == ["timeout"] * 3 + ["rejected"]


# (g) hostile answers: endless, dripping, huge, not UTF-8 -- each ends within its budget as a typed error


def _endless(hit: int, path: str, request: dict) -> Reply:
    def body():
        yield b'{"choices": [{"index": 0, "text": "'
        while True:
            yield b"x" * 65_536

    return 200, body(), "application/json"


def _drip(hit: int, path: str, request: dict) -> Reply:
    def body():
        for byte in b'{"choices": [{"index": 0, "text": "slow"}]}':
            time.sleep(0.4)  # each byte well within the read timeout, the whole far beyond the call's deadline
            yield bytes([byte])

    return 200, body(), "application/json"


def _huge_text(hit: int, path: str, request: dict) -> Reply:
    def body():
        yield b'{"choices": [{"index": 0, "text": "'
        for _ in range(100):  # 100 MB of text, streamed
            yield b"a" * 1_000_000
        yield b'"}]}'

    return 200, body(), "application/json"


def _bad_bytes(hit: int, path: str, request: dict) -> Reply:
    return 200, b"\xff\xfe", "application/json"


HOSTILE = {
    "endless body": (_endless, "too_large", {"max_response_bytes": 1_000_000}),
    "drip": (_drip, "timeout", {"total_timeout": 2.0, "read_timeout": 1.0}),
    "huge text": (_huge_text, "too_large", {}),
    "bad bytes": (_bad_bytes, "bad_response", {}),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_answers_end_within_budget_as_typed_errors(serve, case: str) -> None:
    behaviour, kind, settings = HOSTILE[case]
    server = serve(behaviour)
    start = time.monotonic()
    with pytest.raises(EndpointError) as info:
        endpoint(server.url, mode="completions", max_tokens=16, **settings).complete("q")
    assert info.value.kind == kind, str(info.value)
    assert time.monotonic() - start < GAVE_UP_WITHIN_S
    if kind == "too_large":
        assert server.hits == 1  # the same request would flood again: not retried
    if case == "bad bytes":
        assert "not UTF-8" in str(info.value)


def test_a_hostile_answer_is_one_rows_error_in_a_batch(serve) -> None:
    def mixed(hit: int, path: str, request: dict) -> Reply:
        return {"flood": _endless, "garbage": _bad_bytes}.get(request["prompt"], healthy)(hit, path, request)

    server = serve(mixed)
    ep = endpoint(server.url, mode="completions", max_response_bytes=500_000, max_retries=0)
    results = ep.complete_many(["a", "flood", "b", "garbage"], n_workers=2)
    assert results[0] == "echo: a" and results[2] == "echo: b"
    assert [r.kind for r in (results[1], results[3])] == ["too_large", "bad_response"]


def test_text_is_cut_to_what_max_tokens_can_spell(serve) -> None:
    server = serve(lambda hit, path, request: openai_reply(path, request, text="word " * 10_000))
    text = endpoint(server.url, max_tokens=16).complete("q")
    assert len(text) == 16 * 32 and text.startswith("word word")


def test_the_deadline_covers_retries_and_backoff(serve) -> None:
    server = serve(lambda hit, path, request: (503, b"busy", "text/plain"))
    start = time.monotonic()
    with pytest.raises(EndpointError) as info:
        endpoint(server.url, max_retries=50, backoff_initial=0.2, backoff_max=0.5, total_timeout=1.5).complete("q")
    assert info.value.kind in ("unavailable", "timeout")
    assert 1 < server.hits < 51  # the deadline, not the retry count, ended it
    assert time.monotonic() - start < GAVE_UP_WITHIN_S


# (g) native tool calls: tools offered, tool_calls read back as hermes text

QUESTION = [{"role": "user", "content": "What is 48+48/2?"}]
CALC = tool_schema("calculator")


def calls_reply(*calls: dict, text: str | None = None):
    """A behaviour answering every request with these tool calls (and ``text`` as the content)."""
    return lambda hit, path, request: openai_reply(path, request, text=text, tool_calls=list(calls))


def test_offered_tools_are_sent_and_a_returned_call_is_hermes_text(serve) -> None:
    server = serve(calls_reply(tool_call("calculator", {"expression": "48+48/2"})))
    text = endpoint(server.url).complete(ToolChat(QUESTION, [CALC]))
    assert text == '<tool_call>{"name": "calculator", "arguments": {"expression": "48+48/2"}}</tool_call>'
    _, _, body = server.requests[0]
    assert body["messages"] == QUESTION and body["tools"] == [CALC]
    call = parse_native_call(text, ["calculator"], "hermes")
    assert isinstance(call, NativeToolCall) and (call.name, call.argument, call.calls) == ("calculator", "48+48/2", 1)


def test_several_calls_follow_the_content_in_order(serve) -> None:
    calls = [tool_call("calculator", {"expression": "48/2"}), tool_call("calculator", {"expression": "48+24"}, index=1)]
    text = endpoint(serve(calls_reply(*calls, text="Let me compute.")).url).complete(ToolChat(QUESTION, [CALC]))
    first, second = (f'<tool_call>{{"name": "calculator", "arguments": {{"expression": "{e}"}}}}</tool_call>' for e in ("48/2", "48+24"))
    assert text == f"Let me compute.\n{first}\n{second}"
    call = parse_native_call(text, ["calculator"], "hermes")
    assert isinstance(call, NativeToolCall) and (call.argument, call.calls) == ("48/2", 2)


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ("48+(", "arguments are not JSON"),  # the model's JSON, broken: kept as written
        ('["48+1"]', "arguments must be an object"),
        ({"expr": "1"}, "unexpected argument"),
        (None, "arguments must be an object"),
    ],
)
def test_a_call_with_unusable_arguments_is_a_failed_call_not_an_error(serve, arguments: object, error: str) -> None:
    text = endpoint(serve(calls_reply(tool_call("calculator", arguments))).url).complete(ToolChat(QUESTION, [CALC]))
    call = parse_native_call(text, ["calculator"], "hermes")
    assert isinstance(call, NativeCallError) and call.name == "calculator" and call.kind == "bad_argument"
    assert error in call.error


@pytest.mark.parametrize(
    "calls",
    [
        [{"id": "c", "type": "function", "function": {"arguments": "{}"}}],  # no name
        [tool_call("", {"expression": "1"})],
        [tool_call(7, {"expression": "1"})],
        [{"id": "c", "type": "function"}],
        ["calculator(1+1)"],
        {"name": "calculator"},  # not a list
    ],
)
def test_tool_calls_the_client_cannot_read_are_bad_responses(serve, calls: object) -> None:
    server = serve(lambda hit, path, request: openai_reply(path, request, tool_calls=calls))
    with pytest.raises(EndpointError) as info:
        endpoint(server.url, max_retries=0).complete(ToolChat(QUESTION, [CALC]))
    assert info.value.kind == "bad_response" and "tool_calls" in str(info.value)
    assert endpoint(server.url, max_retries=0).complete_many([ToolChat(QUESTION, [CALC])])[0].kind == "bad_response"


def test_calls_are_read_only_when_tools_were_offered_and_completions_mode_offers_none(serve) -> None:
    server = serve(calls_reply(tool_call("calculator", {"expression": "1"}), text="plain"))
    assert endpoint(server.url).complete(QUESTION) == "plain"
    assert "tools" not in server.requests[0][2]
    with pytest.raises(TypeError, match="tools are offered in chat mode only"):
        endpoint(server.url, mode="completions").complete(ToolChat(QUESTION, [CALC]))
    with pytest.raises(TypeError, match="non-empty list of tool schemas"):
        endpoint(server.url).complete(ToolChat(QUESTION, []))


def test_the_cache_keys_on_the_tools_offered(serve, tmp_path: Path) -> None:
    server = serve(calls_reply(tool_call("calculator", {"expression": "48+48/2"}), text="sure"))
    ep = endpoint(server.url, cache_dir=str(tmp_path))
    with_tools = ep.complete(ToolChat(QUESTION, [CALC]))
    assert ep.complete(ToolChat(QUESTION, [CALC])) == with_tools and server.hits == 1
    assert ep.complete(QUESTION) == "sure" and server.hits == 2  # the same messages, no tools: another key
    ep.complete(ToolChat(QUESTION, [tool_schema("WikiSearch")]))
    assert server.hits == 3
    assert endpoint(server.url, cache_dir=str(tmp_path)).complete(ToolChat(QUESTION, [CALC])) == with_tools and server.hits == 3
    # a prompt offering no tools keeps the key it had before tools existed: old caches still hit
    params = {"max_tokens": 128, "temperature": 0.0, "top_p": 1.0, "stop": []}
    assert DiskCache(tmp_path).get({"model": "fake-model", "mode": "chat", "prompt": QUESTION, **params}) == "sure"
