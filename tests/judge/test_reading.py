"""Second readings (WikiSearch passages, translations read again by the model) and batched judging
of mixed-task files; fake tools and a fake generation backend where models would be slow."""

from __future__ import annotations

from dataclasses import replace

import pytest

from trice.judge.evaluate import EvaluateConfig, judge_rows, run_evaluate
from trice.utils.io import read_jsonl, write_jsonl
from trice.responses.generate import GenerateConfig
from trice.judge.reading import ReadingModel, reading_config, reading_input, reading_prompt
from trice.core.tools import ToolCall
from trice.generation.remote import EndpointError
from trice.tools.factories import TOOL_FACTORIES
from trice.core.tools import ToolError
from tests.helpers.models import converted_qwen


class FakeBackend:
    """Answers a reading prompt with the passage's last word (qa) or the translated question's (mlqa)."""

    def __init__(self, fail_on: str | None = None):
        self.generated: list[list[str]] = []
        self.fail_on = fail_on

    def instruction_prompt(self, instruction: str, input_text: str) -> str:
        return f"[{instruction}] {input_text}"

    def generate(self, prompts, desc="", on_batch=None, done=()):
        self.generated.append(list(prompts))
        results = []
        for p in prompts:
            if self.fail_on and self.fail_on in p:
                results.append(EndpointError("timeout", "slow"))
            else:
                body = p.split("] ", 1)[1]
                results.append(body.split(". ")[0].split()[-1] if "Context:" not in body else body.split("Question: ")[1])
        if on_batch is not None:
            on_batch(list(range(len(prompts))), results)
        return results


def test_reading_inputs_are_the_papers() -> None:
    assert reading_input("qa", "Who won?", "Title | Paris  won.") == "Title | Paris won.. Who won?"
    assert reading_input("mlqa", "Context: c\nQuestion: 谁赢了？", "Who won?") == "Context: c\nQuestion: Who won?"
    with pytest.raises(ValueError, match="no second reading"):
        reading_input("math", "q", "o")


def test_reader_batches_dedupes_and_resumes_from_its_cache(tmp_path) -> None:
    backend = FakeBackend()
    reader = ReadingModel(lambda: backend, cache=tmp_path / "readings.jsonl")
    items = [("qa", "Who?", "T | alpha beta"), ("qa", "Who?", "T | gamma"), ("qa", "Who?", "T | alpha beta")]
    assert reader.read_many(items) == ["beta", "gamma", "beta"]
    assert len(backend.generated) == 1 and len(backend.generated[0]) == 2  # one batch, each prompt once
    again = FakeBackend()
    assert ReadingModel(lambda: again, cache=tmp_path / "readings.jsonl").read_many(items + [("qa", "Who?", "T | delta")]) == ["beta", "gamma", "beta", "delta"]
    assert again.generated == [["[Given a question, please answer it.] T | delta. Who?"]]  # only the new one


def test_failed_readings_are_no_prediction_and_asked_again(tmp_path) -> None:
    backend = FakeBackend(fail_on="gamma")
    reader = ReadingModel(lambda: backend, cache=tmp_path / "r.jsonl")
    assert reader.read_many([("qa", "Who?", "T | gamma"), ("qa", "Who?", "T | beta")]) == [None, "beta"]
    assert [r["reading"] for r in read_jsonl(tmp_path / "r.jsonl")] == ["beta"]


class NativeBackend(FakeBackend):
    """A native run's backend: it renders conversations, here as ``role: content`` lines."""

    config = GenerateConfig(model="m", template="chat", call_format="native", tool_parser="hermes")

    def conversation_prompt(self, messages) -> str:
        return " | ".join(f"{m['role']}: {m.get('content') or m.get('tool_calls')}" for m in messages)


def test_a_native_run_reads_the_output_back_as_a_tool_turn_after_its_call() -> None:
    call = ToolCall("WikiSearch", "capital")
    prompt = reading_prompt(NativeBackend(), ("qa", "Which capital?", "T | Paris", call))
    entry = {"type": "function", "function": {"name": "WikiSearch", "arguments": {"query": "capital"}}}
    assert prompt == f"user: Given a question, please answer it.\n\nWhich capital? | assistant: {[entry]} | tool: T | Paris"
    assert reading_prompt(NativeBackend(), ("qa", "Which capital?", "T | Paris")) == "[Given a question, please answer it.] T | Paris. Which capital?"
    assert reading_prompt(FakeBackend(), ("qa", "Which capital?", "T | Paris", call)) == "[Given a question, please answer it.] T | Paris. Which capital?"


