"""What each pipeline stage reads, which config fingerprints it, and the function that runs it: one
builder per kind of stage, found by the stage's name (:func:`stage`).

A stage's fingerprint is its config and the bytes of its inputs (:mod:`trice.pipeline.stage_dirs`), so
each builder here must keep returning what it returned for a finished run: a key added to a
config, or a path spelled otherwise, redoes that stage of every finished run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from trice.data.prepare import dev_from_pool, run_data
from trice.core.schema import load_examples, save_examples
from trice.responses.few_shot import FewShotBackend, few_shot_fingerprint
from trice.core.call_format import THRESHOLD
from trice.generation.models import call_format_of, load_tokenizer
from trice.judge.reading import ReadingModel
from trice.core import layout
from trice.pipeline.eval_stage import eval_inputs, generate_and_judge, reuse_twin_eval, tau_on_dev
from trice.core.layout import ADAPTER, BEST_ADAPTER, CHECKPOINTS, RESPONSES, SELECTION, SUMMARY, label_file, label_stats_file
from trice.pipeline.plan import STAGE_ONE_ADAPTERS, Plan
from trice.pipeline.recipe import PROBE_RESPONSES
from trice.pipeline.report import write_report
from trice.pipeline.settings import D_TOOL, SETTINGS, STAGE_ONE, trainer_of
from trice.pipeline.shared_training import share_training, trained_dir
from trice.pipeline.failures import ToolOutages, TrainingOutages, raise_failed_rows
from trice.pipeline.trainers import SCORED
from trice.training.config import LoRATrainingConfig
from trice.stage1.boundary import own_accuracy, sample_examples
from trice.stage1.label import knowledge_boundary, label_modes
from trice.stage2.candidates import collect_candidates, parts_dir
from trice.stage2.reward import RewardOutage
from trice.stage2.score import run_score
from trice.tasks import PER_ROW
from trice.training.checkpoints import checkpoints, is_complete
from trice.utils.io import read_json, read_jsonl, write_json, write_jsonl

# (config to fingerprint, input paths, function of the stage directory)
StageSpec = tuple[Any, list[Path], Callable[[Path], Any]]

# What a stage keeps when it starts over (trice.pipeline.stage_dirs.run_stage): the candidates' per-source parts
# record what made them and are reused only where that is unchanged, so adding a source or
# changing one redoes that source alone.
KEEP_ON_RESTART = {layout.CANDIDATES: (parts_dir(layout.CANDIDATES_FILE).name,)}


def _with_tools(config: dict, plan: Plan) -> dict:
    """A judging stage's fingerprint: its config, plus the tool options when the recipe sets any."""
    return config | ({"tools": plan.tools} if plan.tools else {})


def stage_one_adapter(run: Path, which: str) -> Path:
    """The stage-I adapter a candidate source names: ``stage-i`` (the final one) or ``stage-i-early``
    (the first complete checkpoint, or the final adapter when none was saved). Where stage I shares
    a twin's training (:mod:`trice.pipeline.shared_training`), the twin's."""
    out = trained_dir(run, STAGE_ONE)
    if which == "stage-i-early":
        saved = [path for _, path in checkpoints(out / CHECKPOINTS) if is_complete(path)]
        if saved:
            return saved[-1]  # checkpoints() lists the highest step first
    return out / ADAPTER


def resolve_sources(run: Path, sources: list[dict]) -> tuple[list[dict], list[Path]]:
    """The candidate sources with the pipeline's placeholders made paths (a stage-I ``adapter``; the
    ``probe`` as a responses ``path``), and the files they read (inputs of the stage's hash)."""
    resolved, reads = [], []
    for source in sources:
        if source.get("adapter") in STAGE_ONE_ADAPTERS:
            source = source | {"adapter": str(stage_one_adapter(run, source["adapter"]))}
        if source.get("kind") == "responses" and source.get("path") == PROBE_RESPONSES:
            source = source | {"path": str(layout.RunLayout(run).probe / RESPONSES)}
        reads += [Path(p) for p in (source.get("adapter"), source.get("path")) if p]
        resolved.append(source)
    return resolved, reads


