"""Stage II candidates: gold + tiny-model sources (plain and few-shot) + an endpoint on 127.0.0.1,
merged in source order; failures become empty responses; reruns skip what is done; bad source
entries fail located; ``trice score`` accepts the output; the teacher source ends at its call."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

import trice.stage2.candidates
import trice.generation.models
from tests.conftest import build_tiny_model
from tests.helpers.fake_servers import GAVE_UP_WITHIN_S, openai_reply, serve, tool_call  # noqa: F401 (serve: fixture)
from trice.stage2.candidates import CandidatesConfig, collect_candidates, same_source
from trice.stage2.candidate_sources import TEACHER_MODEL, EndpointSource, ModelSource, teacher_source
from trice.cli import main
from trice.utils.config import ConfigError, build_config
from trice.utils.io import read_jsonl, write_jsonl
from trice.pipeline.plan import plan_recipe
from trice.core.prompts import MATH_FEW_SHOT, MATH_FEW_SHOT_EXAMPLES, task_prompt
from trice.stage2.score import ScoreConfig, run_score
from trice.responses.generate import task_stop_rule
from trice.tasks import get_task
from trice.core.native import NativeToolCall, parse_native_call, tool_schema

pytestmark = pytest.mark.usefixtures("one_thread")

ROWS = [
    {
        "id": f"d{i}",
        "dataset": "svamp",
        "task": "math",
        "question": f"What is {i} + 3?",
        "answers": [str(i + 3)],
        "output": f"calculator({i}+3)",
        "used_tool": True,
        "source": "annotation",
    }
    for i in range(4)
]
LITERAL_PREFIX = "Always answer with a calculator call.\n\n"


@pytest.fixture
def loads(monkeypatch) -> list[tuple]:
    """Every model load, as (model, adapter)."""
    calls: list[tuple] = []
    original = trice.generation.models.load_model

    def counting(name: str, adapter: Any = None, **kwargs: Any) -> Any:
        calls.append((name, adapter))
        return original(name, adapter, **kwargs)

    monkeypatch.setattr(trice.generation.models, "load_model", counting)
    return calls


@pytest.fixture
def prompts_generated(monkeypatch) -> dict[str, list[str]]:
    """The prompts each model source generated for, by source name (its tqdm desc)."""
    seen: dict[str, list[str]] = {}
    original = trice.stage2.candidates.generate_responses

    def recording(model: Any, tokenizer: Any, prompts: list[str], batch_size: int, desc: str, **kwargs: Any) -> Any:
        done = set(kwargs.get("done", ()))
        seen.setdefault(desc, []).extend(p for i, p in enumerate(prompts) if i not in done)
        return original(model, tokenizer, prompts, batch_size, desc=desc, **kwargs)

    monkeypatch.setattr(trice.stage2.candidates, "generate_responses", recording)
    return seen


def calculator_server(hit: int, path: str, request: dict) -> tuple[int, bytes, str]:
    return openai_reply(path, request, "calculator(2+3)")


def _endpoint(url: str, **fields: Any) -> dict:
    return {
        "name": "api",
        "kind": "endpoint",
        "base_url": url,
        "model": "fake-model",
        "max_retries": 0,
        "backoff_initial": 0.01,
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
        **fields,
    }


def _sources(tiny_model_dir: Path, *extra: dict) -> list[dict]:
    tiny = {"kind": "model", "model": str(tiny_model_dir), "max_new_tokens": 4, "batch_size": 2}
    return [{"name": "gold", "kind": "gold"}, {"name": "tiny", **tiny}, {"name": "tiny-tools", **tiny, "few_shot": "math"}, *extra]


def _config(tmp_path: Path, sources: list[dict], rows: list[dict] = ROWS) -> CandidatesConfig:
    write_jsonl(tmp_path / "dtool.jsonl", rows)
    return CandidatesConfig(input=str(tmp_path / "dtool.jsonl"), output=str(tmp_path / "candidates.jsonl"), sources=sources)


def test_candidates_from_every_kind_of_source_then_score(tmp_path, tiny_model_dir, serve, loads, prompts_generated):
    server = serve(calculator_server)
    sources = _sources(tiny_model_dir, _endpoint(server.url, cache_dir=str(tmp_path / "cache"), few_shot=LITERAL_PREFIX))
    config = _config(tmp_path, sources)
    yaml_file = tmp_path / "candidates.yaml"
    yaml_file.write_text(json.dumps({"input": config.input, "output": config.output, "sources": sources}))  # JSON is YAML
    assert main(["candidates", "--config", str(yaml_file)]) == 0

    rows = read_jsonl(config.output)
    assert [r["id"] for r in rows] == [r["id"] for r in ROWS]
    for row, source in zip(rows, ROWS):
        assert {k: row[k] for k in ("dataset", "task", "question", "answers")} == {k: source[k] for k in ("dataset", "task", "question", "answers")}
        assert row["sources"] == ["gold", "tiny", "tiny-tools", "api"]
        assert row["responses"][0] == source["output"] and row["responses"][3] == "calculator(2+3)"
        assert row["errors"] == [None] * 4 and all(isinstance(r, str) for r in row["responses"])
    assert loads == [(str(tiny_model_dir), None)]  # two sources, one model, one load
    assert [len(prompts_generated[name]) for name in ("tiny", "tiny-tools")] == [4, 4]
    assert all(p.startswith(MATH_FEW_SHOT) for p in prompts_generated["tiny-tools"])
    assert not any(p.startswith(MATH_FEW_SHOT) for p in prompts_generated["tiny"])
    asked = [body["messages"][-1]["content"] for _, _, body in server.requests]
    assert sorted(asked) == sorted(LITERAL_PREFIX + task_prompt("math", r["question"]) for r in ROWS)

    summary = run_score(ScoreConfig(task="math", input=config.output, output=str(tmp_path / "scored.jsonl")))
    assert summary["n"] == 4 and set(summary["mean_score_by_source"]) == {"gold", "tiny", "tiny-tools", "api"}
    assert summary["mean_score_by_source"]["gold"] == 20.0
    scored = {r["id"]: r for r in read_jsonl(tmp_path / "scored.jsonl")}
    assert scored["d2"]["states"][3] == "True-Yes"  # calculator(2+3) is right for "2 + 3"

    before = Path(config.output).read_bytes()
    collect_candidates(config)  # everything done: no load, no request
    assert len(loads) == 1 and server.hits == 4 and Path(config.output).read_bytes() == before
    for part in Path(config.output + ".parts").glob("*.jsonl"):
        part.unlink()
    collect_candidates(config)  # parts gone: the models run again, but the endpoint's answers come from its cache
    assert len(loads) == 2 and server.hits == 4 and Path(config.output).read_bytes() == before


@pytest.mark.parametrize("failure", ["error", "hang"])
def test_failing_endpoint_gives_empty_responses_and_one_warning(tmp_path, serve, caplog, failure):
    dead = serve(lambda hit, path, request: (503, b"down", "text/plain") if failure == "error" else None)
    sources = [{"name": "gold", "kind": "gold"}, _endpoint(dead.url, read_timeout=0.3, circuit_threshold=2)]
    config = _config(tmp_path, sources)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING):
        collect_candidates(config)
    assert time.monotonic() - start < GAVE_UP_WITHIN_S
    rows = read_jsonl(config.output)
    kind = "unavailable" if failure == "error" else "timeout"
    for row in rows:
        assert row["responses"][1] == "" and row["errors"][0] is None
        assert row["errors"][1].split(":")[0] in (kind, "unavailable")  # later calls meet the open circuit
    assert len([r for r in caplog.records if r.name == "trice.stage2.candidates" and r.levelno == logging.WARNING]) == 1
    assert len([r for r in caplog.records if r.name == "trice.generation.remote" and r.levelno == logging.WARNING]) <= 1

    scored = tmp_path / "scored.jsonl"
    summary = run_score(ScoreConfig(task="math", input=config.output, output=str(scored)))
    assert summary["states"]["no-prediction"] == 4
    assert all(r["predictions"][1] is None and r["scores"][1] == 0 for r in read_jsonl(scored))

    healthy = serve(calculator_server)
    config.sources[1]["base_url"] = healthy.url  # the address is no setting of the answers: the part is kept
    collect_candidates(config)  # failed requests are tried again
    assert healthy.hits == 4
    assert all(r["responses"][1] == "calculator(2+3)" and r["errors"] == [None, None] for r in read_jsonl(config.output))


def test_rerun_after_a_kill_generates_only_the_missing_ids(tmp_path, tiny_model_dir, prompts_generated, caplog):
    config = _config(tmp_path, _sources(tiny_model_dir)[:2])
    collect_candidates(config)
    part = Path(config.output + ".parts") / "tiny.jsonl"
    lines = part.read_text().splitlines()
    kept = [json.loads(line) | {"response": "written before the kill"} for line in lines[:2]]
    part.write_text("".join(json.dumps(r) + "\n" for r in kept) + lines[2][:7])  # a torn last line, as a kill leaves
    prompts_generated.clear()

    collect_candidates(config)
    missing = {r["id"] for r in ROWS} - {r["id"] for r in kept}
    assert sorted(prompts_generated["tiny"]) == sorted(task_prompt("math", r["question"]) for r in ROWS if r["id"] in missing)
    rows = {r["id"]: r for r in read_jsonl(config.output)}
    assert all(rows[r["id"]]["responses"][1] == "written before the kill" for r in kept)
    assert len(read_jsonl(part)) == 4

    config.sources[1]["max_new_tokens"] = 2  # other settings: the part starts over
    prompts_generated.clear()
    with caplog.at_level(logging.WARNING):
        collect_candidates(config)
    assert len(prompts_generated["tiny"]) == 4 and "settings changed" in caplog.text


def test_a_part_is_reused_by_a_changed_config_only_where_it_was_made_the_same(tmp_path, tiny_model_dir, prompts_generated, caplog):
    """Adding a source keeps the others' parts (the pipeline keeps them across a start-over); other
    questions, or another order of them, make a model source's part start over."""
    sources = _sources(tiny_model_dir)
    collect_candidates(_config(tmp_path, sources[:2]))
    prompts_generated.clear()
    collect_candidates(_config(tmp_path, sources))  # a source added
    assert "tiny" not in prompts_generated and len(prompts_generated["tiny-tools"]) == 4
    prompts_generated.clear()
    with caplog.at_level(logging.WARNING):
        collect_candidates(_config(tmp_path, sources, ROWS[::-1]))  # the same questions in another order
    assert len(prompts_generated["tiny"]) == 4 and "settings changed" in caplog.text