def test_the_chat_template_renders_the_tool_turn_for_the_models_answer(tiny_model_dir, tmp_path) -> None:
    from tests.helpers.chat_template import with_chat_template
    from trice.responses.backends import TransformersBackend
    from trice.generation.models import load_tokenizer

    chat = str(with_chat_template(tiny_model_dir, tmp_path / "chat"))
    backend = TransformersBackend(replace(NativeBackend.config, model=chat), model=object(), tokenizer=load_tokenizer(chat))
    prompt = reading_prompt(backend, ("mlqa", "Context: c\nQuestion: 在哪里？", "Where is it?", ToolCall("translator", "在哪里？")))
    assert prompt.startswith("<|im_start|>user\nGiven a context, please answer the question.\n\nContext: c\nQuestion: 在哪里？<|im_end|>")
    assert '<tool_call>\n{"name": "translator", "arguments": {"text": "在哪里？"}}\n</tool_call>' in prompt
    assert prompt.endswith("<|im_start|>tool\nWhere is it?<|im_end|>\n<|im_start|>assistant\n")
    assert "<tools>" not in prompt  # no tool offered: the model answers
    alpaca = TransformersBackend(replace(NativeBackend.config, template="alpaca"), model=object(), tokenizer=load_tokenizer(chat))
    with pytest.raises(ValueError, match="needs template 'chat'"):
        alpaca.conversation_prompt([])


def test_reading_config_is_greedy_and_short() -> None:
    config = reading_config(GenerateConfig(model="m", adapter="a", do_sample=True, max_new_tokens=96, read_max_new_tokens=20))
    assert (config.model, config.adapter, config.do_sample, config.max_new_tokens) == ("m", "a", False, 20)


class Wiki:
    name = "WikiSearch"

    def run(self, argument: str) -> str:
        return self.passages(argument)[0]

    def passages(self, argument: str, k: int | None = None) -> list[str]:
        if argument == "nothing":
            raise ToolError("bad_argument", "no passage")
        return ["T | wrong Lyon", "T | right Paris"]


class Translator:
    name = "translator"

    def run(self, argument: str) -> str:
        return "Where is it?"


@pytest.fixture
def fake_tools(monkeypatch):
    monkeypatch.setitem(TOOL_FACTORIES, "WikiSearch", lambda **_: Wiki())
    monkeypatch.setitem(TOOL_FACTORIES, "translator", lambda **_: Translator())


def _row(i, task, response, answers, question="Q?") -> dict:
    return {"id": f"r{i}", "dataset": task, "task": task, "question": question, "answers": answers, "response": response}


def test_judge_rows_mixed_tasks_read_every_passage_in_one_batch(fake_tools) -> None:
    rows = [
        _row(0, "math", "calculator(2+3)", ["5"]),
        _row(1, "qa", "WikiSearch(capital)", ["Paris"]),  # right through the second passage's reading
        _row(2, "qa", "WikiSearch(capital)", ["Rome"]),  # neither reading is right
        _row(3, "qa", "It is Paris.", ["Paris"]),  # a direct answer needs no reading
        _row(4, "qa", "WikiSearch(nothing)", ["Paris"]),  # a failed search is a failed call
        _row(5, "mlqa", "translator(在哪里？)", ["it?"], question="Context: c\nQuestion: 在哪里？"),
    ]
    backend = FakeBackend()
    judged = judge_rows(rows, reader=ReadingModel(lambda: backend))
    assert [(j["prediction"], j["correct"], j["used_tool"]) for j in judged] == [
        ("5", True, True),
        ("Paris", True, True),
        ("Lyon", False, True),
        ("It is Paris.", True, False),
        (None, False, True),
        ("Where is it?", True, True),
    ]
    assert judged[4]["tool_error"].startswith("bad_argument")
    assert len(backend.generated) == 1 and len(backend.generated[0]) == 3  # 2 passages (shared) + 1 translation
    with pytest.raises(ValueError, match="qa: the output of WikiSearch"):
        judge_rows(rows[1:2])
    with pytest.raises(ValueError, match="no task field"):
        judge_rows([{k: v for k, v in rows[0].items() if k != "task"}])


def test_evaluate_cli_reads_with_the_named_model(tmp_path, tiny_model_dir, fake_tools, one_thread) -> None:
    path = tmp_path / "responses.jsonl"
    write_jsonl(path, [_row(0, "qa", "WikiSearch(capital)", ["Paris"]), _row(1, "math", "7", ["7"])])
    config = EvaluateConfig(task="per-row", input=str(path), output=str(tmp_path / "judged.jsonl"), model=str(tiny_model_dir))
    summary = run_evaluate(config)
    assert summary["n"] == 2 and summary["accuracy"]["math"] == 1.0 and summary["tool_rate"] == 0.5
    assert read_jsonl(tmp_path / "judged.jsonl")[0]["used_tool"] is True
    with pytest.raises(ValueError, match="unknown tool 'Wiki'"):
        EvaluateConfig(tools={"Wiki": {}}).validate()


def test_qwens_template_gives_the_output_back_as_a_tool_response() -> None:
    from trice.responses.backends import TransformersBackend
    from trice.generation.models import load_tokenizer

    qwen = str(converted_qwen())
    backend = TransformersBackend(replace(NativeBackend.config, model=qwen), model=object(), tokenizer=load_tokenizer(qwen))
    prompt = reading_prompt(backend, ("qa", "Which capital?", "T | Paris", ToolCall("WikiSearch", "capital")))
    assert '<tool_call>\n{"name": "WikiSearch", "arguments": {"query": "capital"}}\n</tool_call>' in prompt
    assert prompt.endswith("<tool_response>\nT | Paris\n</tool_response><|im_end|>\n<|im_start|>assistant\n")