def final_adapter(run: Path, setting: str) -> Path | None:
    """The adapter a trained setting is evaluated with: stage II's dev-chosen one where it exists, or
    None (the base model) where the dev set chose TRICE-II's start, the base model, over every
    checkpoint (``best_adapter`` null in ``selection.json``, see :mod:`trice.stage2.select_checkpoint`);
    for a setting sharing a twin's training, the twin's adapter."""
    out = trained_dir(run, setting)
    selection = out / SELECTION
    if selection.is_file() and read_json(selection)["best_adapter"] is None:
        return None
    best = out / BEST_ADAPTER
    return best if best.is_dir() else out / ADAPTER


def data_fingerprint(plan: Plan) -> tuple[Any, list[Path]]:
    """The data section as the data and dev stages fingerprint it, and the files they read: your own
    train/test files enter by their bytes (and file names), not by where they lie, so a moved
    checkout is the same run."""
    fields = plan.fields_of(plan.data)
    files = plan.data.source_files()
    named = {key: Path(value).name for key in ("train", "test") if (value := fields.get(key)) and Path(value) in files}
    return fields | named, files


def _data_step(plan: Plan) -> StageSpec:
    config, files = data_fingerprint(plan)
    return config, files, lambda d: run_data(plan.data)


def _probe_step(plan: Plan) -> StageSpec:
    """The base model on the training questions: what the label stage labels."""
    train = plan.layout.train_examples
    fn = lambda d: generate_and_judge(d, train, plan.probe, plan.judge_task, "probe train", plan.tools)  # noqa: E731
    return _with_tools(plan.fields_of(plan.probe), plan), [train], fn


def _label_step(plan: Plan) -> StageSpec:
    """Every training set the run's settings train on (and D_tool for stage II), from the probe."""
    judged = plan.layout.probe / layout.JUDGED
    modes = sorted({m for s in plan.recipe.settings if (m := SETTINGS[s].label) is not None} | ({D_TOOL} if plan.recipe.stage_two else set()))
    options = plan.fields_of(plan.label)
    reads = "mlqa" in plan.data.task_names  # a translator call is kept when the probed model reads it right
    reading = replace(plan.probe, read_max_new_tokens=plan.label.read_max_new_tokens)
    fingerprinted = {"modes": modes} | ({"label": options} if options else {}) | ({"reader": plan.fields_of(reading)} if reads else {})

    boundary = [plan.layout.own_accuracy] if plan.label.own_if else []  # read only under the knowledge-boundary rule

    def label(d: Path) -> None:
        rows, counts = knowledge_boundary(read_jsonl(judged), plan.label.own_if, read_jsonl(boundary[0]) if boundary else [])
        reader = ReadingModel.for_config(reading, cache=d / layout.READINGS, desc="label: read again")
        native = call_format_of(plan.label).native
        tokenizer = load_tokenizer(plan.label.model) if native else None  # once for every mode's rows
        outages: dict[str, str] = {}
        for mode, (out, stats) in label_modes(rows, modes, reader, outages, **plan.label.tool_call_options()).items():
            write_jsonl(d / label_file(mode), plan.label.in_call_format(out, tokenizer))
            write_json(d / label_stats_file(mode), stats | (counts if mode == D_TOOL else {}))
        if outages:  # dropped for the machine's sake, not the question's: label again, or accept
            first = next(iter(outages))
            raise ToolOutages(len(outages), len(rows), f"{first}: {outages[first]}"[:200])

    return fingerprinted, [judged, *boundary], label


def _probe_samples_step(plan: Plan) -> StageSpec:
    """``probe.samples`` sampled answers of the base model to each training question, judged, and each
    question's own accuracy over them and the greedy probe's answer (:mod:`trice.stage1.boundary`)."""
    train, probed = plan.layout.train_examples, plan.layout.probe / layout.JUDGED
    samples = plan.probe_samples
    config = replace(plan.probe, do_sample=True, temperature=samples.sample_temperature, top_p=samples.sample_top_p)
    fingerprinted = _with_tools(plan.fields_of(config), plan) | {"samples": samples.samples}

    def sample(d: Path) -> None:
        save_examples(d / layout.SAMPLED_EXAMPLES, sample_examples(load_examples(train), samples.samples))
        generate_and_judge(d, d / layout.SAMPLED_EXAMPLES, config, plan.judge_task, f"probe {samples.samples} samples", plan.tools)
        write_jsonl(d / layout.OWN_ACCURACY, own_accuracy(read_jsonl(probed), read_jsonl(d / layout.JUDGED)))

    return fingerprinted, [train, probed], sample


