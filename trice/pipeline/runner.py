"""Running a plan: every stage in order, each skipped when its config and inputs are unchanged
(:func:`run_plan`), and what a run would do with each, loading nothing (:func:`stage_status`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from trice.generation.models import check_installed
from trice.core import layout
from trice.pipeline import stage_specs
from trice.pipeline.failures import StageBusy
from trice.core.layout import RUN_LOCK, eval_stage
from trice.pipeline.plan import Plan
from trice.pipeline.report import write_report
from trice.pipeline.settings import SETTINGS
from trice.pipeline.shared_training import pointer_stale
from trice.pipeline.stage_dirs import check_run_dir, claim_run_dir, run_stage, stage_verdict
from trice.tools.factories import tool_missing_packages
from trice.utils.config import ConfigError, to_dict
from trice.utils.io import write_json
from trice.utils.locks import LockBusy, acquire, holder, release


def missing_models(plan: Plan) -> list[str]:
    """``where: what to install`` for each embedded model the run loads that is not installed
    (:meth:`Plan.local_models`), and each package its tools' retrievers need (a dense index's
    embedding model) that is not."""
    missing = []
    for where, name in plan.local_models():
        try:
            check_installed(name)
        except FileNotFoundError as err:
            missing.append(f"{where}: {err}")
    for tool, options in plan.task_tools():
        missing += [f"tools: {tool}: {message}" for message in tool_missing_packages(tool, options)]
    return missing


def check_models_installed(plan: Plan, names: Sequence[str], forced: set[str]) -> None:
    """Every embedded model the run loads is installed, when any of the stages ``names`` will run
    (forced, or not up to date): without its translator package a run would label every
    translated question a failed call, while a finished run loads nothing and needs none.
    The package lookup is cheap, so the stages' fingerprints are read only when something is missing."""
    missing = missing_models(plan)
    if not missing:
        return
    if stages_to_run(plan, names, forced):
        raise ConfigError("; ".join(missing))


def stages_to_run(plan: Plan, names: Sequence[str], forced: set[str]) -> list[str]:
    """The stages of ``names`` a run will run: forced, or not up to date."""
    status = stage_status(plan)
    return [n for n in names if n in forced or status[n] != "up to date"]


def check_trainings(plan: Plan, names: Sequence[str], forced: set[str]) -> None:
    """Before any stage runs, each training that will run can start: its ``report_to`` trackers are
    installed and, where it trains a fresh LoRA, its ``target_modules`` name modules of the model
    (read from the model's config, no weights). Either once failed only when its stage was reached,
    after the stages before it had run (and changed ones had been moved aside)."""
    from trice.training.config import check_report_to
    from trice.training.lora import check_target_modules

    trains = [n for n in names if layout.split_stage(n)[0] == layout.TRAIN and n not in plan.unseen_stages]
    checked: set[str | None] = set()
    for name in stages_to_run(plan, trains, forced) if trains else []:
        setting = SETTINGS[str(layout.split_stage(name)[1])]
        if setting.section in checked:
            continue
        checked.add(setting.section)
        config = plan.trainer_config(setting.name)
        try:
            check_report_to(config.report_to)
            if not (config.init_adapter or setting.from_stage_one):  # a start adapter keeps its own modules
                check_target_modules(config)
        except ValueError as err:
            raise ConfigError(f"{setting.section}: {err}") from None


def run_plan(plan: Plan, only: str | None = None, start: str | None = None, stages: Sequence[str] | None = None, accept_outages: bool = False) -> Path:
    """Run the stages in order, each skipped when finished and resumed when partial. ``only``: just
    that one, forced; ``start``: that one and all after, forced; ``stages``: just these, in the
    recipe's order and not forced (a long benchmark's chosen stages, resumed across sessions).
    ``accept_outages``: a stage whose tool calls met outages finishes with them judged wrong
    instead of staying incomplete (:class:`trice.pipeline.failures.ToolOutages`)."""
    names = plan.stages
    chosen = [("--only", only), ("--from", start)] + [("--stages", s) for s in stages or ()]
    for flag, value in chosen:
        if value is not None and value not in names:
            raise ConfigError(f"{flag}: no stage {value!r}; stages: {', '.join(names)}")
    if sum(x is not None for x in (only, start, stages)) > 1:
        raise ConfigError("--only, --from and --stages: give one of them")
    if stages is not None and not stages:
        raise ConfigError(f"--stages: name at least one stage; stages: {', '.join(names)}")
    forced = set(names[names.index(start) :]) if start else set()
    if only:
        forced, names = {only}, [only]
    if stages is not None:
        chosen_names = set(stages)
        names = [n for n in names if n in chosen_names]
    check_models_installed(plan, names, forced)
    check_trainings(plan, names, forced)
    claim_run_dir(plan.run_dir)  # refuses a directory that is not a trice run, before writing into it
    with holding_run_dir(plan.run_dir):
        write_json(plan.layout.recipe, to_dict(plan.recipe))
        for name in names:
            config, inputs, fn = stage_specs.stage(plan, name)
            if stages is not None:
                check_inputs(plan, name, inputs)
            stage_dir = plan.layout.stage(name)
            force = name in forced or pointer_stale(stage_dir)  # its twin now trained otherwise: train or point anew
            run_stage(stage_dir, name, config, inputs, fn, force=force, keep=stage_specs.KEEP_ON_RESTART.get(name, ()), accept_outages=accept_outages)
    return plan.layout.report


