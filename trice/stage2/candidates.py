"""Stage II candidate collection: k responses per D_tool question, from several sources (``trice candidates``).

The paper scores k = 5 candidates per question: the D_tool output (the pseudo-expert "gold"
response) and the responses of other models, some prompted to always use the tool. Here each
candidate comes from a *source*, one entry of the config's ``sources`` list:

* ``{name, kind: gold}`` -- the D_tool ``output``; always the first source, so it is the first
  response, as ``trice score`` expects;
* ``{name, kind: model, model, adapter?, do_sample, temperature, top_p, max_new_tokens, batch_size,
  few_shot?, stop_after_call?}`` -- a local causal LM (with an optional LoRA adapter, e.g. a stage-I checkpoint);
* ``{name, kind: responses, path}`` -- responses made earlier, by id (e.g. the probe of the untuned
  model, which is the greedy base-model candidate);
* ``{name, kind: endpoint, base_url, model, ...EndpointConfig keys, few_shot?, stop_after_call?}`` -- an
  OpenAI-compatible server (ChatGPT-like sources). Its prompt is the alpaca prompt (in chat mode
  sent as the user message, the server applying its own chat template). A request that fails
  after its retries gives an empty response with an ``error``, which scoring reads as "no
  prediction", so a dead server costs its candidates, not the job.

``few_shot`` is a prefix of worked examples put before the prompt: the name of a preset
(:data:`trice.tasks.prompts.FEW_SHOT_PRESETS`, e.g. ``math``: three alpaca-formatted examples that always call the
calculator, as the paper's ChatGPT/InstructGPT sources were prompted) or the literal prefix text.
Its tokens are encoded once per source, not once per question (:mod:`trice.generation.prefix_cache`).
``stop_after_call`` ends each response at its first call of the task's tool (:mod:`trice.generation.stopping`):
a few-shot model goes on writing the next worked example after its call otherwise, text that
stage II would train on.

The teacher (the paper's ChatGPT/InstructGPT role, here a larger local model than the policy,
few-shot prompted to always call the tool; :func:`teacher_source`)::

    - {name: teacher, kind: model, model: qwen2.5-coder-1.5b-instruct, few_shot: math,
       stop_after_call: true, max_new_tokens: 32, batch_size: 8}

A model source's ``model`` may name any model (alias, directory, hub name); in ``trice run`` it
defaults to the recipe's, the policy.

The paper-like recipe (k = 5), as ``trice candidates --config candidates.yaml``::

    input: runs/x/label/trice.jsonl
    output: runs/x/candidates.jsonl
    sources:
      - {name: gold, kind: gold}
      - {name: base, kind: model, model: smollm2-135m-instruct}
      - {name: stage1-early, kind: model, model: smollm2-135m-instruct, adapter: runs/x/train/checkpoints/checkpoint-50}
      - {name: stage1-last, kind: model, model: smollm2-135m-instruct, adapter: runs/x/train/adapter}
      - {name: tool-always, kind: model, model: smollm2-135m-instruct, few_shot: math, stop_after_call: true}

Each source's responses are appended to ``<output>.parts/<name>.jsonl`` as they are made, so a
killed run loses at most the batch in flight; a rerun skips the ids a source has finished (failed
endpoint requests are tried again) and loads each model at most once (sources sharing a model and
adapter share one load). A source whose settings changed since its part was written starts over.
Finally the parts are merged into ``output`` (atomically): per question ``{id, dataset, task,
question, answers, responses: [gold, ...], sources: [names], errors: [null or message, ...]}``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trice.generation.adapters import adapter_files
from trice.utils.config import ConfigError, build_config
from trice.data.schema import EXAMPLE_FIELDS, Example, sample
from trice.generation.generate import GenerateConfig, generate_responses
from trice.utils.io import DataError, JsonlAppender, load_partial, read_json, read_jsonl, write_json, write_jsonl
from trice.generation.models import DEFAULT_MODEL
from trice.utils.outputs import OVERWRITE_HELP, claim_output
from trice.tasks.prompts import TEMPLATES, few_shot_prefix, task_prompt
from trice.generation.remote import EndpointConfig, EndpointError, OpenAIEndpoint
from trice.pipeline.stages import fingerprint
from trice.generation.stopping import StopRule, task_stop_rule

log = logging.getLogger(__name__)

D_TOOL_FIELDS = {**EXAMPLE_FIELDS, "output": str}
ENDPOINT_CHUNK = 32  # requests per appended chunk: what a kill can lose of an endpoint source (uncached)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a source name is also a file name


TEACHER_MODEL = "qwen2.5-coder-1.5b-instruct"
"""The default teacher: a coder model several times the policy's size, which writes calls well."""


