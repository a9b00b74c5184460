"""An eval stage's work: generate for every example and judge the responses, or copy a current twin
eval that ran the same weights on the same test file (:func:`reuse_twin_eval`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from trice.core.schema import load_examples
from trice.generation.adapters import adapter_files
from trice.responses.generate import GenerateConfig, generate_for_examples
from trice.judge.decision import choose_tau, threshold_curve
from trice.judge.evaluate import UNREAD, judge_rows, met_outage, summarize, tool_rate_by_dataset
from trice.judge.reading import ReadingModel
from trice.core.layout import EVAL_OUTPUTS, JUDGED, READINGS, RESPONSES, REUSED, SUMMARY, THRESHOLD_CHOICE, eval_stage
from trice.pipeline.failures import FailedRows, ToolOutages, raise_failed_rows
from trice.pipeline.stage_dirs import finished_state, is_current
from trice.utils.fingerprint import fingerprint
from trice.generation.models import call_format_of
from trice.utils.io import read_jsonl, write_json, write_jsonl, write_text


def generate_and_judge(
    stage_dir: Path, examples_path: Path, config: GenerateConfig, task: str, desc: str, tools: dict | None = None, backend: Any = None
) -> None:
    """Generate (resumably) for every example, judge the responses, write judged.jsonl and summary.json.

    ``backend``: one that prompts otherwise (:class:`trice.responses.few_shot.FewShotBackend`), or None for
    ``config``'s own. Tool outputs the model reads again (qa, mlqa) are read by the same model
    (``config``), resumably (``readings.jsonl``)."""
    model = tokenizer = None  # generate_for_examples loads config.backend itself, only if work is left
    examples = load_examples(examples_path)
    rows = generate_for_examples(examples, stage_dir / RESPONSES, model, tokenizer, config, desc, backend=backend)
    reader = ReadingModel.for_config(config, cache=stage_dir / READINGS, desc=f"{desc}: read again")
    judged = judge_rows(rows, task, reader, tools, calls=call_format_of(config))
    write_jsonl(stage_dir / JUDGED, judged)
    write_json(stage_dir / SUMMARY, summarize(judged) | {"tool_rate_by_dataset": tool_rate_by_dataset(judged)})
    raise_machine_failures(rows, judged)


def tau_on_dev(stage_dir: Path, dev: Path, config: GenerateConfig, task: str, desc: str, tools: dict | None = None) -> float:
    """The threshold of the ``decision: threshold`` rule, chosen on the dev questions: each answered
    both ways (the call branch and the answer branch, resumably in ``dev-call/`` and ``dev-answer/``),
    the rule's dev accuracy at every tau, the best kept (:func:`trice.judge.decision.choose_tau`);
    the curve and the choice in ``threshold.json``."""
    branches = {}
    for branch in ("call", "answer"):
        generate_and_judge(stage_dir / f"dev-{branch}", dev, replace(config, decision=branch), task, f"{desc}: dev {branch}", tools)
        branches[branch] = {row["id"]: row for row in read_jsonl(stage_dir / f"dev-{branch}" / JUDGED)}
    ids = [i for i, row in branches["call"].items() if row.get("p_call") is not None]
    if not ids:
        raise ValueError(f"decision threshold: no dev response carries a P(call) (the {config.call_format} format's calls open with no token to read)")
    curve = threshold_curve(
        [branches["call"][i]["p_call"] for i in ids], [branches["call"][i]["correct"] for i in ids], [branches["answer"][i]["correct"] for i in ids]
    )
    choice = choose_tau(curve) | {"dev_questions": len(ids)}
    write_json(stage_dir / THRESHOLD_CHOICE, {"choice": choice, "curve": curve})
    return choice["tau"]


def raise_machine_failures(rows: list[dict], judged: list[dict]) -> None:
    """Judged rows that measure the machine rather than the model keep the stage incomplete, and a
    rerun retries just them (what succeeded is kept or cached): a generation or a reading an
    endpoint did not make (:class:`FailedRows`), then a tool call that met an outage
    (:class:`ToolOutages`, which ``trice run --accept-outages`` may accept instead)."""
    raise_failed_rows(rows)
    unread = [row for row in judged if row.get("unread")]
    if unread:
        raise FailedRows(len(unread), len(judged), f"{unread[0]['id']}: {UNREAD}")
    met = [row for row in judged if met_outage(row)]
    if met:
        raise ToolOutages(len(met), len(judged), f"{met[0]['id']}: {met[0]['tool_error']}"[:200])


def _weights_key(config: dict, test: Path, adapter: str | None) -> str:
    """An eval's fingerprint with the adapter's path left out and only its weights and config counted
    (an adapter directory may also hold tokenizer files, which evaluation loads from the model): equal
    for two settings evaluated with the same weights under different paths."""
    return fingerprint(config | {"adapter": None}, [test, *([] if adapter is None else adapter_files(Path(adapter)))])


def eval_inputs(test: Path, adapter: str | Path | None) -> list[Path]:
    """An eval stage's inputs: the test file, and the adapter directory unless it runs the base model."""
    return [test] + ([Path(adapter)] if adapter is not None else [])


def reuse_twin_eval(stage_dir: Path, config: dict, inputs: list[Path]) -> str | None:
    """Copy the outputs of a finished sibling eval stage that ran the same weights on the same test
    file with the same settings, and return its name (None when there is none).

    Greedy evaluation is a function of the weights, so when stage II's dev selection keeps its start
    (TRICE-ALL = the stage-I adapter, TRICE-II = the base model) its eval equals the start's eval, and
    redoing it would cost a full test-set pass. The sibling must still be current (its stored hash
    equals its fingerprint now), so a stale eval is never copied. ``reused.json`` says where from."""
    test = inputs[0]
    key = _weights_key(config, test, config.get("adapter"))
    for other in sorted(stage_dir.parent.glob(eval_stage("*"))):
        state = finished_state(other)
        if other == stage_dir or state is None:
            continue
        theirs = state["config"]
        adapter = theirs.get("adapter")
        if adapter and not Path(adapter).is_dir():
            continue
        if not is_current(other, state, theirs, eval_inputs(test, adapter)):
            continue
        if _weights_key(theirs, test, adapter) != key:
            continue
        for name in EVAL_OUTPUTS:
            if (other / name).is_file():
                write_text(stage_dir / name, (other / name).read_text(encoding="utf-8"))
        write_json(stage_dir / REUSED, {"from": other.name, "why": "the same weights, test file and settings"})
        return other.name
    return None