def test_a_model_part_records_its_questions_and_adapter_weights(tmp_path):
    from trice.stage2.candidates import ModelSource, _made_from
    from trice.core.schema import Example

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"weights v1")
    examples = [Example.from_dict(r, "dtool.jsonl") for r in ROWS]
    first = _made_from(ModelSource(name="s", adapter=str(adapter)), examples)
    assert _made_from(ModelSource(name="s", adapter=str(adapter)), examples) == first
    assert _made_from(ModelSource(name="s", adapter=str(adapter)), examples[:3])["examples"] != first["examples"]
    (adapter / "adapter_model.safetensors").write_bytes(b"weights v2")  # retrained in place
    assert _made_from(ModelSource(name="s", adapter=str(adapter)), examples)["adapter_sha256"] != first["adapter_sha256"]
    assert set(_made_from(ModelSource(name="s"), examples)) == {"examples"}


def test_a_part_is_kept_when_its_files_are_named_by_another_path(tmp_path, monkeypatch, caplog):
    """A run resumed through an absolute run directory, after one through a relative one, keeps the
    parts: the content hashes decide, not how the adapter or responses file is spelled."""
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "given.jsonl", [{"id": r["id"], "response": f"calculator({i}+3)"} for i, r in enumerate(ROWS)])
    relative = [{"name": "gold", "kind": "gold"}, {"name": "given", "kind": "responses", "path": "given.jsonl"}]
    absolute = [relative[0], relative[1] | {"path": str(tmp_path / "given.jsonl")}]
    collect_candidates(_config(tmp_path, relative))
    with caplog.at_level(logging.WARNING):
        collect_candidates(_config(tmp_path, absolute))
    assert "settings changed" not in caplog.text
    write_jsonl(tmp_path / "given.jsonl", [{"id": r["id"], "response": "other"} for r in ROWS])  # other content
    with caplog.at_level(logging.WARNING):
        collect_candidates(_config(tmp_path, absolute))
    assert "settings changed" in caplog.text
    assert all(r["responses"][1] == "other" for r in read_jsonl(tmp_path / "candidates.jsonl"))

    model = {"kind": "model", "model": "m", "adapter": "runs/x/adapter", "adapter_sha256": "a"}
    assert same_source(model, model | {"adapter": "/abs/runs/x/adapter"})
    assert not same_source(model, model | {"adapter_sha256": "b"})


