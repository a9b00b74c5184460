"""What each pipeline stage reads, which config fingerprints it, and the function that runs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from trice.generation.adapters import adapter_files
from trice.stage2.candidates import parts_dir
from trice.training.checkpoints import checkpoints, is_complete
from trice.utils.config import fingerprint_fields
from trice.data.schema import load_examples
from trice.judge.evaluate import judge_rows, summarize, tool_rate_by_dataset
from trice.generation.few_shot import FewShotBackend, few_shot_fingerprint
from trice.generation.generate import GenerateConfig, generate_for_examples
from trice.utils.io import read_json, read_jsonl, write_json, write_jsonl, write_text
from trice.stage1.label import label_modes
from trice.data.prepare import run_data
from trice.pipeline.shared_training import share_training, trained_dir
from trice.pipeline.stages import fingerprint, matches, raise_failed_rows, stage_state
from trice.tasks import PER_ROW

StageSpec = tuple[Any, list[Path], Callable[[Path], Any]]


def _generate_and_judge(
    stage_dir: Path, examples_path: Path, config: GenerateConfig, task: str, desc: str, tools: dict | None = None, backend: Any = None,
) -> None:
    """Generate (resumably) for every example, judge the responses, write judged.jsonl and summary.json.

    ``backend``: one that prompts otherwise (:class:`trice.generation.few_shot.FewShotBackend`), or None for
    ``config``'s own. Tool outputs the model reads again (qa, mlqa) are read by the same model
    (``config``), resumably (``readings.jsonl``)."""
    from trice.judge.reading import ReadingModel

    model = tokenizer = None  # generate_for_examples loads config.backend itself, only if work is left
    examples = load_examples(examples_path)
    rows = generate_for_examples(examples, stage_dir / "responses.jsonl", model, tokenizer, config, desc, backend=backend)
    reader = ReadingModel.for_config(config, cache=stage_dir / "readings.jsonl", desc=f"{desc}: read again")
    judged = judge_rows(rows, task, reader, tools)
    write_jsonl(stage_dir / "judged.jsonl", judged)
    write_json(stage_dir / "summary.json", summarize(judged) | {"tool_rate_by_dataset": tool_rate_by_dataset(judged)})
    raise_failed_rows(rows)  # an endpoint's failed requests: the stage stays incomplete, a rerun retries them


EVAL_OUTPUTS = ("responses.jsonl", "readings.jsonl", "judged.jsonl", "summary.json")
CANDIDATES_FILE = "candidates.jsonl"
# What a stage keeps when it starts over (trice.pipeline.stages.run_stage): the candidates' per-source parts
# record what made them and are reused only where that is unchanged, so adding a source or
# changing one redoes that source alone.
KEEP_ON_RESTART = {"candidates": (parts_dir(CANDIDATES_FILE).name,)}


def _weights_key(config: dict, test: Path, adapter: str | None) -> str:
    """An eval's fingerprint with the adapter's path left out and only its weights and config counted
    (an adapter directory may also hold tokenizer files, which evaluation loads from the model): equal
    for two settings evaluated with the same weights under different paths."""
    return fingerprint(config | {"adapter": None}, [test, *([] if adapter is None else adapter_files(Path(adapter)))])


def _eval_inputs(test: Path, adapter: str | Path | None) -> list[Path]:
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
    for other in sorted(stage_dir.parent.glob("eval-*")):
        state = stage_state(other)
        if other == stage_dir or not (state and state.get("complete")):
            continue
        theirs = state["config"]
        adapter = theirs.get("adapter")
        if adapter and not Path(adapter).is_dir():
            continue
        if matches(other, state, theirs, _eval_inputs(test, adapter)) is None:
            continue
        if _weights_key(theirs, test, adapter) != key:
            continue
        for name in EVAL_OUTPUTS:
            if (other / name).is_file():
                write_text(stage_dir / name, (other / name).read_text(encoding="utf-8"))
        write_json(stage_dir / "reused.json", {"from": other.name, "why": "the same weights, test file and settings"})
        return other.name
    return None


def _with_tools(config: dict, plan: Any) -> dict:
    """A judging stage's fingerprint: its config, plus the tool options when the recipe sets any."""
    return config | ({"tools": plan.tools} if plan.tools else {})


