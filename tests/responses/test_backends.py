"""Generation backends: local transformers, vLLM (mapping only: no GPU here), an OpenAI-compatible
server (fake ones on 127.0.0.1, one of them running the tiny model), all behind `trice generate`."""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from pathlib import Path

import pytest

from tests.helpers.fake_servers import Reply, healthy, openai_reply, serve, tool_call  # noqa: F401 (serve: fixture)
from trice.cli import main
from trice.utils.config import ConfigError, build_config, fingerprint_fields
from trice.core.schema import Example
from trice.responses.generate import GenerateConfig, generate_for_examples
from trice.generation.stopping import STOP_MARKERS, clean_response
from trice.utils.io import read_jsonl
from trice.core.templates import chat_messages
from trice.responses.few_shot import FewShotBackend
from trice.generation.remote import ToolChat
from trice.core.prompts import FEW_SHOT_PRESETS, INSTRUCTIONS, task_prompt
from trice.core.native import NativeToolCall, parse_native_call, tool_schema

HAS_VLLM = importlib.util.find_spec("vllm") is not None
QUESTIONS = ["48 + 2?", "How many clips did Natalia sell in April and May altogether?", "What is 7 * 6 + 1?", "1", "ok", "2 * 3?"]


def _examples(n: int = 6) -> list[Example]:
    return [Example(f"e{i}", "svamp", "math", QUESTIONS[i % len(QUESTIONS)], ("1",)) for i in range(n)]


def _write_examples(path: Path, examples: list[Example]) -> Path:
    path.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in examples), encoding="utf-8")
    return path


def _endpoint_flags(url: str, **extra: str) -> list[str]:
    flags = {"backend": "openai", "endpoint_url": url, "model": "fake-model", "max_new_tokens": "12",
             "endpoint_max_retries": "0", "endpoint_timeout": "5", "batch_size": "2"} | extra  # fmt: skip
    return [f"--{k}={v}" for k, v in flags.items()]


# --- config ---------------------------------------------------------------------------------------