@pytest.mark.parametrize(
    "sources,message",
    [
        ([{"name": "gold", "kind": "gold"}, {"name": "m", "kind": "model", "temprature": 0.5}], "sources[1]: unknown key 'temprature'"),
        ([{"name": "gold", "kind": "gold"}, {"name": "m", "model": "x"}], "sources[1]: key 'kind': expected one of gold, model, endpoint"),
        ([{"name": "m", "kind": "model"}, {"name": "gold", "kind": "gold"}], "sources[0]: the gold source"),
        ([{"name": "gold", "kind": "gold"}, {"name": "g2", "kind": "gold"}], "sources[1]: the gold source"),
        ([{"name": "gold", "kind": "gold"}, {"name": "gold", "kind": "model"}], "sources[1]: key 'name': 'gold' is used"),
        ([{"name": "gold", "kind": "gold"}, {"name": "a/b", "kind": "model"}], "sources[1]: key 'name': 'a/b' is not a plain"),
        ([{"name": "gold", "kind": "gold"}, {"name": "m", "kind": "model", "batch_size": 0}], "sources[1]: batch_size must be >= 1"),
        ([{"name": "gold", "kind": "gold"}, {"name": "m", "kind": "model", "max_new_tokens": "8"}], "sources[1]: key 'max_new_tokens': expected int"),
        ([{"name": "gold", "kind": "gold"}, {"name": "api", "kind": "endpoint"}], "sources[1]: model must be set"),
        (
            [{"name": "gold", "kind": "gold"}, {"name": "api", "kind": "endpoint", "model": "m", "mode": "completions", "tools": True}],
            "sources[1]: tools: tools are offered through the chat API only",
        ),
        ([{"name": "gold", "kind": "gold"}, "tiny"], "key 'sources': expected list"),  # of mappings: checked by type
        ([], "sources: none given"),
    ],
)
def test_bad_source_entries_fail_located(sources, message):
    with pytest.raises(ConfigError) as info:
        build_config(CandidatesConfig, {"input": "in.jsonl", "output": "out.jsonl", "sources": sources}, "c.yaml")
    assert str(info.value).startswith(f"c.yaml: {message}")