@contextmanager
def holding_run_dir(run_dir: Path) -> Iterator[None]:
    """One ``trice run`` at a time writes a run directory: it holds ``RUN_DIR/.trice-run.lock`` from
    before it writes ``recipe.json`` to its last stage, and a second one (another recipe, other
    ``--stages``) stops with one line naming the holder, before it could move aside a stage the
    first is reading. ``--status`` and ``--report-so-far`` take no lock."""
    lock = run_dir / RUN_LOCK
    try:
        acquire(lock)
    except LockBusy as busy:
        raise StageBusy(
            f"{run_dir}: this run directory is being run by {busy.holder} (it holds {lock}); wait for it to finish or "
            "stop it: a second run could move aside or rewrite a stage the first is reading"
        ) from None
    try:
        yield
    finally:
        release(lock)


def run_holder(run_dir: Path) -> str | None:
    """Who runs ``run_dir`` now (None: no one); reads only, for ``--status``."""
    return holder(run_dir / RUN_LOCK)


def check_inputs(plan: Plan, name: str, inputs: Sequence[str | Path]) -> None:
    """A stage run on its own (``--stages``) needs its inputs already made: name the stage that makes
    a missing one, rather than failing inside the stage."""
    missing = [Path(p) for p in inputs if not Path(p).exists()]
    if missing:
        makers = sorted({plan.layout.stage_of(p) or str(p) for p in missing})
        raise ConfigError(f"--stages: {name} needs {', '.join(map(str, missing))}, not made yet: run {', '.join(makers)} first (or add it to --stages)")


def stage_status(plan: Plan) -> dict[str, str]:
    """What a run would do with each stage, loading nothing: ``up to date`` (finished with the same
    fingerprint: skipped), ``partial`` (same fingerprint, killed part-way: resumed), ``incomplete:
    N failed rows`` (ran through, but N rows failed, e.g. an endpoint was down: those are retried),
    ``running`` (another process is running it now: a run reaching it stops with an error),
    ``changed`` (finished or started under another config or inputs, or pointing at a twin training
    that has since trained on other rows: started over, the old directory moved aside), ``would
    redo`` (unchanged itself, but an input comes from an earlier stage that is not up to date, so it
    will change), ``to do`` (never started), ``waiting`` (never started, and an input does not exist
    yet or comes from an earlier stage that must run first).

    ``trice run RECIPE --status`` prints it; after a code change it shows whether finished runs
    would be redone (``changed``/``would redo``)."""
    check_run_dir(plan.run_dir)
    status: dict[str, str] = {}
    for name in plan.stages:
        config, inputs, _ = stage_specs.stage(plan, name)
        stage_dir = plan.layout.stage(name)
        verdict = stage_verdict(stage_dir, config, inputs)
        if verdict == "up to date" and pointer_stale(stage_dir):
            verdict = "changed"
        upstream = {plan.layout.stage_of(Path(p)) for p in inputs} - {None, name}
        if any(status.get(u, "up to date") != "up to date" for u in upstream):
            verdict = {"to do": "waiting", "up to date": "would redo", "partial": "would redo"}.get(verdict, verdict)
            verdict = "would redo" if verdict.startswith("incomplete") else verdict
        status[name] = verdict
    return status


def report_so_far(plan: Plan) -> Path:
    """A report of the settings whose test evaluation has finished, written to ``report-so-far/``,
    running no stage: a long run's results so far, while another process may still be running it
    (only finished evaluations are read). Settings not evaluated yet are named in it as such."""
    status = stage_status(plan)
    done = [s for s in plan.recipe.settings if status[eval_stage(s)] == "up to date"]
    if not done:
        raise ConfigError(
            f"{plan.run_dir}: no test evaluation has finished yet ({', '.join(f'{eval_stage(s)}: {status[eval_stage(s)]}' for s in plan.recipe.settings)})"
        )
    out = plan.layout.report_so_far
    out.mkdir(parents=True, exist_ok=True)
    write_report(plan, out, done)
    return out