def _dev_step(plan: Plan) -> StageSpec:
    """Training-pool questions no stage trains on, for stage II's checkpoint choice."""
    data, files = data_fingerprint(plan)
    config = data | {"dev": plan.fields_of(plan.dev)}
    return config, files, lambda d: save_examples(d / layout.DEV_EXAMPLES, dev_from_pool(plan.data, plan.dev.n_per_dataset))


def _candidates_step(plan: Plan) -> StageSpec:
    d_tool = plan.layout.label_rows(D_TOOL)
    sources, adapters = resolve_sources(plan.run_dir, plan.candidates.sources)
    config = replace(plan.candidates, input=str(d_tool), output=str(plan.layout.candidates), sources=sources)
    return plan.fields_of(config), [d_tool, *adapters], lambda d: raise_failed_rows(read_jsonl(collect_candidates(config)), "errors")


def _score_step(plan: Plan) -> StageSpec:
    """Every candidate judged and scored; rows scored on a tool outage or an unread output keep the
    stage incomplete (their scores would rank the machine's failures), and a rerun scores them again."""
    candidates = plan.layout.candidates
    config = replace(plan.score, input=str(candidates), output=str(plan.layout.scored))

    def score(d: Path) -> None:
        summary = run_score(config)
        write_json(d / SUMMARY, summary)
        if failed := summary.get("machine_failures"):
            raise ToolOutages(failed["rows"], summary["n"], failed["first"])

    return plan.fields_of(config), [candidates], score


def owned(config: LoRATrainingConfig) -> LoRATrainingConfig:
    """A train stage's config as its trainer gets it: the stage directory (its ``output_dir``, holding
    ``stage.json``) is the pipeline's own, so the trainer writes into it without its own marker
    (:func:`trice.utils.outputs.claim_output_dir`). Applied after fingerprinting: hashes stay as they were."""
    return replace(config, overwrite=True)


def _stage_one_train(plan: Plan, setting: str) -> StageSpec:
    """LoRA SFT on the setting's labelled set, or, where a finished sibling trained on the same rows
    with the same config, a pointer to its training (:mod:`trice.pipeline.shared_training`)."""
    kind = SETTINGS[setting]
    data = plan.layout.label_rows(kind.label)
    config = replace(plan.trainer_config(setting), data=str(data), output_dir=str(plan.layout.train_dir(setting)))
    fingerprinted = plan.fields_of(config)

    def train(d: Path) -> None:
        if share_training(d, fingerprinted) is None:
            trainer_of(setting).train(owned(config))

    return fingerprinted, [data], train


def _stage_two_train(plan: Plan, setting: str) -> StageSpec:
    """Stage II's trainer on the scored candidates (or, for an online trainer, D_tool's questions),
    from the stage-I adapter (TRICE-ALL) or a fresh LoRA (TRICE-II), or from the adapter the
    recipe's section names."""
    kind, trainer = SETTINGS[setting], trainer_of(setting)
    data = plan.layout.scored if trainer.reads == SCORED else plan.layout.label_rows(D_TOOL)
    dev = plan.layout.dev_examples
    section = plan.trainer_config(setting)
    if section.init_adapter:  # the recipe's own start (an online round's previous adapter)
        start: Path | None = Path(section.init_adapter)
    else:
        start = trained_dir(plan.run_dir, STAGE_ONE) / ADAPTER if kind.from_stage_one else None
    own = [plan.layout.own_accuracy] if section.needs_own_accuracy else []  # boundary pairs read the probe's samples
    config = replace(
        section,
        data=str(data),
        output_dir=str(plan.layout.train_dir(setting)),
        dev_data=str(dev),
        init_adapter=None if start is None else str(start),
        **({"own_accuracy": str(own[0])} if own else {}),
    )

    def train(d: Path) -> None:
        try:
            trainer.train(owned(config))
        except RewardOutage as outage:
            raise TrainingOutages(outage.count, outage.total, outage.first) from None
        raise_dev_outages(Path(config.output_dir) / SELECTION)

    return plan.fields_of(config), [data, dev, *own] + ([start] if start is not None else []), train


