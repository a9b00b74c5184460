"""``trice migrate-run DIR``: rewrite a run directory an older trice made to this trice's stage records, once.

Older versions hashed a stage's config under other rules (:mod:`trice.pipeline.earlier_rules`), and
some with the paths under the run directory as spelled rather than relative to it. ``trice run``
recomputes the one rule it runs by and refuses a run of an earlier format
(:class:`trice.pipeline.stage_dirs.OlderRun`); this command recognises each finished stage of such
a run (its stored hash is one an earlier rule gives the stage's config and inputs now) and rewrites
its ``stage.json`` with the current hash, so the run stays finished. A stage it does not recognise
is left as it is, and ``trice run`` redoes it as changed. The pointers of shared trainings
(``same_as.json``) are keyed anew the same way. Nothing is redone or deleted: only ``stage.json``,
``same_as.json`` and the run's marker are rewritten, each in one atomic write, the marker last, so
a killed migration is finished by running it again, and running it on a migrated run changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from trice.core.layout import RECIPE, SAME_AS, train_stage
from trice.pipeline import stage_specs
from trice.pipeline.earlier_rules import EARLIER_RULES, with_hashed_defaults
from trice.pipeline.failures import StageBusy
from trice.pipeline.plan import Plan
from trice.pipeline.shared_training import trained_sibling, training_key
from trice.pipeline.stage_dirs import (
    RUN_FORMAT, RUN_MARKER, is_current, lock_path, portable, respelled, run_format, spellings_now, stage_hash,
)  # fmt: skip
from trice.pipeline.stage_record import MARKER, stage_state
from trice.stage1.config import SFTConfig
from trice.utils.config import ConfigError
from trice.utils.fingerprint import fingerprints
from trice.utils.io import DataError, read_json, write_json
from trice.utils.locks import LockBusy, acquire, release

CURRENT, MIGRATED, UNRECOGNISED, NOT_STARTED, INPUTS_MISSING = "current", "migrated", "not recognised", "not started", "inputs missing"


def known_spellings(run_dir: Path) -> list[str]:
    """Every way an older trice may have spelled the run directory in a hash of paths as spelled:
    :func:`spellings_now`, the spellings its marker recorded, and the ``run_dir`` of its recipe.json."""
    spellings = spellings_now(run_dir)
    for path, key in ((run_dir / RUN_MARKER, "spellings"), (run_dir / RECIPE, "run_dir")):
        try:
            recorded = read_json(path).get(key) if path.is_file() else None
        except (DataError, AttributeError):
            recorded = None
        spellings += [s for s in (recorded if isinstance(recorded, list) else [recorded]) if isinstance(s, str)]
    return list(dict.fromkeys(spellings))


def _json_key(config: Any) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def earlier_configs(run_dir: Path, configs: Sequence[Any]) -> list[Any]:
    """Each of ``configs`` (a stage's config under each rule) as hashed with its run paths relative to
    the run directory (:func:`portable`), and as spelled by each of :func:`known_spellings`."""
    found: dict[str, Any] = {}
    for config in configs:
        moved = portable(config, run_dir)
        spelled = [respelled(moved, s) for s in known_spellings(run_dir)] if _json_key(moved) != _json_key(config) else []
        for candidate in (moved, *spelled):
            found.setdefault(_json_key(candidate), candidate)
    return list(found.values())


def migrate_stage(stage_dir: Path, config: Any, earlier: Sequence[Any], inputs: Sequence[Path]) -> str:
    """Rewrite the stage's ``stage.json`` with its current hash when its stored one is what an
    earlier rule gave it (``config`` as hashed now, ``earlier`` as each earlier rule hashed it);
    returns what it found (:data:`CURRENT`, :data:`MIGRATED`, :data:`UNRECOGNISED`, ...)."""
    state = stage_state(stage_dir)
    if state is None:
        return NOT_STARTED
    if not all(p.exists() for p in inputs):
        return INPUTS_MISSING
    try:
        acquire(lock_path(stage_dir))
    except LockBusy as busy:
        raise StageBusy(f"{stage_dir}: being run by {busy.holder} (it holds {lock_path(stage_dir)}); migrate when it is done") from None
    try:
        if is_current(stage_dir, state, config, inputs):
            return CURRENT
        if state.get("hash") not in fingerprints(earlier_configs(stage_dir.parent, [config, *earlier]), inputs):
            return UNRECOGNISED
        write_json(stage_dir / MARKER, state | {"hash": stage_hash(stage_dir, config, inputs), "config": config})
        return MIGRATED
    finally:
        release(lock_path(stage_dir))


def rekey_pointers(run_dir: Path) -> list[str]:
    """Key each shared training's pointer (``same_as.json``) by :func:`training_key` where it holds
    the key an older trice gave its twin (the config with the fields :func:`first_rule` hashed at
    their defaults filled in); returns the stages rewritten. Run after the stages are migrated: the
    twin must be current."""
    rewritten = []
    for stage_dir in sorted(run_dir.glob(train_stage("*"))):
        pointer = stage_dir / SAME_AS
        if not pointer.is_file():
            continue
        recorded = read_json(pointer)
        theirs = trained_sibling(run_dir / recorded["same_as"])
        if theirs is None or recorded["key"] == training_key(theirs):
            continue
        if recorded["key"] == training_key(with_hashed_defaults(SFTConfig, theirs)):
            write_json(pointer, recorded | {"key": training_key(theirs)})
            rewritten.append(stage_dir.name)
    return rewritten


def migrate_run(plan: Plan) -> dict[str, Any]:
    """Migrate every stage of ``plan``'s run directory (see the module docstring); returns each
    stage's verdict and the pointers keyed anew."""
    run_dir = plan.run_dir
    if run_format(run_dir) is None:
        raise ConfigError(f"{run_dir}: no trice run here (nothing to migrate)")
    earlier_plans = [replace(plan, fields_of=rule) for rule in EARLIER_RULES]
    stages = {}
    for name in plan.stages:
        config, inputs, _ = stage_specs.stage(plan, name)
        earlier = [stage_specs.stage(p, name)[0] for p in earlier_plans]
        stages[name] = migrate_stage(plan.layout.stage(name), config, earlier, [Path(p) for p in inputs])
    pointers = rekey_pointers(run_dir)
    write_json(run_dir / RUN_MARKER, {"format": RUN_FORMAT})
    return {"stages": stages, "pointers rekeyed": pointers}