def teacher_source(model: str = TEACHER_MODEL, few_shot: str = "math", name: str = "teacher") -> dict[str, Any]:
    """The source entry of a local teacher: ``model`` (not the policy) few-shot prompted to always
    call the tool, greedy, stopped at the end of its call. 32 new tokens hold any call of the
    training questions' size; a batch of 8 suits a 1.5B model on a CPU."""
    return {"name": name, "kind": "model", "model": model, "few_shot": few_shot, "stop_after_call": True, "max_new_tokens": 32, "batch_size": 8}


STOP_HELP = (
    "Cut each response just after its first call of the question's task tool (the local model also stops generating "
    "there): what follows is never judged, and stage II would train on it. On for tool-always and teacher sources."
)


@dataclass
class GoldSource:
    """The D_tool output (the pseudo-expert response): always the first candidate."""

    name: str = field(default="gold", metadata={"help": "Source name (in the output's sources list)."})
    kind: str = field(default="gold", metadata={"help": "gold"})

    def settings(self) -> dict[str, Any]:
        return {}


@dataclass
class ResponsesSource:
    """Responses made earlier, read by id from a JSONL file (``id``, ``response``): another
    system's generations, or the pipeline's probe of the untuned model, which already is the
    greedy base-model candidate and need not be generated twice."""

    name: str = field(default="", metadata={"help": "Source name: also the file name of its part."})
    kind: str = field(default="responses", metadata={"help": "responses"})
    path: str = field(default="", metadata={"help": "JSONL with id and response for every D_tool question."})

    def validate(self) -> None:
        if not self.path:
            raise ValueError("path: required (a JSONL with id and response per question)")

    def settings(self) -> dict[str, Any]:
        """The file's content decides the responses, not its name."""
        return {"path": self.path, "sha256": hashlib.sha256(Path(self.path).read_bytes()).hexdigest()}


