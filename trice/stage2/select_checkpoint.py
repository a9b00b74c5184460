"""Choosing the stage II checkpoint on a dev set held out from the training data.

The paper saw stage II peak within 10-40 steps and then decay, so the last adapter is not the one
to keep. :func:`select_checkpoint` generates the dev responses of every checkpoint (and of the final
adapter, where no checkpoint has its step), judges them, writes ``selection.json`` (accuracy per
dataset and in total, tool-use rate, per step; the best step by total accuracy, ties to the earlier
step, which trained less), copies the best adapter to ``adapter_best`` and plots ``dev_curve.png``.

Stage II can also make the model worse than where it started, so by default the start is a
candidate too, as step 0: the stage-I adapter (TRICE-ALL) or the base model (TRICE-II, whose fresh
LoRA is the identity before its first step). Ties going to the earlier step, a checkpoint is kept
only where it beats the start on dev. The base model has no adapter to keep: where it wins,
``best_adapter`` is None, ``adapter_best`` is removed and the setting is evaluated on the base model
(:func:`trice.pipeline.stage_specs.final_adapter`).

Each step's responses go to ``dev/<step>.jsonl``, resumably by example id, next to a
``dev/<step>.meta.json`` stamp (the adapter weights' hash, None for the base model, and the
generation settings, which name the model): a rerun reuses a file only for the same weights and
settings, so a retrained checkpoint-N or another ``max_new_tokens`` cannot pass off old answers.

The dev set must come from the training data, never from test (choosing on test would leak it
into the result): :func:`carve_dev` splits one off deterministically, and :func:`load_dev` refuses
test-split examples and ids that are also trained on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trice.generation import models
from trice.generation.adapters import adapter_files, check_adapter_dir, weights_file
from trice.core.schema import Example, load_examples, sample
from trice.core.call_format import TEXT, TEXT_FORMAT, CallFormat
from trice.generation.models import call_format_of
from trice.judge.evaluate import judge_rows, summarize, tool_rate_by_dataset
from trice.responses.generate import GenerateConfig, generate_for_examples
from trice.utils.io import load_partial, read_json, write_json
from trice.judge.reading import ReadingModel
from trice.core.layout import ADAPTER, BEST_ADAPTER, CHECKPOINTS, DEV_CURVE, SELECTION, TRAIN_LOG
from trice.tasks import PER_ROW
from trice.training.checkpoints import checkpoints, is_complete

if TYPE_CHECKING:
    from trice.stage2.config import StageIIConfig

log = logging.getLogger(__name__)

METRIC = "total dev accuracy"


def _refuse_test(examples: Sequence[Example], where: str) -> None:
    test = [e.id for e in examples if e.split == "test"]
    if test:
        raise ValueError(f"{where}: {len(test)} examples are from the test split (first: {test[0]}); the dev set must come from training data")


def carve_dev(examples: Sequence[Example], n_dev: int, seed: int) -> tuple[list[Example], list[Example]]:
    """``(train, dev)``: the ``n_dev`` examples first in a seeded hash order of their ids go to dev
    (marked ``split="dev"``), the rest stay train; both keep the input order. An example's side
    depends on its id and the seed alone, not on the file's order or its other examples."""
    if not 0 <= n_dev <= len(examples):
        raise ValueError(f"n_dev: must be in [0, {len(examples)}], got {n_dev}")
    _refuse_test(examples, "carve_dev")
    dev_ids = {e.id for e in sample(list(examples), n_dev, seed)}
    train = [e for e in examples if e.id not in dev_ids]
    dev = [dataclasses.replace(e, split="dev") for e in examples if e.id in dev_ids]
    return train, dev


def load_dev(path: str | Path, train_ids: Collection[str]) -> list[Example]:
    """The dev examples at ``path``, after checking none is from test and none is trained on."""
    dev = load_examples(path)
    _refuse_test(dev, f"dev_data {path}")
    shared = [e.id for e in dev if e.id in train_ids]
    if shared:
        raise ValueError(f"dev_data {path}: {len(shared)} ids are also in the training data (first: {shared[0]}); the dev set must be held out")
    return dev


