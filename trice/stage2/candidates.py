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
(:data:`trice.core.prompts.FEW_SHOT_PRESETS`, e.g. ``math``: three alpaca-formatted examples that always call the
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
adapter share one load). A source whose settings changed since its part was written starts over
(an adapter or responses file counts by its content, not by the path that names it).
Finally the parts are merged into ``output`` (atomically): per question ``{id, dataset, task,
question, answers, responses: [gold, ...], sources: [names], errors: [null or message, ...]}``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trice.core.schema import EXAMPLE_FIELDS, Example, sample
from trice.generation import models
from trice.generation.adapters import adapter_files
from trice.generation.decode import generate_responses
from trice.responses.generate import task_stop_rule
from trice.responses.backends import offering_task_tool
from trice.generation.remote import EndpointError, OpenAIEndpoint, Prompt
from trice.generation.stopping import StopRule
from trice.core.templates import TEMPLATES
from trice.stage2.candidate_sources import EndpointSource, ModelSource, ResponsesSource, Source, parse_sources
from trice.tasks import prompt_tools
from trice.core.prompts import few_shot_prefix, task_prompt
from trice.core.native import PARSERS
from trice.core.call_format import AUTO, NATIVE_FORMAT, TEXT, CallFormat, call_format_field, check_call_format, tool_parser_field
from trice.generation.models import call_format_of
from trice.utils.config import ConfigError
from trice.utils.fingerprint import fingerprint
from trice.utils.io import DataError, JsonlAppender, load_partial, read_json, read_jsonl, write_json, write_jsonl
from trice.utils.outputs import OVERWRITE_HELP, claim_output, holding_output

log = logging.getLogger(__name__)

D_TOOL_FIELDS = {**EXAMPLE_FIELDS, "output": str}
ENDPOINT_CHUNK = 32  # requests per appended chunk: what a kill can lose of an endpoint source (uncached)


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
        default_factory=list, metadata={"help": "YAML only (--config): one mapping per source, the gold one first; see trice.stage2.candidates."}
    )
    call_format: str = call_format_field()
    tool_parser: str = tool_parser_field()
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})

    def validate(self) -> None:
        if self.template not in TEMPLATES:
            raise ValueError(f"template: unknown {self.template!r}; choose one of {', '.join(TEMPLATES)}")
        check_call_format(self.call_format, self.tool_parser, self.template)
        if self.n_questions is not None and self.n_questions < 1:
            raise ValueError(f"n_questions: must be >= 1 or unset, got {self.n_questions}")
        if not self.sources:
            raise ValueError("sources: none given; list them in the YAML of --config, the gold source first")
        sources = parse_sources(self.sources)
        if self.call_format == NATIVE_FORMAT:
            if self.tool_parser == AUTO:  # its sources may be several models: no one chat template to read it from
                raise ValueError(f"tool_parser: name the parser of the sources' calls ({', '.join(PARSERS)}); auto needs one model")
            _check_native_sources(sources)


def _check_native_sources(sources: Sequence[Source]) -> None:
    """Refuse the sources that prompt in the paper's text call format: a few-shot prefix (its worked
    examples are alpaca prompts answered ``calculator(...)``) and an endpoint not offered the tool
    (``tools: true`` makes the server write native calls, returned as hermes text); their calls
    would be judged in a format they were never asked to write."""
    for source in sources:
        if isinstance(source, ModelSource) and source.few_shot:
            raise ValueError(f"sources: {source.name!r}: few_shot {source.few_shot!r} has worked examples in the paper's text call format, "
                             "which a call_format native run cannot use")  # fmt: skip
        if isinstance(source, EndpointSource) and not source.tools:
            raise ValueError(f"sources: {source.name!r}: an endpoint source is prompted in the paper's text call format unless "
                             "offered the tool (tools: true, mode: chat), which a call_format native run needs")  # fmt: skip


Writer = Callable[[Sequence[int], Sequence[dict]], None]
"""``write(indices, results)``: results (``{response}`` or ``{response, error}``) for examples[i] of each index."""
Runner = Callable[[list[Example], set[int], Writer], None]
"""``run(examples, done, write)``: make the results of the examples whose index is not in ``done``."""


LOCATIONS = ("adapter", "path")
"""Settings that name a file whose content the settings also hash (``adapter_sha256``, ``sha256``):
where the file lies does not change the responses, so the same run reached as a relative or an
absolute directory, or moved, keeps its parts."""