@dataclass
class ModelSource:
    """A local causal LM, optionally with a LoRA adapter (a stage-I checkpoint, say)."""

    name: str = field(default="", metadata={"help": "Source name: also the file name of its part."})
    kind: str = field(default="model", metadata={"help": "model"})
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "Hub name, local directory or embedded alias."})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter directory to apply."})
    do_sample: bool = field(default=False, metadata={"help": "Sample instead of greedy decoding."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (with do_sample)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass (with do_sample)."})
    max_new_tokens: int = field(default=128, metadata={"help": "New tokens per response."})
    batch_size: int = field(default=16, metadata={"help": "Prompts per generate() call."})
    few_shot: str | None = field(default=None, metadata={"help": "Few-shot prefix: a preset name (math, qa, lama, mlqa; task: each question's own task's) or the text."})
    seed: int | None = field(
        default=None,
        metadata={"help": "Sampling seed of this source (unset: the candidates' seed). Several sampled sources of one model draw different samples only with different seeds."},
    )
    stop_after_call: bool = field(default=False, metadata={"help": STOP_HELP})

    def generate_config(self, template: str, seed: int) -> GenerateConfig:
        """The generation settings, as ``trice generate`` would take them."""
        return GenerateConfig(
            model=self.model,
            adapter=self.adapter,
            template=template,
            batch_size=self.batch_size,
            max_new_tokens=self.max_new_tokens,
            do_sample=self.do_sample,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=seed,
            stop_after_call=self.stop_after_call,
        )

    def validate(self) -> None:
        self.generate_config("alpaca", 0).validate()

    def settings(self) -> dict[str, Any]:
        """What decides the responses (the batch size barely does, so changing it keeps the part); the
        seed in effect is added by the caller, which knows the default."""
        settings = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("name", "batch_size", "seed")}
        if not self.stop_after_call:  # as parts written before the option recorded them
            del settings["stop_after_call"]
        return settings


@dataclass
class EndpointSource(EndpointConfig):
    """An OpenAI-compatible server: the :class:`~trice.generation.remote.EndpointConfig` keys plus a name and few_shot."""

    name: str = field(default="", metadata={"help": "Source name: also the file name of its part."})
    kind: str = field(default="endpoint", metadata={"help": "endpoint"})
    few_shot: str | None = field(default=None, metadata={"help": "Few-shot prefix: a preset name (math, qa, lama, mlqa; task: each question's own task's) or the text."})
    stop_after_call: bool = field(default=False, metadata={"help": STOP_HELP})

    def settings(self) -> dict[str, Any]:
        """What decides the answers; like the answer cache, not the server address or the patience."""
        keys = ("model", "mode", "max_tokens", "temperature", "top_p", "stop", "few_shot") + (("stop_after_call",) if self.stop_after_call else ())
        return {k: getattr(self, k) for k in keys}


Source = GoldSource | ModelSource | EndpointSource | ResponsesSource
SOURCE_KINDS: dict[str, type] = {"gold": GoldSource, "model": ModelSource, "endpoint": EndpointSource, "responses": ResponsesSource}


def parse_sources(entries: Sequence[Any]) -> list[Source]:
    """Each entry checked against its kind's dataclass; errors are located as ``sources[i]: ...``."""
    sources: list[Source] = []
    for i, entry in enumerate(entries):
        where = f"sources[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping of keys, got {entry!r}")
        kind = entry.get("kind")
        if kind not in SOURCE_KINDS:
            raise ConfigError(f"{where}: key 'kind': expected one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
        source = build_config(SOURCE_KINDS[kind], entry, where)
        if not _NAME.match(source.name):
            raise ConfigError(f"{where}: key 'name': {source.name!r} is not a plain file name (letters, digits, . _ -)")
        if (i == 0) != (kind == "gold"):
            raise ConfigError(f"{where}: the gold source (kind: gold) must come first, and only once")
        if source.name in {s.name for s in sources}:
            raise ConfigError(f"{where}: key 'name': {source.name!r} is used by another source")
        sources.append(source)
    return sources


@dataclass
class CandidatesConfig:
    """Collect k candidate responses per D_tool question (the ``trice candidates`` flags).

    ``sources`` can only be given in the YAML of ``--config`` (see :mod:`trice.stage2.candidates`).
    """

    input: str = field(default="", metadata={"help": "D_tool JSONL from `trice label` (id, dataset, task, question, answers, output)."})
    output: str = field(default="", metadata={"help": "Candidates JSONL to write; responses go to <output>.parts/<name>.jsonl first."})
    template: str = field(default="alpaca", metadata={"help": "Prompt template of the model sources: alpaca or chat."})
    seed: int = field(default=0, metadata={"help": "Seed for sampling model sources and for choosing n_questions."})
    n_questions: int | None = field(
        default=None,
        metadata={"help": "Collect for a seeded sample of this many D_tool questions (all when unset): stage II's cost is k generations per question."},
    )
    sources: list[dict] = field(
        default_factory=list,
        metadata={"help": "YAML only (--config): one mapping per source, the gold one first; see trice.stage2.candidates."},
    )
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})

    def validate(self) -> None:
        if self.template not in TEMPLATES:
            raise ValueError(f"template: unknown {self.template!r}; choose one of {', '.join(TEMPLATES)}")
        if self.n_questions is not None and self.n_questions < 1:
            raise ValueError(f"n_questions: must be >= 1 or unset, got {self.n_questions}")
        if not self.sources:
            raise ValueError("sources: none given; list them in the YAML of --config, the gold source first")
        parse_sources(self.sources)


