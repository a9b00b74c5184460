"""The README's and docs' commands run as shown: the step-by-step block of docs/commands.md (with its
candidates.yaml), the Quick start, Bring your own and the demo recipe, with the tiny model in place of
the embedded one so the suite stays fast; the result tables of docs/benchmarks.md say what the
committed results say."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from trice.cli import main
from trice.utils.io import read_json, read_jsonl
from trice.pipeline.intervals import difference_text, interval_text

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
COMMANDS = (REPO / "docs" / "commands.md").read_text()
BENCHMARKS = (REPO / "docs" / "benchmarks.md").read_text()
TAKES_MODEL = {"generate", "train-sft", "train-rlef", "train-dpo"}


def _block(language: str, after: str) -> str:
    """The first fenced ``language`` block of docs/commands.md after the heading or text ``after``."""
    start = COMMANDS.index(after)
    match = re.search(rf"```{language}\n(.*?)```", COMMANDS[start:], re.S)
    assert match, f"no {language} block after {after!r} in docs/commands.md"
    return match.group(1)


def _commands() -> list[list[str]]:
    lines = [line.split("#")[0].strip() for line in _block("bash", "## Stage by stage").splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("trice ")]


def test_readme_step_by_step_commands_run(tmp_path, tiny_model_dir, data_dir, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    candidates = yaml.safe_load(_block("yaml", "with `candidates.yaml`"))
    for source in candidates["sources"]:
        if source["kind"] == "model":
            source["model"] = str(tiny_model_dir)
    Path("candidates.yaml").write_text(yaml.safe_dump(candidates))
    commands = _commands()
    assert [c[0] for c in commands] == [
        "data",
        "generate",
        "evaluate",
        "label",
        "train-sft",
        "candidates",
        "score",
        "train-rlef",
        "train-dpo",
        "generate",
        "evaluate",
    ]
    summaries = {}
    for argv in commands:
        extra = ["--model", str(tiny_model_dir)] if argv[0] in TAKES_MODEL else []
        extra += ["--max_new_tokens", "8"] if argv[0] == "generate" else []
        extra += ["--data_dir", str(data_dir)] if argv[0] == "data" else []
        assert main(argv + extra) == 0, f"trice {shlex.join(argv)}: {capsys.readouterr().err[-2000:]}"
        lines = capsys.readouterr().out.strip().splitlines()
        summaries[argv[0]] = json.loads(lines[-1]) if lines else None  # every command's last stdout line: a JSON summary
    assert all(isinstance(summary, dict) for summary in summaries.values()), summaries
    assert summaries["train-sft"]["adapter"] == "runs/x/stage1/adapter" and summaries["train-sft"]["step"] == 20
    assert summaries["train-rlef"]["step"] == 10 and summaries["train-dpo"]["output_dir"] == "runs/x/dpo"
    assert summaries["candidates"]["sources"].keys() == {"gold", "base", "tool-always", "stage1"}
    scored = read_jsonl(tmp_path / "runs/x/scored.jsonl")
    assert scored and all(r["sources"] == ["gold", "base", "tool-always", "stage1"] for r in scored)
    assert (tmp_path / "runs/x/stage2/adapter").is_dir() and (tmp_path / "runs/x/dpo/adapter").is_dir()
    assert len(read_jsonl(tmp_path / "runs/x/test.judged.jsonl")) == 15


@pytest.mark.slow
def test_demo_recipe_runs_end_to_end(tmp_path, tiny_model_dir, data_dir) -> None:
    """`make demo`'s recipe, every stage as configured, on the tiny model (the real run takes minutes)."""
    from trice.pipeline.plan import plan_recipe
    from trice.pipeline.runner import run_plan

    assert "make demo" in README and "recipes/demo.yaml" in (REPO / "Makefile").read_text()
    plan = plan_recipe(REPO / "recipes" / "demo.yaml", {"model": str(tiny_model_dir), "run_dir": str(tmp_path / "demo")})
    plan.data.data_dir = str(data_dir)
    run_plan(plan)
    results = read_json(tmp_path / "demo" / "report" / "results.json")
    assert list(results["rows"]) == plan.recipe.settings and "trice-all" in results["rows"]
    assert (tmp_path / "demo" / "report" / "report.md").read_text().count("| ") > 10


# The benchmark tables of docs/benchmarks.md are typed by hand from the committed results: they must say what the files say,
# intervals and comparisons included (tests/bench/test_eight_sets.py and test_math_benchmark.py check the files against
# what the benchmark scripts compute from the committed runs).
README_SETTINGS = {
    "zero-shot": "zero-shot",
    "SFT 0% tool": "sft-0",
    "SFT 100% tool": "sft-100",
    "TRICE-I": "trice-i",
    "TRICE-II (stage II alone)": "trice-ii",
    "TRICE-ALL (rank loss)": "trice-all",
    "TRICE-ALL": "trice-all",
    "TRICE-ALL (DPO)": "trice-all-dpo",
}


def _tables(first_column: str) -> list[list[list[str]]]:
    """Every Markdown table of docs/benchmarks.md whose header's second cell is ``first_column``, as rows of cells."""
    tables, current = [], None
    for line in BENCHMARKS.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells and current is None and len(cells) > 1 and cells[1] == first_column:
            current = []
        elif cells and current is not None and not set(line) <= set("|-"):
            current.append(cells)
        elif not cells and current is not None:
            tables.append(current)
            current = None
    return tables