def same_source(recorded: dict[str, Any], settings: dict[str, Any]) -> bool:
    """Whether a part recorded under ``recorded`` is what ``settings`` would make (file locations aside)."""

    def located(s: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in s.items() if k not in LOCATIONS}

    return located(recorded) == located(settings)


def _part(path: Path, settings: dict[str, Any], examples: Sequence[Example], run: Runner) -> dict[str, dict]:
    """One source's rows by id, making those missing (or failed) with ``run`` and appending them to ``path``."""
    recorded = path.with_suffix(".source.json")
    if path.exists() and (not recorded.is_file() or not same_source(read_json(recorded), settings)):
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


def _model_runner(source: ModelSource, load: Callable[[], tuple[Any, Any]], template: str, seed: int, calls: CallFormat = TEXT) -> Runner:
    """Batches and per-batch seeds over all the examples (:func:`trice.generation.decode.generate_responses`),
    so a resumed source makes exactly the responses an uninterrupted one would. ``calls``: the format
    the model is prompted to call its tool in (native: the prompts offer the tool's schema)."""

    def run(examples: list[Example], done: set[int], write: Writer) -> None:
        model, tokenizer = load()
        prompts = [
            few_shot_prefix(source.few_shot, e.task) + task_prompt(e.task, e.question, template, tokenizer, prompt_tools(e.task, calls.native))
            for e in examples
        ]
        generate_responses(
            model,
            tokenizer,
            prompts,
            source.batch_size,
            desc=source.name,
            on_batch=lambda indices, texts: write(indices, [{"response": t} for t in texts]),
            done=done,
            seed=seed,
            stops=[task_stop_rule(e.task, calls) for e in examples] if source.stop_after_call else None,
            **source.generate_config(template, seed).generation_kwargs(),
        )

    return run


def _endpoint_result(answer: str | EndpointError, rule: StopRule) -> dict[str, str]:
    if isinstance(answer, EndpointError):
        return {"response": "", "error": f"{answer.kind}: {answer}"}
    return {"response": rule.finish(answer)}


def _endpoint_prompt(source: EndpointSource, example: Example) -> Prompt:
    """The source's prompt of ``example``: its task prompt after the few-shot prefix, offering the
    task's tool when the source says ``tools``."""
    text = few_shot_prefix(source.few_shot, example.task) + task_prompt(example.task, example.question)
    return offering_task_tool(text, example.task) if source.tools else text


def _endpoint_runner(source: EndpointSource) -> Runner:
    def run(examples: list[Example], done: set[int], write: Writer) -> None:
        endpoint = OpenAIEndpoint(source)
        todo = [i for i in range(len(examples)) if i not in done]
        prompts = {i: _endpoint_prompt(source, examples[i]) for i in todo}
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
    folder = parts_dir(config.output)
    folder.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple, list[Source]] = {}
    for source in sources[1:]:
        groups.setdefault(_load_key(source), []).append(source)
    parts: dict[str, dict[str, dict]] = {}
    calls = call_format_of(config)
    native = {"call_format": config.call_format, "tool_parser": calls.parser} if calls.native else {}  # none: text parts stay reusable
    for group in groups.values():
        first = group[0]  # one loader per group, so its sources share one load (made when first needed)
        load = functools.cache(functools.partial(models.load_model, first.model, first.adapter)) if isinstance(first, ModelSource) else None
        for source in group:
            if isinstance(source, ModelSource):
                seed = config.seed if source.seed is None else source.seed
                run = _model_runner(source, load, config.template, seed, calls)
                settings = source.settings() | {"template": config.template, "seed": seed} | native | _made_from(source, examples)
            elif isinstance(source, ResponsesSource):
                run, settings = _responses_runner(source), source.settings()
            else:
                run, settings = _endpoint_runner(source), source.settings()
            parts[source.name] = rows = _part(folder / f"{source.name}.jsonl", settings, examples, run)
            failed = [rows[e.id]["error"] for e in examples if "error" in rows[e.id]]
            if failed:
                log.warning(
                    "source %s: %d of %d requests failed (first: %s); their responses are empty (no prediction) and a rerun tries them again",
                    source.name,
                    len(failed),
                    len(examples),
                    failed[0],
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


@holding_output
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