Writer = Callable[[Sequence[int], Sequence[dict]], None]
"""``write(indices, results)``: results (``{response}`` or ``{response, error}``) for examples[i] of each index."""
Runner = Callable[[list[Example], set[int], Writer], None]
"""``run(examples, done, write)``: make the results of the examples whose index is not in ``done``."""


def _part(path: Path, settings: dict[str, Any], examples: Sequence[Example], run: Runner) -> dict[str, dict]:
    """One source's rows by id, making those missing (or failed) with ``run`` and appending them to ``path``."""
    recorded = path.with_suffix(".source.json")
    if path.exists() and (not recorded.is_file() or read_json(recorded) != settings):
        log.warning("%s: the source's settings changed since it was written; starting it over", path)
        path.unlink()
    write_json(recorded, settings)
    done = {key: row for key, row in load_partial(path).items() if "error" not in row}
    finished = {i for i, e in enumerate(examples) if e.id in done}
    if 0 < len(finished) < len(examples):
        log.info("%s: %d of %d already done, resuming", path, len(finished), len(examples))
    if len(finished) < len(examples):
        with JsonlAppender(path) as sink:

            def write(indices: Sequence[int], results: Sequence[dict]) -> None:
                for i, result in zip(indices, results):
                    done[examples[i].id] = row = {"id": examples[i].id, **result}
                    sink.write(row)

            run(list(examples), finished, write)
    return done


def _model_runner(source: ModelSource, load: Callable[[], tuple[Any, Any]], template: str, seed: int) -> Runner:
    """Batches and per-batch seeds over all the examples (:func:`trice.generation.generate.generate_responses`),
    so a resumed source makes exactly the responses an uninterrupted one would."""

    def run(examples: list[Example], done: set[int], write: Writer) -> None:
        model, tokenizer = load()
        prompts = [few_shot_prefix(source.few_shot, e.task) + task_prompt(e.task, e.question, template, tokenizer) for e in examples]
        generate_responses(
            model,
            tokenizer,
            prompts,
            source.batch_size,
            desc=source.name,
            on_batch=lambda indices, texts: write(indices, [{"response": t} for t in texts]),
            done=done,
            seed=seed,
            stops=[task_stop_rule(e.task) for e in examples] if source.stop_after_call else None,
            **source.generate_config(template, seed).generation_kwargs(),
        )

    return run


def _endpoint_result(answer: str | EndpointError, rule: StopRule) -> dict[str, str]:
    if isinstance(answer, EndpointError):
        return {"response": "", "error": f"{answer.kind}: {answer}"}
    return {"response": rule.finish(answer)}


def _endpoint_runner(source: EndpointSource) -> Runner:
    def run(examples: list[Example], done: set[int], write: Writer) -> None:
        endpoint = OpenAIEndpoint(source)
        todo = [i for i in range(len(examples)) if i not in done]
        prompts = {i: few_shot_prefix(source.few_shot, examples[i].task) + task_prompt(examples[i].task, examples[i].question) for i in todo}
        for start in range(0, len(todo), ENDPOINT_CHUNK):
            indices = todo[start : start + ENDPOINT_CHUNK]
            answers = endpoint.complete_many([prompts[i] for i in indices], desc=source.name)
            rules = [task_stop_rule(examples[i].task) if source.stop_after_call else StopRule() for i in indices]
            write(indices, [_endpoint_result(a, rule) for a, rule in zip(answers, rules)])

    return run


def _responses_runner(source: ResponsesSource) -> Runner:
    def run(examples: list[Example], done: set[int], write: Writer) -> None:
        given = {row["id"]: row["response"] for row in read_jsonl(source.path, {"id": str, "response": str})}
        todo = [i for i in range(len(examples)) if i not in done]
        missing = [examples[i].id for i in todo if examples[i].id not in given]
        if missing:
            raise DataError(source.path, None, "id", f"no response for {len(missing)} D_tool questions (first: {missing[0]})")
        write(todo, [{"response": given[examples[i].id]} for i in todo])

    return run