def stage_one_adapter(run: Path, which: str) -> Path:
    """The stage-I adapter a candidate source names: ``stage-i`` (the final one) or ``stage-i-early``
    (the first complete checkpoint, or the final adapter when none was saved). Where stage I shares
    a twin's training (:mod:`trice.pipeline.shared_training`), the twin's."""
    from trice.pipeline.plan import STAGE_ONE

    out = trained_dir(run, STAGE_ONE)
    if which == "stage-i-early":
        saved = [path for _, path in checkpoints(out / "checkpoints") if is_complete(path)]
        if saved:
            return saved[-1]  # checkpoints() lists the highest step first
    return out / "adapter"


def resolve_sources(run: Path, sources: list[dict]) -> tuple[list[dict], list[Path]]:
    """The candidate sources with the pipeline's placeholders made paths (a stage-I ``adapter``; the
    ``probe`` as a responses ``path``), and the files they read (inputs of the stage's hash)."""
    from trice.pipeline.plan import PROBE_RESPONSES, STAGE_ONE_ADAPTERS

    resolved, reads = [], []
    for source in sources:
        if source.get("adapter") in STAGE_ONE_ADAPTERS:
            source = source | {"adapter": str(stage_one_adapter(run, source["adapter"]))}
        if source.get("kind") == "responses" and source.get("path") == PROBE_RESPONSES:
            source = source | {"path": str(run / "probe" / "responses.jsonl")}
        reads += [Path(p) for p in (source.get("adapter"), source.get("path")) if p]
        resolved.append(source)
    return resolved, reads


def final_adapter(run: Path, setting: str) -> Path | None:
    """The adapter a trained setting is evaluated with: stage II's dev-chosen one where it exists, or
    None (the base model) where the dev set chose TRICE-II's start, the base model, over every
    checkpoint (``best_adapter`` null in ``selection.json``, see :mod:`trice.stage2.select_checkpoint`);
    for a setting sharing a twin's training, the twin's adapter."""
    out = trained_dir(run, setting)
    selection = out / "selection.json"
    if selection.is_file() and read_json(selection)["best_adapter"] is None:
        return None
    best = out / "adapter_best"
    return best if best.is_dir() else out / "adapter"


def _label_stage(plan: Any) -> StageSpec:
    from trice.pipeline.plan import SETTINGS

    run = plan.run_dir
    judged = run / "probe" / "judged.jsonl"
    modes = sorted({m for s in plan.recipe.settings if (m := SETTINGS[s].label) is not None} | ({"trice"} if plan.recipe.stage_two else set()))
    options = fingerprint_fields(plan.label)
    reads = "mlqa" in plan.data.task_names  # a translator call is kept when the probed model reads it right
    reading = replace(plan.probe, read_max_new_tokens=plan.label.read_max_new_tokens)
    fingerprinted = {"modes": modes} | ({"label": options} if options else {}) | ({"reader": fingerprint_fields(reading)} if reads else {})

    def label(d: Path) -> None:
        from trice.utils.io import read_jsonl
        from trice.judge.reading import ReadingModel

        rows = read_jsonl(judged)
        reader = ReadingModel.for_config(reading, cache=d / "readings.jsonl", desc="label: read again")
        for mode, (out, stats) in label_modes(rows, modes, reader, **plan.label.tool_call_options()).items():
            write_jsonl(d / f"{mode}.jsonl", out)
            write_json(d / f"{mode}.stats.json", stats)

    return fingerprinted, [judged], label


def _stage_two_train(plan: Any, setting: str) -> StageSpec:
    """RLEF or DPO on the scored candidates, from the stage-I adapter (TRICE-ALL) or a fresh LoRA."""
    from trice.pipeline.plan import SETTINGS, STAGE_ONE

    run, name = plan.run_dir, f"train-{setting}"
    scored, dev = run / "score" / "scored.jsonl", run / "dev" / "dev.jsonl"
    start = trained_dir(run, STAGE_ONE) / "adapter" if SETTINGS[setting].from_stage_one else None
    config = replace(
        plan.stage_two_config(setting), data=str(scored), output_dir=str(run / name), dev_data=str(dev),
        init_adapter=None if start is None else str(start),
    )

    def train_stage_two(d: Path) -> None:
        from trice.stage2.train_dpo import train_dpo
        from trice.stage2.train_rlef import train_rlef

        (train_rlef if SETTINGS[setting].trainer == "rlef" else train_dpo)(config)

    return fingerprint_fields(config), [scored, dev] + ([start] if start is not None else []), train_stage_two