def raise_dev_outages(selection: Path) -> None:
    """:class:`ToolOutages` when the dev evaluation that chose the checkpoint met tool outages: a
    checkpoint chosen on the machine's failures is not chosen on its answers. A rerun trains nothing
    more (the last checkpoint holds max_steps) and judges the cached dev responses again."""
    steps = read_json(selection)["steps"] if selection.is_file() else []
    met = [(s["step"], s["tool_outages"]) for s in steps if s.get("tool_outages")]
    if met:
        count = sum(n for _, kinds in met for n in kinds.values())
        step, kinds = met[0]
        raise ToolOutages(count, sum(s["n"] for s in steps), f"dev step {step}: " + ", ".join(f"{n} {k}" for k, n in kinds.items()))


def _train_step(plan: Plan, setting: str) -> StageSpec:
    return (_stage_two_train if SETTINGS[setting].stage_two else _stage_one_train)(plan, setting)


def _eval_on(plan: Plan, setting: str, test: Path, tasks: list[str] | tuple[str, ...], task: str, desc: str) -> StageSpec:
    """Generate on ``test`` with the setting's model (and, for few-shot, its prompts) and judge by
    ``task``; copies a current twin eval with the same weights instead where there is one."""
    kind = SETTINGS[setting]
    adapter = final_adapter(plan.run_dir, setting) if kind.trainer is not None else None  # None: the base model
    config = replace(plan.eval, adapter=None if adapter is None else str(adapter))
    threshold = config.decision == THRESHOLD
    inputs = eval_inputs(test, adapter) + ([plan.layout.dev_examples] if threshold else [])  # tau is chosen on dev
    prompts = {"few_shot": few_shot_fingerprint(kind.few_shot, tasks)} if kind.few_shot else {}
    fingerprinted = _with_tools(plan.fields_of(config), plan) | prompts

    def evaluate(d: Path) -> None:
        if reuse_twin_eval(d, fingerprinted, inputs) is None:
            backend = FewShotBackend(config, kind.few_shot) if kind.few_shot else None
            decided = config
            if threshold:
                decided = replace(config, decision_tau=tau_on_dev(d, plan.layout.dev_examples, config, task, desc, plan.tools))
            generate_and_judge(d, test, decided, task, desc, plan.tools, backend)

    return fingerprinted, inputs, evaluate


def _eval_step(plan: Plan, setting: str) -> StageSpec:
    """The setting on the run's test questions."""
    return _eval_on(plan, setting, plan.layout.test_examples, plan.data.task_names, plan.judge_task, f"eval {setting}")


def _unseen_step(plan: Plan, name: str) -> StageSpec:
    """A setting on an unseen test set, each row judged by its own task (:mod:`trice.pipeline.unseen`)."""
    setting, unseen = plan.unseen_stages[name]
    return _eval_on(plan, setting, unseen.path, unseen.tasks, PER_ROW, f"eval {setting} on {unseen.name}")


def _report_step(plan: Plan) -> StageSpec:
    inputs = [plan.layout.eval_dir(s) / SUMMARY for s in plan.recipe.settings]
    inputs += [plan.layout.stage(name) / SUMMARY for name in plan.unseen_stages]
    unseen = {"unseen": [u.name for u in plan.unseen]} if plan.unseen else {}  # absent without: old reports stay current
    return {"settings": plan.recipe.settings} | unseen, inputs, lambda d: write_report(plan, d)


# The stages without a setting, and the kinds of a setting's stages (trice.core.layout.split_stage).
STEPS: dict[str, Callable[[Plan], StageSpec]] = {
    layout.DATA: _data_step,
    layout.PROBE: _probe_step,
    layout.PROBE_SAMPLES: _probe_samples_step,
    layout.LABEL: _label_step,
    layout.DEV: _dev_step,
    layout.CANDIDATES: _candidates_step,
    layout.SCORE: _score_step,
    layout.REPORT: _report_step,
}
SETTING_STEPS: dict[str, Callable[[Plan, str], StageSpec]] = {layout.TRAIN: _train_step, layout.EVAL: _eval_step}


def stage(plan: Plan, name: str) -> StageSpec:
    """(config to fingerprint, input paths, function of the stage directory) for stage ``name``."""
    if name in plan.unseen_stages:
        return _unseen_step(plan, name)
    kind, setting = layout.split_stage(name)
    if setting is None:
        return STEPS[kind](plan)
    if setting not in SETTINGS:
        raise KeyError(name)
    return SETTING_STEPS[kind](plan, setting)