def _load_key(source: Source) -> tuple:
    """Sources with the same key share one loaded model."""
    if isinstance(source, ModelSource):
        return ("model", source.model, source.adapter)
    return ("endpoint", source.name)


def _made_from(source: ModelSource, examples: Sequence[Example]) -> dict[str, str]:
    """What a model source's part depends on beyond its settings: the questions, in order (a batch's
    padding and sampling seed depend on its neighbours), and the adapter's weights (a retrained
    stage I keeps its path). Recorded with the part, so a part kept from an earlier run is reused
    only where it is exactly what this run would make."""
    made = {"examples": fingerprint([[e.id, e.task, e.question] for e in examples], [])}
    if source.adapter:
        made["adapter_sha256"] = fingerprint({}, adapter_files(Path(source.adapter)))
    return made


def parts_dir(output: str | Path) -> Path:
    """Where the sources' responses for ``output`` are appended as they are made, one file per source."""
    return Path(f"{output}.parts")


def _collect_parts(config: CandidatesConfig, sources: Sequence[Source], examples: Sequence[Example]) -> dict[str, dict[str, dict]]:
    """Every non-gold source's rows by id, grouped so each model is loaded at most once (and freed after)."""
    from trice.generation.models import load_model

    folder = parts_dir(config.output)
    folder.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple, list[Source]] = {}
    for source in sources[1:]:
        groups.setdefault(_load_key(source), []).append(source)
    parts: dict[str, dict[str, dict]] = {}
    for group in groups.values():
        first = group[0]  # one loader per group, so its sources share one load (made when first needed)
        load = functools.cache(lambda: load_model(first.model, first.adapter)) if isinstance(first, ModelSource) else None
        for source in group:
            if isinstance(source, ModelSource):
                seed = config.seed if source.seed is None else source.seed
                run = _model_runner(source, load, config.template, seed)
                settings = source.settings() | {"template": config.template, "seed": seed} | _made_from(source, examples)
            elif isinstance(source, ResponsesSource):
                run, settings = _responses_runner(source), source.settings()
            else:
                run, settings = _endpoint_runner(source), source.settings()
            parts[source.name] = rows = _part(folder / f"{source.name}.jsonl", settings, examples, run)
            failed = [rows[e.id]["error"] for e in examples if "error" in rows[e.id]]
            if failed:
                log.warning(
                    "source %s: %d of %d requests failed (first: %s); their responses are empty (no prediction) "
                    "and a rerun tries them again", source.name, len(failed), len(examples), failed[0],
                )
    return parts


def merge_candidates(rows: Sequence[dict], sources: Sequence[Source], parts: dict[str, dict[str, dict]]) -> list[dict]:
    """One candidates row per D_tool row: the gold output first, then each source's response in order."""
    merged = []
    for row in rows:
        made = [parts[s.name][row["id"]] for s in sources[1:]]
        merged.append(
            {key: row[key] for key in EXAMPLE_FIELDS}
            | {
                "responses": [row["output"], *(m["response"] for m in made)],
                "sources": [s.name for s in sources],
                "errors": [None, *(m.get("error") for m in made)],
            }
        )
    return merged


def collect_candidates(config: CandidatesConfig) -> Path:
    """``trice candidates``: make every source's responses (resumably), merge them into ``config.output``."""
    config.validate()
    if not config.input or not config.output:
        raise ConfigError("trice candidates: both input and output are required")
    sources = parse_sources(config.sources)
    rows = read_jsonl(config.input, D_TOOL_FIELDS, unique="id")
    if config.n_questions is not None:
        keep = {e.id for e in sample([Example.from_dict(row, config.input) for row in rows], config.n_questions, config.seed)}
        rows = [row for row in rows if row["id"] in keep]
    examples = [Example.from_dict(row, config.input) for row in rows]
    ids = {e.id for e in examples}
    claim_output(config.output, inputs=[config.input], ids=ids, fields=("responses", "sources"), overwrite=config.overwrite)
    parts = _collect_parts(config, sources, examples)
    return write_jsonl(config.output, merge_candidates(rows, sources, parts))