def _stage_one_train(plan: Any, setting: str) -> StageSpec:
    """LoRA SFT on the setting's labelled set, or, where a finished sibling trained on the same rows
    with the same config, a pointer to its training (:mod:`trice.pipeline.shared_training`)."""
    from trice.pipeline.plan import SETTINGS

    run, name = plan.run_dir, f"train-{setting}"
    data = run / "label" / f"{SETTINGS[setting].label}.jsonl"
    config = replace(plan.train, data=str(data), output_dir=str(run / name))
    fingerprinted = fingerprint_fields(config)

    def train(d: Path) -> None:
        from trice.stage1.train_sft import train_sft

        if share_training(d, fingerprinted) is None:
            train_sft(config)

    return fingerprinted, [data], train


def _eval_stage(plan: Any, setting: str, test: Path, tasks: list[str] | tuple[str, ...], task: str, desc: str) -> StageSpec:
    """Generate on ``test`` with the setting's model (and, for few-shot, its prompts) and judge by
    ``task``; copies a current twin eval with the same weights instead where there is one."""
    from trice.pipeline.plan import SETTINGS

    run, kind = plan.run_dir, SETTINGS[setting]
    adapter = final_adapter(run, setting) if kind.trainer is not None else None  # None: the base model
    config = replace(plan.eval, adapter=None if adapter is None else str(adapter))
    inputs = _eval_inputs(test, adapter)
    prompts = {"few_shot": few_shot_fingerprint(kind.few_shot, tasks)} if kind.few_shot else {}
    fingerprinted = _with_tools(fingerprint_fields(config), plan) | prompts

    def evaluate(d: Path) -> None:
        if reuse_twin_eval(d, fingerprinted, inputs) is None:
            backend = FewShotBackend(config, kind.few_shot) if kind.few_shot else None
            _generate_and_judge(d, test, config, task, desc, plan.tools, backend)

    return fingerprinted, inputs, evaluate


def _report_stage(plan: Any) -> StageSpec:
    from trice.pipeline.report import write_report

    run = plan.run_dir
    inputs = [run / f"eval-{s}" / "summary.json" for s in plan.recipe.settings]
    inputs += [run / name / "summary.json" for name in plan.unseen_stages]
    unseen = {"unseen": [u.name for u in plan.unseen]} if plan.unseen else {}  # absent without: old reports stay current
    return {"settings": plan.recipe.settings} | unseen, inputs, lambda d: write_report(plan, d)


def stage(plan: Any, name: str) -> StageSpec:
    """(config to fingerprint, input paths, function of the stage directory) for stage ``name``."""
    from trice.pipeline.plan import SETTINGS

    run = plan.run_dir
    task = plan.judge_task
    if name == "data":
        return fingerprint_fields(plan.data), [], lambda d: run_data(plan.data)
    if name == "probe":
        train = run / "data" / "train.jsonl"
        fn = lambda d: _generate_and_judge(d, train, plan.probe, task, "probe train", plan.tools)  # noqa: E731
        return _with_tools(fingerprint_fields(plan.probe), plan), [train], fn
    if name == "label":
        return _label_stage(plan)
    if name == "dev":
        from trice.data.schema import save_examples
        from trice.data.prepare import dev_from_pool

        config = fingerprint_fields(plan.data) | {"dev": fingerprint_fields(plan.dev)}
        return config, [], lambda d: save_examples(d / "dev.jsonl", dev_from_pool(plan.data, plan.dev.n_per_dataset))
    if name == "candidates":
        from trice.stage2.candidates import collect_candidates

        d_tool = run / "label" / "trice.jsonl"
        sources, adapters = resolve_sources(run, plan.candidates.sources)
        config = replace(plan.candidates, input=str(d_tool), output=str(run / name / CANDIDATES_FILE), sources=sources)
        return fingerprint_fields(config), [d_tool, *adapters], lambda d: raise_failed_rows(read_jsonl(collect_candidates(config)), "errors")
    if name == "score":
        from trice.stage2.score import run_score

        candidates = run / "candidates" / CANDIDATES_FILE
        config = replace(plan.score, input=str(candidates), output=str(run / name / "scored.jsonl"))
        return fingerprint_fields(config), [candidates], lambda d: write_json(d / "summary.json", run_score(config))
    if name.startswith("train-"):
        setting = name.removeprefix("train-")
        return (_stage_two_train if SETTINGS[setting].stage_two else _stage_one_train)(plan, setting)
    if name in plan.unseen_stages:
        setting, unseen = plan.unseen_stages[name]
        return _eval_stage(plan, setting, unseen.path, unseen.tasks, PER_ROW, f"eval {setting} on {unseen.name}")
    if name.startswith("eval-"):
        setting = name.removeprefix("eval-")
        return _eval_stage(plan, setting, run / "data" / "test.jsonl", plan.data.task_names, task, f"eval {setting}")
    if name == "report":
        return _report_stage(plan)
    raise KeyError(name)