def dev_for(config: StageIIConfig, train_ids: Collection[str]) -> list[Example] | None:
    """A stage II config's dev set (checked before training, so a bad one fails early), or None."""
    return load_dev(config.dev_data, train_ids) if config.dev_data else None


def select_on_dev(config: StageIIConfig, dev: Sequence[Example] | None) -> dict[str, Any] | None:
    """After training: choose the stage II checkpoint of ``config.output_dir`` on ``dev`` (greedy, the
    config's dev settings), or do nothing without a dev set."""
    if dev is None:
        return None
    generate = GenerateConfig(
        model=config.model, template=config.template, batch_size=config.dev_batch_size, max_new_tokens=config.dev_max_new_tokens,
        stop_after_call=config.dev_stop_after_call, call_format=config.call_format, tool_parser=config.tool_parser,
    )  # fmt: skip
    return select_checkpoint(config.output_dir, dev, generate, config.tools, select_start=config.select_start, init_adapter=config.init_adapter)


def _candidates(out: Path) -> list[tuple[int, Path]]:
    """``(step, adapter directory)`` to evaluate, by step: the complete checkpoints, plus the final
    adapter when no checkpoint has its step (the trainer saves one at the end, so normally none)."""
    found = {step: path for step, path in checkpoints(out / CHECKPOINTS) if is_complete(path)}
    train_log = out / TRAIN_LOG
    if (out / ADAPTER).is_dir() and train_log.is_file():
        final_step = int(read_json(train_log)[-1]["step"])
        found.setdefault(final_step, out / ADAPTER)
    return sorted(found.items())


def _weights_sha256(adapter: Path | None) -> str | None:
    """The adapter weights' hash; None for the base model (which the generation settings name)."""
    if adapter is None:
        return None
    return hashlib.sha256(weights_file(adapter).read_bytes()).hexdigest()


def _dev_responses(step: int, adapter: Path | None, dev: Sequence[Example], generate: GenerateConfig, dev_dir: Path) -> list[dict]:
    """The dev responses of one adapter (None: the base model), generated where ``dev/<step>.jsonl`` lacks them."""
    path, stamp_path = dev_dir / f"{step}.jsonl", dev_dir / f"{step}.meta.json"
    settings = dataclasses.asdict(generate)
    settings.pop("read_max_new_tokens")  # how tool outputs are read again later does not change the responses
    if not settings["stop_after_call"]:  # as stamps written before the option recorded them
        del settings["stop_after_call"]
    if settings["call_format"] == TEXT_FORMAT:  # likewise, the text call format of every earlier stamp
        del settings["call_format"], settings["tool_parser"]
    stamp = {"weights_sha256": _weights_sha256(adapter), "generate": settings}
    if path.exists() and (not stamp_path.is_file() or read_json(stamp_path) != stamp):
        log.warning("%s was generated by other weights or settings: generating it again", path)
        path.unlink()
    write_json(stamp_path, stamp)
    done = load_partial(path)
    if all(e.id in done for e in dev):
        return [done[e.id] for e in dev]
    model, tokenizer = models.load_model(generate.model, adapter=adapter)
    return generate_for_examples(dev, path, model, tokenizer, generate, desc=f"dev step {step}")


def judge_by_task(rows: Sequence[dict], reader: ReadingModel | None = None, tools: dict | None = None, calls: CallFormat = TEXT) -> list[dict]:
    """:func:`trice.judge.evaluate.judge_rows` with each row's own task (a mixed dev set), in input order;
    ``reader`` (the checkpoint's own model) reads WikiSearch passages and translations again;
    ``calls``: the format the responses write their calls in."""
    return judge_rows(rows, PER_ROW, reader, tools, calls=calls)