def test_bad_source_in_cli_config_fails_before_loading(tmp_path, capsys, loads):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("input: x.jsonl\noutput: y.jsonl\nsources:\n  - {name: gold, kind: gold}\n  - {name: m, kind: model, temprature: 0.5}\n")
    assert main(["candidates", "--config", str(yaml_file)]) == 2
    assert f"{yaml_file}: sources[1]: unknown key 'temprature'" in capsys.readouterr().err and loads == []


def test_math_few_shot_examples_call_the_calculator_rightly():
    task = get_task("math")
    for (question, call), answer in zip(MATH_FEW_SHOT_EXAMPLES, ["72", "10", "43"]):
        judgement = task.judge(call, [answer], task.registry())
        assert judgement.used_tool and judgement.correct, (question, call)
        assert task_prompt("math", question) + call in MATH_FEW_SHOT


def test_responses_source_reads_given_responses_and_names_a_missing_id(tmp_path):
    from trice.stage2.candidates import CandidatesConfig, collect_candidates
    from trice.utils.io import DataError, read_jsonl, write_jsonl

    d_tool = [
        {"id": f"q{i}", "dataset": "toy", "task": "math", "question": f"{i}+1?", "answers": [str(i + 1)], "output": f"calculator({i}+1)"} for i in range(3)
    ]
    write_jsonl(tmp_path / "d_tool.jsonl", d_tool)
    write_jsonl(tmp_path / "given.jsonl", [{"id": f"q{i}", "response": f"It is {i + 2}.", "extra": 1} for i in range(3)])
    sources = [{"name": "gold", "kind": "gold"}, {"name": "given", "kind": "responses", "path": str(tmp_path / "given.jsonl")}]
    config = CandidatesConfig(input=str(tmp_path / "d_tool.jsonl"), output=str(tmp_path / "c.jsonl"), sources=sources)
    collect_candidates(config)
    assert [r["responses"] for r in read_jsonl(tmp_path / "c.jsonl")] == [[f"calculator({i}+1)", f"It is {i + 2}."] for i in range(3)]

    write_jsonl(tmp_path / "given.jsonl", [{"id": "q0", "response": "x"}])  # changed file: the part starts over
    with pytest.raises(DataError, match=r"given\.jsonl: field 'id': no response for 2 D_tool questions \(first: q1\)"):
        collect_candidates(config)


