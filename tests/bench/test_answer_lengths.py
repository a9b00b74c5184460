"""bench/answer_lengths.py: answers cut to N tokens and judged again, the lengths and the shortest
cut that loses no right answer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from trice.judge.evaluate import judge_rows

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("answer_lengths", ROOT / "bench" / "answer_lengths.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)


class WordTokenizer:
    """One token per space-separated word: lengths and cuts a test can count by eye."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self.vocab.setdefault(w, len(self.vocab)) for w in text.split(" ")]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        words = {i: w for w, i in self.vocab.items()}
        return " ".join(words[i] for i in ids)


def _row(i: str, dataset: str, response: str, answer: str) -> dict:
    return {"id": i, "dataset": dataset, "task": "math", "question": "q", "answers": [answer], "response": response}


ROWS = [
    _row("a", "asdiv", "5", "5"),  # 1 word: right at every cut
    _row("b", "asdiv", "two plus two is four so the answer is 4", "4"),  # 10 words: right only uncut
    _row("c", "svamp", "calculator( 3*3 )", "9"),  # a call: right once the call is whole
    _row("d", "svamp", "I do not know", "7"),  # never right
]


def test_a_response_is_cut_to_its_first_n_tokens() -> None:
    tok = WordTokenizer()
    assert bench.cut_response("a b c d", tok.encode("a b c d"), tok.decode, 2) == "a b"
    assert bench.cut_response("a b", tok.encode("a b"), tok.decode, 5) == "a b"


def test_length_stats_count_answers_that_reached_the_limit() -> None:
    stats = bench.length_stats([10, 20, 30, 160, 159], limit=160)
    assert stats["median"] == 30 and stats["max"] == 160
    assert stats["at_limit"] == 0.4  # 159 is within the re-encoding slack


def test_measure_judges_every_cut_and_finds_the_shortest_lossless_one() -> None:
    result = bench.measure(ROWS, [1, 4, 10], 10, WordTokenizer(), lambda rows: judge_rows(rows, "math"))
    asdiv, svamp = result["datasets"]["asdiv"], result["datasets"]["svamp"]
    assert [asdiv["accuracy"][c]["accuracy"] for c in ("1", "4", "10")] == [0.5, 0.5, 1.0]
    assert asdiv["lossless_cut"] == 10 and svamp["lossless_cut"] == 4
    assert svamp["accuracy"]["1"]["accuracy"] == 0.0 and svamp["tool_use"] == 0.5
    assert asdiv["tokens"]["at_limit"] == 0.5 and asdiv["n"] == 2
    low, high = asdiv["accuracy"]["1"]["low"], asdiv["accuracy"]["1"]["high"]
    assert 0 < low < 0.5 < high < 1  # two questions: a wide interval, never a point
    assert "lossless at 10" in bench.summary_line(result | {"recipe": "r"})


def test_the_probe_plan_changes_only_size_limit_and_directory(tmp_path: Path) -> None:
    plan = bench.probe_plan(ROOT / "trice" / "recipes" / "math_qwen.yaml", tmp_path / "run", 8, 256)
    assert plan.recipe.settings == ["zero-shot"] and plan.run_dir == tmp_path / "run"
    assert plan.data.n_train == 8 and plan.probe.max_new_tokens == 256
    assert plan.probe.model == "qwen2.5-coder-0.5b-instruct" and plan.probe.stop_after_call
    assert plan.stages[:2] == ["data", "probe"]