def _expected(rows: dict, intervals: dict, datasets: list[str]) -> dict[str, list[str]]:
    """Each row's cells as docs/benchmarks.md writes them: accuracy and its 95% interval, the average and its
    interval, the tool-use rate."""
    acc = lambda s, k: f"{100 * rows[s][k]:.1f} {interval_text(*intervals[s][k])}"  # noqa: E731
    return {s: [acc(s, ds) for ds in datasets] + [acc(s, "avg"), f"{100 * r['tool_rate']:.0f}%"] for s, r in rows.items()}


def _pairs(table: list[list[str]]) -> dict[str, list[str]]:
    """A comparison table's rows keyed as the results key them: "TRICE-I vs SFT 100% tool" -> "trice-i vs sft-100"."""
    return {" vs ".join(README_SETTINGS[name] for name in r[0].split(" vs ")): r[1:] for r in table}


def test_benchmark_tables_match_the_committed_results() -> None:
    math = read_json(REPO / "bench" / "results" / "math_benchmark" / "results.json")
    (math_table,) = _tables("ASDiv")
    assert {README_SETTINGS[r[0]]: r[1:] for r in math_table} == _expected(math["rows"], math["intervals"], ["asdiv", "svamp", "gsm8k"])
    (math_pairs,) = _tables("avg difference")
    assert _pairs(math_pairs) == {k: [difference_text(d["avg"])] for k, d in math["unpaired"].items()}
    eight = read_json(REPO / "bench" / "results" / "eight_sets" / "results.json")
    sets = ["webq", "nq", "triviaqa", "trex", "xquad-zh", "asdiv", "svamp", "gsm8k"]
    mix_table, split_table = _tables("WebQ")
    for table, half in ((mix_table, "mix"), (split_table, "split")):
        assert {README_SETTINGS[r[0]]: r[1:] for r in table} == _expected(eight[half]["rows"], eight[half]["intervals"], sets), half
    (eight_pairs,) = _tables("MIX")
    assert _pairs(eight_pairs) == {k: [difference_text(eight[h]["differences"][k]["avg"]) for h in ("mix", "split")] for k in eight["mix"]["differences"]}


def _blocks(language: str, section: str) -> list[str]:
    """Every fenced ``language`` block of the README section headed ``section`` (up to the next ``## ``)."""
    start = README.index(f"\n{section}\n")
    end = README.find("\n## ", start + 1)
    return re.findall(rf"```{language}\n(.*?)```", README[start : end if end > 0 else None], re.S)


def test_quick_start_python_runs(tmp_path, tiny_model_dir, data_dir, monkeypatch, capsys) -> None:
    """The Quick start's Python block, the embedded model's name swapped for the tiny model's."""
    (code,) = _blocks("python", "## Quick start")
    assert code.count("\n") <= 12 and "smollm2-135m-instruct" in code
    monkeypatch.setenv("TRICE_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("smollm2-135m-instruct", str(tiny_model_dir)), "README.md (Quick start)", "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0] == "72"
    rows = read_json(tmp_path / "runs" / "demo" / "report" / "results.json")["rows"]
    assert list(rows) == ["zero-shot", "trice-i"] and set(rows["trice-i"]) == {"asdiv", "svamp", "gsm8k", "avg", "tool_rate"}
    bash = _blocks("bash", "## Quick start")[0]
    assert "pip install trice-tools" in bash and "download.pytorch.org/whl/cpu" in bash and "trice run demo" in bash


def test_bring_your_own_example_runs_as_pasted(tmp_path, tiny_model_dir, monkeypatch) -> None:
    """Its three files written as the README shows them, beside each other; `trice run shop.yaml`
    from another directory, only the model and the sizes set on the command line."""
    from trice.data.loaders import LOADERS
    from trice.tasks import TASKS
    from trice.core.prompts import INSTRUCTIONS
    from trice.tools.factories import TOOL_FACTORIES

    saved = [(table, dict(table)) for table in (TASKS, INSTRUCTIONS, LOADERS, TOOL_FACTORIES)]
    (python,), (jsonl,), (recipe,) = _blocks("python", "## Bring your own"), _blocks("json", "## Bring your own"), _blocks("yaml", "## Bring your own")
    home = tmp_path / "shop"
    home.mkdir()
    (home / "shop_tools.py").write_text(python)
    (home / "shop.jsonl").write_text(jsonl)
    (home / "shop.yaml").write_text(recipe)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    small = ["probe.max_new_tokens=6", "eval.max_new_tokens=6", "train.max_steps=2", "train.per_device_train_batch_size=2"]
    try:
        assert main(["run", str(home / "shop.yaml"), f"model={tiny_model_dir}", *small]) == 0
    finally:
        for table, before in saved:
            table.clear()
            table.update(before)
        sys.modules.pop("shop_tools", None)
    run = work / "runs" / "shop"
    rows = read_json(run / "report" / "results.json")["rows"]
    assert list(rows) == ["zero-shot", "trice-i"] and "shop" in rows["trice-i"]
    labelled = read_jsonl(run / "label" / "trice.jsonl")
    assert {r["task"] for r in labelled} == {"shop"} and any(r["output"].startswith("price(") for r in labelled)


def test_the_readme_citation_is_the_cards() -> None:
    from trice.export.card import CITATION

    (bibtex,) = _blocks("bibtex", "## Citation")
    assert bibtex.strip() == CITATION and "https://aclanthology.org/2024.naacl-long.195" in README[:1500]
    assert (REPO / "LICENSE").is_file() and "[LICENSE](LICENSE)" in README