def test_sampled_sources_of_one_model_differ_by_their_own_seed(tmp_path, tiny_model_dir):
    """Several samples per question from one model: each source draws its own with its own seed; a
    source without a seed keeps the candidates' seed."""
    sampled = {"kind": "model", "model": str(tiny_model_dir), "max_new_tokens": 6, "batch_size": 2, "do_sample": True}
    sources = [
        {"name": "gold", "kind": "gold"},
        {"name": "s-default", **sampled},
        {"name": "s0", **sampled, "seed": 0},
        {"name": "s1", **sampled, "seed": 1},
        {"name": "s2", **sampled, "seed": 2},
    ]
    config = _config(tmp_path, sources)
    collect_candidates(config)
    rows = read_jsonl(config.output)
    by_source = {name: [r["responses"][i] for r in rows] for i, name in enumerate(rows[0]["sources"])}
    assert by_source["s-default"] == by_source["s0"]  # the candidates' seed is 0
    assert len({tuple(by_source[n]) for n in ("s0", "s1", "s2")}) == 3
    parts = Path(config.output + ".parts")
    settings = {n: json.loads((parts / f"{n}.source.json").read_text()) for n in ("s-default", "s0", "s1")}
    assert settings["s-default"] == settings["s0"] and settings["s0"]["seed"] == 0 and settings["s1"]["seed"] == 1
    from trice.stage2.candidates import ModelSource

    # recorded: the source's own settings plus the template, the seed in effect and the questions made for
    assert set(settings["s0"]) - set(ModelSource(name="x").settings()) == {"template", "seed", "examples"}