def _copy_adapter(src: Path, dst: Path) -> None:
    """Copy an adapter's config and weights (not a checkpoint's optimizer state) to ``dst``, checked
    before it replaces what was there."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for file in adapter_files(src):
        shutil.copy2(file, tmp / file.name)
    check_adapter_dir(tmp)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)


def select_checkpoint(
    output_dir: str | Path,
    dev: Sequence[Example],
    generate: GenerateConfig,
    tools: dict | None = None,
    *,
    select_start: bool = True,
    init_adapter: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate every checkpoint of a run on ``dev``; write ``selection.json``, ``adapter_best`` and
    ``dev_curve.png`` in ``output_dir``; return the selection.

    ``generate`` gives the base model, template and decoding (its ``adapter`` is ignored: each
    checkpoint's is used). With ``select_start`` the start of training is step 0: ``init_adapter``,
    or the base model where that is None (see the module docstring).
    """
    out = Path(output_dir)
    if not dev:
        raise ValueError("dev: no examples to select a checkpoint on")
    trained = _candidates(out)
    if not trained:
        raise ValueError(f"{out}: no complete checkpoint or final adapter to select from")
    start: list[tuple[int, Path | None]] = [(0, None if init_adapter is None else Path(init_adapter))] if select_start else []
    steps, calls = [], call_format_of(generate)
    for step, adapter in start + trained:
        name = None if adapter is None else str(adapter)
        reader = ReadingModel.for_config(dataclasses.replace(generate, adapter=name), cache=out / "dev" / f"{step}.readings.jsonl")
        judged = judge_by_task(_dev_responses(step, adapter, dev, generate, out / "dev"), reader, tools, calls)
        steps.append({"step": step, "adapter": name, **summarize(judged), "tool_rate_by_dataset": tool_rate_by_dataset(judged)})
    best = max(steps, key=lambda s: (s["accuracy"]["total"], -s["step"]))
    if best["adapter"] is None:
        shutil.rmtree(out / BEST_ADAPTER, ignore_errors=True)  # an earlier selection's copy must not be evaluated instead
    else:
        _copy_adapter(Path(best["adapter"]), out / BEST_ADAPTER)
    selection = {
        "metric": METRIC,
        "best_step": best["step"],
        "best_accuracy": best["accuracy"]["total"],
        "best_adapter": None if best["adapter"] is None else str(out / BEST_ADAPTER),
        "selected_from": best["adapter"],
        "n_dev": len(dev),
        "steps": steps,
    }
    write_json(out / SELECTION, selection)
    plot_dev_curve(steps, best["step"], out / DEV_CURVE)
    log.info("best dev step %d: accuracy %.3f (tool rate %.3f)", best["step"], best["accuracy"]["total"], best["tool_rate"])
    return selection


def plot_dev_curve(steps: Sequence[dict], best_step: int, path: Path) -> None:
    """Dev accuracy (per dataset and in total) and tool-use rate against the optimizer step, one panel each."""
    import matplotlib  # here, not at the top: only a selection draws, and Agg must be chosen before pyplot loads

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [s["step"] for s in steps]
    fig, (acc_ax, tool_ax) = plt.subplots(2, 1, sharex=True, figsize=(7, 6), dpi=120)
    for name in steps[0]["accuracy"]:
        total = name == "total"
        acc_ax.plot(xs, [100 * s["accuracy"][name] for s in steps], marker="o", lw=2.5 if total else 1, label=name)
    tool_ax.plot(xs, [100 * s["tool_rate"] for s in steps], marker="o", color="tab:red", label="all")
    for ax in (acc_ax, tool_ax):
        ax.axvline(best_step, color="grey", ls="--", lw=1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    acc_ax.set_ylabel("dev accuracy (%)")
    acc_ax.set_title(f"Stage II checkpoints on the dev set (best: step {best_step}{', the start' if best_step == 0 else ''})")
    tool_ax.set_ylabel("tool-use rate (%)")
    tool_ax.set_xlabel("optimizer step (0: the start)" if xs[0] == 0 else "optimizer step")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
