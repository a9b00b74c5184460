"""Stopping a response at the end of its tool call: the cut changes no judgement, and generation that
stops early makes exactly the uncut response up to the cut."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from tests.helpers.fake_servers import openai_reply, serve  # noqa: F401 (serve: fixture)
from trice.core.schema import Example
from trice.generation.decode import generate_responses
from trice.responses.generate import GenerateConfig, generate_for_examples, task_stop_rule
from trice.generation.models import load_model
from trice.generation.stopping import STOP_MARKERS, StopRule, clean_response
from trice.tasks import TASKS
from trice.core.tools import ToolRegistry, call_end, parse_call
from trice.core.call_format import TEXT, CallFormat


class EchoTool:
    """Answers every call with its argument (stands in for QA, WikiSearch and the translator)."""

    def __init__(self, name: str):
        self.name = name

    def run(self, argument: str) -> str:
        return argument


RESPONSES = [
    "calculator(2+3) The answer is 5",
    "calculator(2+3) The answer is 7",
    "The answer is 5. calculator(2+4) so 6",
    "calculator(2+(3*4)) = 14, the answer is 15",
    "calculator(2+(3",
    "calculator (4*5)\n### Instruction: more calculator(1)",
    "15\n\n\ncalculator(15)",
    "QA(Who is he?) calculator(5) Paris",
    "WikiSearch(Paris) Paris is the answer",
    "translator(Wie viele?) 5 points",
    "Paris",
    "xcalculator(5) 5",
]


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("response", RESPONSES)
def test_the_cut_never_changes_a_judgement(task: str, response: str) -> None:
    """The judge executes the first call of the task's tool and reads nothing after it, so cutting
    there (what stop_after_call keeps) gives the same prediction, correctness and tool use."""
    judge = TASKS[task]
    registry = ToolRegistry([EchoTool(judge.tool)]) if task != "math" else judge.registry()
    answers = ["5", "Paris", "15", "Who is he?"]

    def verdict(text: str):
        return judge.judge(clean_response(text), answers, registry, reader=lambda output: [output])

    assert verdict(task_stop_rule(task).finish(response)) == verdict(response)


def test_a_response_is_cut_just_after_its_first_call_of_the_task_tool() -> None:
    rule = task_stop_rule("math")
    assert rule.finish("calculator(3*3*7-12-5) Below is an instruction that describes") == "calculator(3*3*7-12-5)"
    assert rule.finish("  calculator(2+(3*4)) = 14") == "calculator(2+(3*4))"
    unclosed = "calculator(2+(3"
    assert rule.finish(unclosed) == unclosed  # never closed: left whole, as the judge reads it
    assert rule.finish("QA(x) then calculator(1) done") == "QA(x) then calculator(1)"  # QA is no math call
    assert rule.finish("72\n### Instruction:\ncalculator(1)") == "72"  # the marker cuts first: the rest is no response
    assert StopRule().finish(" calculator(1) more\n\n\nx") == "calculator(1) more"  # no tools: markers only
    assert call_end("a calculator(1) b", ["calculator"]) == len("a calculator(1)")
    assert call_end("a calculator(1", ["calculator"]) is None and call_end("no call", ["calculator"]) is None
    assert parse_call("calculator(2+(3*4)) x", ["calculator"]).argument == "2+(3*4)"


def test_once_over_the_response_is_fixed_however_the_text_goes_on() -> None:
    """What generation stopped early at (any point at or after the first where the rule says
    "over") finishes to what the whole generation finishes to: the stopped run and the uncut run
    give the same response."""
    pieces = ["calculator", "QA", "(", ")", "2+3", " ", "x", "\n", "\n\n", "\n\n\n", "\n### Instruction", "#", "The answer is 5"]
    rules = [task_stop_rule("math"), task_stop_rule("lama"), StopRule(), StopRule(markers=(*STOP_MARKERS, "\n\n"))]
    rng = random.Random(0)
    checked = 0
    for _ in range(400):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        for rule in rules:
            first = next((k for k in range(len(text) + 1) if rule.over(text[:k])), None)
            if first is None:
                continue
            for k in range(first, len(text) + 1):
                assert rule.over(text[:k]), (rule, text, k)
                assert rule.finish(text[:k]) == rule.finish(text), (rule, text, k)
            checked += 1
    assert checked > 200


class Scripted(LogitsProcessor):
    """Makes each prompt's row write a given token sequence (then end of text), whatever the model
    says; rows are recognised by their prompt tokens, pads removed, so any batching works."""

    def __init__(self, scripts: dict[tuple[int, ...], list[int]], pad: int, eos: int):
        self.scripts, self.pad, self.eos = scripts, pad, eos
        self.steps = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.steps += 1
        forced = torch.full_like(scores, float("-inf"))
        for row, ids in enumerate(input_ids.tolist()):
            ids = [t for t in ids if t != self.pad]
            prompt = next(p for p in self.scripts if tuple(ids[: len(p)]) == p)
            made = len(ids) - len(prompt)
            script = self.scripts[prompt]
            forced[row, script[made] if made < len(script) else self.eos] = 0.0
        return forced


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir))


def test_rows_stop_at_their_own_call_and_equal_the_uncut_run_up_to_the_cut(tiny, one_thread) -> None:
    model, tokenizer = tiny
    prompts = ["Natalia sold clips?", "How many clips?", "48 + 2?"]
    texts = ["calculator(48+48/2) The answer is 72. The answer is 72.", "The answer is 72.", "calculator(4*5)\n### Instruction: x"]
    scripts = {tuple(tokenizer(p, add_special_tokens=False)["input_ids"]): tokenizer(t, add_special_tokens=False)["input_ids"] for p, t in zip(prompts, texts)}

    def run(stops):
        scripted = Scripted(scripts, tokenizer.pad_token_id, tokenizer.eos_token_id)
        out = generate_responses(
            model, tokenizer, prompts, batch_size=3, stops=stops, max_new_tokens=40,
            logits_processor=LogitsProcessorList([scripted]), share_prefix=False,
        )  # fmt: skip
        return out, scripted.steps

    uncut, uncut_steps = run(None)
    rules = [task_stop_rule("math")] * 3
    stopped, stopped_steps = run(rules)
    assert uncut == ["calculator(48+48/2) The answer is 72. The answer is 72.", "The answer is 72.", "calculator(4*5)"]
    assert stopped == [rule.finish(text) for rule, text in zip(rules, uncut)]
    assert stopped == ["calculator(48+48/2)", "The answer is 72.", "calculator(4*5)"]
    assert stopped_steps < uncut_steps  # the batch ended when its last row was over, not at the longest script


def test_stop_after_call_is_a_generate_option_kept_out_of_old_fingerprints(tiny, tmp_path, one_thread) -> None:
    from trice.utils.config import fingerprint_fields

    assert "stop_after_call" not in fingerprint_fields(GenerateConfig())
    assert fingerprint_fields(GenerateConfig(stop_after_call=True))["stop_after_call"] is True
    model, tokenizer = tiny
    examples = [Example(f"e{i}", "svamp", "math", q, ("1",)) for i, q in enumerate(["48 + 2?", "How many clips?"])]
    off = generate_for_examples(examples, tmp_path / "off.jsonl", model, tokenizer, GenerateConfig(max_new_tokens=12))
    on = generate_for_examples(examples, tmp_path / "on.jsonl", model, tokenizer, GenerateConfig(max_new_tokens=12, stop_after_call=True))
    assert [r["response"] for r in on] == [task_stop_rule("math").finish(r["response"]) for r in off]


def test_a_server_answer_is_cut_after_its_call_too(serve, tmp_path) -> None:
    """The OpenAI-compatible backend cannot stop the server mid-answer, but cuts what it returns by the same rule."""
    server = serve(lambda hit, path, request: openai_reply(path, request, "calculator(3*3*7-12-5) Below is an instruction"))
    examples = [Example(f"e{i}", "svamp", "math", f"What is {i}?", ("1",)) for i in range(2)]
    config = GenerateConfig(backend="openai", endpoint_url=server.url, model="fake", endpoint_max_retries=0, max_new_tokens=12)
    uncut = generate_for_examples(examples, tmp_path / "uncut.jsonl", None, None, config)
    config.stop_after_call = True
    cut = generate_for_examples(examples, tmp_path / "cut.jsonl", None, None, config)
    assert [r["response"] for r in uncut] == ["calculator(3*3*7-12-5) Below is an instruction"] * 2
    assert [r["response"] for r in cut] == ["calculator(3*3*7-12-5)"] * 2


def test_a_native_rule_ends_after_the_first_complete_native_call() -> None:
    call = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "(1+2)*3"}}\n</tool_call>'
    rule = task_stop_rule("math", CallFormat("hermes"))
    assert rule.calls == CallFormat("hermes") and task_stop_rule("math").calls == TEXT
    assert not rule.over(call[:-3]) and not rule.over("calculator(1+2) and on")  # a text call ends no native response
    assert rule.over(call) and rule.finish("I will compute.\n" + call + "\nThe answer is 9.") == "I will compute.\n" + call
    judge = TASKS["math"]
    uncut = call + '\n<tool_call>{"name": "calculator", "arguments": {"expression": "1"}}</tool_call>'
    assert judge.judge(rule.finish(uncut), ["9"], ToolRegistry([]), calls=rule.calls) == judge.judge(uncut, ["9"], ToolRegistry([]), calls=rule.calls)