def test_the_teacher_source_names_its_own_model_and_ends_at_the_call(tmp_path, tiny_model_dir, serve, loads):
    """The teacher is a model other than the policy (here a second tiny model; in use
    qwen2.5-coder-1.5b-instruct) few-shot prompted to call the tool, cut after the call; a recipe's
    model does not replace the model a source names."""
    teacher_dir = build_tiny_model(tmp_path / "teacher", seed=1)
    assert teacher_source()["model"] == TEACHER_MODEL and teacher_source()["stop_after_call"] is True
    uncut = {**teacher_source(model=str(teacher_dir), name="uncut"), "stop_after_call": False}
    talkative = _endpoint(
        serve(lambda hit, path, request: openai_reply(path, request, "calculator(2+3) The answer is 5\n\nBelow is")).url, name="api-cut", stop_after_call=True
    )
    sources = [{"name": "gold", "kind": "gold"}, teacher_source(model=str(teacher_dir)), uncut, talkative]
    rows = read_jsonl(collect_candidates(_config(tmp_path, sources)))
    assert loads == [(str(teacher_dir), None)]
    for row in rows:
        teacher, full, api = row["responses"][1:]
        assert teacher == task_stop_rule("math").finish(full) and api == "calculator(2+3)"
    parts = Path(tmp_path / "candidates.jsonl.parts")
    assert json.loads((parts / "teacher.source.json").read_text())["stop_after_call"] is True
    assert "stop_after_call" not in json.loads(
        (parts / "uncut.source.json").read_text()
    )  # at its default the option stays out, so parts recorded without it stay valid
    assert "stop_after_call" not in ModelSource(name="x").settings()

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml"
    plan = plan_recipe(recipe, {"run_dir": str(tmp_path / "run"), "candidates": {"sources": [{"name": "gold", "kind": "gold"}, teacher_source()]}})
    assert plan.candidates.sources[1]["model"] == TEACHER_MODEL and plan.recipe.model != TEACHER_MODEL


def test_an_endpoint_source_offering_tools_answers_with_its_calls_as_hermes_text(tmp_path, serve):
    def calls(hit: int, path: str, request: dict) -> tuple[int, bytes, str]:
        question = request["messages"][-1]["content"].rsplit("What is ", 1)[1].split(" ")[0]
        return openai_reply(path, request, tool_calls=[tool_call("calculator", {"expression": f"{question}+3"})])

    server = serve(calls)
    rows = read_jsonl(collect_candidates(_config(tmp_path, [{"name": "gold", "kind": "gold"}, _endpoint(server.url, mode="chat", tools=True)])))
    assert all(body["tools"] == [tool_schema("calculator")] for _, _, body in server.requests) and server.hits == len(ROWS)
    for i, row in enumerate(rows):
        call = parse_native_call(row["responses"][1], ["calculator"], "hermes")
        assert isinstance(call, NativeToolCall) and call.argument == f"{i}+3"
    recorded = json.loads((tmp_path / "candidates.jsonl.parts" / "api.source.json").read_text())
    assert recorded["tools"] is True and "tools" not in EndpointSource(name="x", model="m").settings()


@pytest.mark.parametrize(
    ("source", "parser", "message"),
    [
        ({"name": "always", "kind": "model", "model": "m", "few_shot": "math"}, "hermes", "'always': few_shot 'math' has worked examples in the paper's text"),
        ({"name": "teacher", "kind": "endpoint", "base_url": "http://127.0.0.1:1/v1", "model": "m"}, "hermes", "'teacher': an endpoint source"),
        ({"name": "plain", "kind": "model", "model": "m"}, "auto", "tool_parser: name the parser"),
    ],
)
def test_a_native_run_refuses_sources_prompted_in_the_text_format(source, parser, message) -> None:
    values = {"call_format": "native", "tool_parser": parser, "template": "chat", "sources": [{"name": "gold", "kind": "gold"}, source]}
    with pytest.raises(ConfigError, match=message):
        build_config(CandidatesConfig, values, "candidates")
    build_config(CandidatesConfig, values | {"call_format": "text", "template": "alpaca"}, "candidates")  # the text format takes them