def test_new_generate_fields_at_their_defaults_keep_old_fingerprints() -> None:
    plain = fingerprint_fields(GenerateConfig())
    assert not any(k == "backend" or k == "dtype" or k.startswith(("endpoint_", "vllm_")) for k in plain)
    assert fingerprint_fields(GenerateConfig(backend="openai"))["backend"] == "openai"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"backend": "tgi"}, "backend: unknown 'tgi'"),
        ({"dtype": "int8"}, "dtype: unknown 'int8'"),
        ({"backend": "vllm", "num_beams": 4}, "num_beams: the vllm backend decodes without beams"),
        ({"backend": "openai", "repetition_penalty": 1.3}, "repetition_penalty: the OpenAI API has none"),
        ({"backend": "openai", "adapter": "runs/x/adapter"}, "adapter: the openai backend cannot apply a LoRA adapter"),
        ({"backend": "openai", "endpoint_url": "localhost:8000"}, "endpoint_url must start with http"),
        ({"backend": "openai", "endpoint_mode": "responses"}, "endpoint_mode: unknown"),
        ({"vllm_gpu_memory_utilization": 1.5}, "vllm_gpu_memory_utilization must be in"),
        ({"backend": "openai", "endpoint_tools": True}, "endpoint_tools: tools are offered through the chat API only"),
        ({"endpoint_tools": True}, "endpoint_tools: only the openai backend sends tools"),
        (
            {"backend": "openai", "template": "chat", "call_format": "native", "tool_parser": "hermes", "endpoint_mode": "chat"},
            "call_format native with endpoint_mode chat needs endpoint_tools",
        ),
        (
            {"backend": "openai", "template": "chat", "call_format": "native", "tool_parser": "llama3", "endpoint_mode": "chat", "endpoint_tools": True},
            "tool_parser 'llama3' would not read them",
        ),
    ],
)
def test_a_backend_asked_for_what_it_cannot_do_fails_naming_the_field(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(GenerateConfig, values, "recipe.yaml: eval")


# --- vLLM -------------------------------------------------------------------------------------------


def test_vllm_sampling_kwargs_map_our_settings() -> None:
    from trice.responses.backends import vllm_sampling_kwargs

    greedy = vllm_sampling_kwargs(GenerateConfig(max_new_tokens=64, repetition_penalty=1.3, temperature=0.7))
    assert greedy == {
        "n": 1, "max_tokens": 64, "repetition_penalty": 1.3, "stop": list(STOP_MARKERS),
        "skip_special_tokens": True, "temperature": 0.0, "top_p": 1.0,
    }  # fmt: skip
    sampled = vllm_sampling_kwargs(GenerateConfig(do_sample=True, temperature=0.7, top_p=0.9))
    assert (sampled["temperature"], sampled["top_p"], sampled["repetition_penalty"]) == (0.7, 0.9, 1.0)


@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (GPU only)")
def test_vllm_sampling_params_accept_the_mapping() -> None:
    from vllm import SamplingParams

    from trice.responses.backends import vllm_sampling_kwargs

    params = SamplingParams(**vllm_sampling_kwargs(GenerateConfig(do_sample=True, temperature=0.7, top_p=0.9, max_new_tokens=32)))
    assert (params.max_tokens, params.temperature, params.top_p, list(params.stop)) == (32, 0.7, 0.9, list(STOP_MARKERS))


def test_vllm_refuses_an_adapter_with_trained_token_rows(tmp_path: Path) -> None:
    """vLLM applies LoRA weights only, so an adapter that also trains token rows (the native call
    format's markers) would generate as if those rows were never trained."""
    import torch
    from safetensors.torch import save_file

    from trice.responses.backends import check_vllm_adapter

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    save_file({"q.lora_A.weight": torch.ones(2, 4), "q.lora_B.weight": torch.ones(4, 2)}, str(adapter / "adapter_model.safetensors"))
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 2, "trainable_token_indices": None}))
    check_vllm_adapter(str(adapter))  # plain LoRA: accepted
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 2, "trainable_token_indices": {"embed_tokens": [5]}}))
    with pytest.raises(ConfigError, match="trains embedding rows beside LoRA.*use backend transformers"):
        check_vllm_adapter(str(adapter))


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed")
def test_vllm_backend_without_vllm_fails_in_one_line(tmp_path: Path, capsys) -> None:
    src = _write_examples(tmp_path / "in.jsonl", _examples(2))
    code = main(["generate", f"--input={src}", f"--output={tmp_path / 'out.jsonl'}", "--backend=vllm", "--model=unused"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("trice generate: error: backend: 'vllm' needs the vllm package") and "pip install" in err[-1]
    assert not (tmp_path / "out.jsonl").exists() or not read_jsonl(tmp_path / "out.jsonl")


# --- OpenAI-compatible server -------------------------------------------------------------------------


def test_trice_generate_through_a_server_resumes_by_id(serve, tmp_path: Path) -> None:
    server = serve(healthy)
    examples = _examples(6)
    out = tmp_path / "responses.jsonl"
    assert main(["generate", f"--input={_write_examples(tmp_path / 'a.jsonl', examples[:3])}", f"--output={out}", *_endpoint_flags(server.url)]) == 0
    assert server.hits == 3
    path, _, body = server.requests[0]
    assert path == "/v1/completions"  # the exact prompt text, as the local backends read it
    assert body["model"] == "fake-model" and body["max_tokens"] == 12 and body["temperature"] == 0.0
    assert body["stop"] == list(STOP_MARKERS)
    assert {b["prompt"] for _, _, b in server.requests} == {task_prompt("math", e.question) for e in examples[:3]}

    assert main(["generate", f"--input={_write_examples(tmp_path / 'b.jsonl', examples)}", f"--output={out}", *_endpoint_flags(server.url)]) == 0
    assert server.hits == 6  # only the three new examples were asked for
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [e.id for e in examples]
    assert [r["response"] for r in rows] == [clean_response("echo: " + task_prompt("math", e.question)) for e in examples]


def test_failed_requests_are_kept_as_errors_then_retried_once_the_server_answers(serve, tmp_path: Path, caplog) -> None:
    def flaky(hit: int, path: str, request: dict) -> Reply:
        if "clips" in request["prompt"]:
            return 500, b"overloaded", "text/plain"
        return openai_reply(path, request)

    examples = _examples(4)
    out = tmp_path / "responses.jsonl"
    first = serve(flaky)
    config = build_config(GenerateConfig, dict(backend="openai", endpoint_url=first.url, model="m", endpoint_max_retries=0, batch_size=2), "test")
    with caplog.at_level(logging.WARNING, logger="trice.responses.generate"):
        rows = generate_for_examples(examples, out, None, None, config)
    failed = [r for r in rows if r.get("error")]
    assert [r["id"] for r in failed] == ["e1"] and failed[0]["response"] == "" and failed[0]["error"].startswith("unavailable: ")
    assert "1 of 4 requests failed" in caplog.text

    second = serve(healthy)
    config.endpoint_url = second.url
    rows = generate_for_examples(examples, out, None, None, config)
    assert second.hits == 1  # only the failed one is asked again
    assert not any(r.get("error") for r in rows)
    assert [r["id"] for r in read_jsonl(out)] == ["e0", "e1", "e2", "e3"]  # one row per id after the retry


def test_chat_mode_sends_the_conversation_and_a_passed_model_is_not_used(serve, tmp_path: Path, caplog) -> None:
    from trice.responses.backends import OpenAIBackend, load_backend

    server = serve(healthy)
    config = GenerateConfig(backend="openai", endpoint_url=server.url, endpoint_model="served", endpoint_mode="chat", template="chat", model="m")
    with caplog.at_level(logging.WARNING, logger="trice.responses.backends"):
        backend = load_backend(config, model=object())
    assert isinstance(backend, OpenAIBackend) and "not used" in caplog.text
    rows = generate_for_examples(_examples(1), tmp_path / "out.jsonl", None, None, config, backend=backend)
    _, _, body = server.requests[0]
    assert body["model"] == "served"
    assert body["messages"] == chat_messages(INSTRUCTIONS["math"], "48 + 2?")  # the server applies its own template
    assert rows[0]["response"] == "echo: " + body["messages"][-1]["content"]


def test_endpoint_tools_offer_each_task_its_tool_and_the_calls_become_the_responses(serve, tmp_path: Path) -> None:
    def calls(hit: int, path: str, request: dict) -> Reply:
        name = request["tools"][0]["function"]["name"]
        if "broken" in request["messages"][-1]["content"]:  # a server whose parser lost the name
            return openai_reply(path, request, tool_calls=[{"id": "c", "type": "function", "function": {"arguments": "{}"}}])
        parameter = next(iter(request["tools"][0]["function"]["parameters"]["properties"]))
        return openai_reply(path, request, tool_calls=[tool_call(name, {parameter: "48+2"})])

    server = serve(calls)
    examples = [*_examples(1), Example("q0", "webq", "qa", "Who wrote Hamlet?", ("Shakespeare",)), Example("e9", "svamp", "math", "broken", ("1",))]
    config = build_config(
        GenerateConfig, dict(backend="openai", endpoint_url=server.url, model="m", endpoint_mode="chat", endpoint_tools=True, endpoint_max_retries=0), "test"
    )
    rows = generate_for_examples(examples, tmp_path / "out.jsonl", None, None, config)
    sent = {b["messages"][-1]["content"]: b for _, _, b in server.requests}
    assert sent[task_prompt("math", "48 + 2?")]["tools"] == [tool_schema("calculator")]
    assert sent[task_prompt("qa", "Who wrote Hamlet?")]["tools"] == [tool_schema("WikiSearch")]
    for row, tool in zip(rows[:2], ("calculator", "WikiSearch")):
        call = parse_native_call(row["response"], [tool], "hermes")
        assert isinstance(call, NativeToolCall) and (call.name, call.argument) == (tool, "48+2") and "error" not in row
    assert rows[2]["response"] == "" and rows[2]["error"].startswith("bad_response: ")


def test_a_few_shot_prefix_leads_a_tool_offering_prompt_and_keeps_its_tools() -> None:
    config = GenerateConfig(backend="openai", model="m", endpoint_mode="chat", endpoint_tools=True)
    prompt = FewShotBackend(config).prompt("math", "2+2?")
    assert isinstance(prompt, ToolChat) and prompt.tools == [tool_schema("calculator")]
    assert prompt.messages == [{"role": "user", "content": FEW_SHOT_PRESETS["math"] + task_prompt("math", "2+2?")}]


# --- agreement on the tiny model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    import torch

    from trice.generation.models import load_model

    torch.set_num_threads(1)
    return load_model(str(tiny_model_dir))


def _tiny_server(model, tokenizer):
    """A completions server that continues the prompt with the tiny model, greedily, one request at a
    time, and answers the raw decoded text as a real server would (no cleaning)."""
    import torch

    lock = threading.Lock()

    def generate(hit: int, path: str, request: dict) -> Reply:
        with lock, torch.inference_mode():
            ids = tokenizer(request["prompt"], return_tensors="pt", add_special_tokens=False)
            out = model.generate(**ids, max_new_tokens=request["max_tokens"], do_sample=False, pad_token_id=tokenizer.pad_token_id)
            text = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        return openai_reply(path, request, text)

    return generate


def test_local_paths_and_a_server_running_the_same_model_agree(tiny, tiny_model_dir, serve, tmp_path: Path) -> None:
    model, tokenizer = tiny
    examples = _examples(6)
    local = GenerateConfig(model=str(tiny_model_dir), batch_size=4, max_new_tokens=10)
    preloaded = generate_for_examples(examples, tmp_path / "preloaded.jsonl", model, tokenizer, local)  # trice.pipeline.eval_stage' call today
    loaded_here = generate_for_examples(examples, tmp_path / "loaded.jsonl", None, None, local)  # the backend loads the model
    assert preloaded == loaded_here

    server = serve(_tiny_server(model, tokenizer))
    remote = GenerateConfig(model=str(tiny_model_dir), batch_size=4, max_new_tokens=10, backend="openai", endpoint_url=server.url, endpoint_max_retries=0)
    served = generate_for_examples(examples, tmp_path / "served.jsonl", None, None, remote)
    assert server.hits == 6
    assert [r["response"] for r in served] == [r["response"] for r in preloaded]
    assert any(r["response"] for r in served)  # the comparison is not between empty strings
