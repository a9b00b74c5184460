"""The ``trice`` command. Each subcommand's flags come from its stage's config dataclass.

``trice <command> --config FILE.yaml`` reads the same keys from YAML (flags given on the command
line win). Errors in input data or configs, and a file that could not be written, print one located
line and exit with status 2; Ctrl-C prints one line and exits with status 130. Every command's last
stdout line is a JSON summary. Output cut short by the reader (``trice -h | head -2``) ends the
command quietly, as a SIGPIPE ends a C tool.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trice import __version__
from trice.cli.args import dataclass_parser
from trice.core.layout import RECIPE, REPORT_MD, RESULTS
from trice.pipeline.recipe_files import find_recipe, shipped_names
from trice.pipeline.settings import TRAINERS
from trice.pipeline.failures import StageError
from trice.pipeline.stage_dirs import moved_aside
from trice.core.tools import ToolSetupError
from trice.utils.config import ConfigError, build_config, load_yaml, parse_overrides
from trice.utils.io import DataError
from trice.utils.storage import write_failure


# command -> (config dataclass, function running it, one-line help); imported only when used, so
# `trice evaluate` does not pay for importing the trainers. The train-* commands are the registry's
# trainers (commands()).
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "data": ("trice.data.prepare:DataConfig", "trice.data.prepare:run_data", "Load, split and subsample a task's datasets."),
    "download-data": (
        "trice.data.download:DownloadConfig",
        "trice.data.download:run_download",
        "Fetch the benchmark data from its public sources, checksum-verified (resumable).",
    ),
    "generate": ("trice.responses.generate:GenerateConfig", "trice.responses.generate:run_generate", "Generate responses for a file of examples (resumable)."),
    "evaluate": (
        "trice.judge.evaluate:EvaluateConfig",
        "trice.judge.evaluate:run_evaluate",
        "Judge responses: prediction, correct, used_tool; print accuracy.",
    ),
    "score": ("trice.stage2.score:ScoreConfig", "trice.stage2.score:run_score", "Stage II: score candidate responses by execution feedback (resumable)."),
    "label": ("trice.stage1.label:LabelConfig", "trice.stage1.label:run_label", "Build D_tool (or an SFT baseline's set) from a judged probe."),
    "candidates": (
        "trice.stage2.candidates:CandidatesConfig",
        "trice.stage2.candidates:collect_candidates",
        "Stage II: k candidate responses per D_tool question; sources only in --config YAML (resumable).",
    ),
    "messages": (
        "trice.data.convert:MessagesConfig",
        "trice.data.convert:run_messages",
        "Convert a D_tool to chat messages with tools (TRL, LLaMA-Factory), or --from_messages back to label rows.",
    ),
    "export": (
        "trice.export.exporter:ExportConfig",
        "trice.export.exporter:run_export",
        "Write a trained adapter as a model directory transformers/vLLM load (merged, or --no_merge), optionally --push_to_hub.",
    ),
}


def commands() -> dict[str, tuple[str, str, str]]:
    """Every subcommand but ``run``, with a ``train-<name>`` per trainer of the registry after ``label``."""
    found: dict[str, tuple[str, str, str]] = {}
    for name, spec in _COMMANDS.items():
        found[name] = spec
        if name == "label":
            found |= {f"train-{t.name}": (t.config, t.run, t.about) for t in TRAINERS.values()}
    return found


# The commands whose function returns no summary of its own (a path it wrote, rows), and what makes one
# from the config and that result; every train-* command's is TRAINING_SUMMARY.
SUMMARIES: dict[str, str] = {"generate": "trice.cli.summaries:generation_summary", "candidates": "trice.cli.summaries:candidates_summary"}
TRAINING_SUMMARY = "trice.cli.summaries:training_summary"
EXIT_BROKEN_PIPE = 141  # what a shell reports for a process ended by SIGPIPE (128 + 13)


def _load(ref: str) -> Any:
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def _run_stage_command(name: str, argv: Sequence[str]) -> Any:
    cls_ref, fn_ref, about = commands()[name]
    cls, fn = _load(cls_ref), _load(fn_ref)
    parser = dataclass_parser(cls, prog=f"trice {name}", description=about)
    parser.add_argument("--config", default=None, help="YAML file with the same keys (command-line flags win).")
    known, _ = parser.parse_known_args(argv)
    if known.config:
        values = load_yaml(known.config)
        build_config(cls, values, known.config)  # reject unknown keys and wrong types first
        parser.set_defaults(**values)
    args = vars(parser.parse_args(argv))
    args.pop("config")
    config = build_config(cls, args, f"trice {name}")
    result = fn(config)
    summary = TRAINING_SUMMARY if name.startswith("train-") else SUMMARIES.get(name)
    return _load(summary)(config, result) if summary else result


def _run_recipe(argv: Sequence[str]) -> Any:
    # imported here, as the commands' modules are, so that the other commands start without torch
    from trice.pipeline.plan import plan_recipe
    from trice.pipeline.runner import missing_models, report_so_far, run_holder, run_plan, stage_status

    parser = argparse.ArgumentParser(
        prog="trice run",
        description="Run every stage of a recipe, resumably.",
        epilog="Recipe keys: docs/recipe-keys.md. Example: trice run demo train.max_steps=2 eval.batch_size=8 --status",
    )
    parser.add_argument("recipe", help=f"Recipe YAML, or the name of a shipped one: {', '.join(shipped_names())}.")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="Recipe keys to set, dotted for a section's key, the value read as YAML (train.learning_rate=5e-4, "
        "settings='[zero-shot, trice-i]', data.n_test=null to drop one); laid over the recipe as a recipe over its base.",
    )
    parser.add_argument("--only", help="Run just this stage (forced).")
    parser.add_argument("--from", dest="start", help="Run this stage and every later one (forced).")
    parser.add_argument(
        "--stages",
        type=lambda v: [s.strip() for s in v.split(",") if s.strip()],
        help="Run just these stages (comma-separated), in the recipe's order, each skipped when finished and resumed when partial.",
    )
    parser.add_argument("--run-dir", help="Override the recipe's run_dir.")
    parser.add_argument(
        "--accept-outages",
        action="store_true",
        help="A probe, label, score or eval stage whose tool calls met outages (timeout, unavailable) finishes with them judged "
        "wrong, or their questions unlabelled (its stage.json counts them), instead of staying incomplete for a rerun to retry.",
    )
    parser.add_argument(
        "--status", action="store_true", help="Run nothing: print what a run would do with each stage (up to date, partial, changed, to do, waiting)."
    )
    parser.add_argument(
        "--report-so-far",
        action="store_true",
        help="Run nothing: write RUN_DIR/report-so-far/ from the settings evaluated so far (safe while the recipe runs).",
    )
    args = parser.parse_intermixed_args(argv)
    try:
        plan = plan_recipe(find_recipe(args.recipe), {"run_dir": args.run_dir} if args.run_dir else None, parse_overrides(args.overrides))
    except ConfigError as err:  # a key may come from the command line rather than the file: say which were given
        raise ConfigError(f"{err} (with {' '.join(args.overrides)})" if args.overrides else str(err)) from None
    if args.report_so_far:
        report = report_so_far(plan)
        return {"report": str(report / REPORT_MD), "results": str(report / RESULTS)}
    if args.status:
        old, running = moved_aside(plan.run_dir), run_holder(plan.run_dir)
        missing = missing_models(plan)
        extra = ({"moved aside": old} if old else {}) | ({"models not installed": missing} if missing else {})
        return stage_status(plan) | extra | ({"run in progress": running} if running else {})
    report = run_plan(plan, only=args.only, start=args.start, stages=args.stages, accept_outages=args.accept_outages)
    print(f"report: {report / REPORT_MD}", file=sys.stderr)
    return {"report": str(report / REPORT_MD), "results": str(report / RESULTS)}


def _migrate_run(argv: Sequence[str]) -> Any:
    from trice.pipeline.migrate_run import migrate_run
    from trice.pipeline.plan import plan_recipe

    parser = argparse.ArgumentParser(
        prog="trice migrate-run",
        description="Rewrite a run directory an older trice made to this trice's stage records, once: every finished stage "
        "whose hash an earlier fingerprint rule made gets the current hash, so it stays finished; nothing is redone or deleted.",
    )
    parser.add_argument("run_dir", help="The run directory.")
    parser.add_argument("--recipe", help="The recipe the run ran (a YAML path or a shipped name); default: RUN_DIR/recipe.json.")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Recipe keys the run was given on the command line.")
    args = parser.parse_intermixed_args(argv)
    recipe = find_recipe(args.recipe) if args.recipe else Path(args.run_dir) / RECIPE
    if not recipe.is_file():
        raise ConfigError(f"{args.run_dir}: no {RECIPE} to plan the run from: name the recipe it ran (--recipe RECIPE)")
    result = migrate_run(plan_recipe(recipe, {"run_dir": args.run_dir}, parse_overrides(args.overrides)))
    counts: dict[str, int] = {}
    for verdict in result["stages"].values():
        counts[verdict] = counts.get(verdict, 0) + 1
    rekeyed = f", {len(result['pointers rekeyed'])} shared-training pointers keyed anew" if result["pointers rekeyed"] else ""
    print(f"{args.run_dir}: stages " + ", ".join(f"{n} {verdict}" for verdict, n in counts.items()) + rekeyed, file=sys.stderr)
    return result


# Commands that take a recipe rather than one stage's config.
RECIPE_COMMANDS = {"run": _run_recipe, "migrate-run": _migrate_run}


def main(argv: Sequence[str] | None = None) -> int:
    """The ``trice`` command; returns its exit status."""
    try:
        try:
            return _main(list(sys.argv[1:] if argv is None else argv))
        finally:  # flushed here, not at exit (argparse's --help exits), so a closed pipe is caught below
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped reading: nothing is left to say to it. Point stdout at /dev/null so the
        # interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _usage(names: Sequence[str]) -> None:
    print("usage: trice {" + ",".join(names) + "} [--help] ...\n")
    print("  run          Run a whole recipe (a YAML path, or a shipped name: demo) stage by stage, resumably.")
    print("  migrate-run  Rewrite a run directory an older trice made to this trice's stage records (once).")
    for name, (_, _, about) in commands().items():
        print(f"  {name:<12} {about}")
    print("\n  -V, --version  print the version and exit")


def _main(argv: list[str]) -> int:
    names = [*RECIPE_COMMANDS, *commands()]
    if not argv or argv[0] in ("-h", "--help"):
        _usage(names)
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"trice {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in names:
        print(f"trice: unknown command {command!r}; commands: {', '.join(names)}", file=sys.stderr)
        return 2
    if hasattr(sys.stderr, "reconfigure"):  # a path of bytes that are not UTF-8 is printed escaped, not raised on
        sys.stderr.reconfigure(errors="backslashreplace")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = RECIPE_COMMANDS[command](rest) if command in RECIPE_COMMANDS else _run_stage_command(command, rest)
    except (DataError, ConfigError, OSError, StageError, ToolSetupError) as err:  # OSError: a missing, unreadable or unwritable path
        if isinstance(err, BrokenPipeError):
            raise
        print(f"trice {command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: every output is resumable, so this is no error of the data's
        print(f"trice {command}: interrupted; what finished is kept, and the same command resumes it", file=sys.stderr)
        return 130
    except Exception as err:  # a library that failed to write (torch, safetensors) says so in its own exception types
        failed = write_failure(err)
        if failed is None:
            raise
        print(f"trice {command}: error: a file could not be written ({failed}): is the disk full or a file-size limit reached? "
              "What was written whole is kept: make room and run the same command again", file=sys.stderr)  # fmt: skip
        return 2
    if isinstance(result, dict):
        print(json.dumps(result))
    return 0
