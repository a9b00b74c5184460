"""Generation for a file of examples, resumable by example id: what ``trice generate`` and the stages run.

:func:`generate_for_examples` runs the backend that ``GenerateConfig.backend`` names (local
transformers, vLLM, an OpenAI-compatible server; see :mod:`trice.responses.backends`) on every
example's task prompt. With ``stop_after_call`` a row stops at the end of its first call of its
task's tool and the text after it is cut (:mod:`trice.generation.stopping`). Results are appended
one line per finished example; a rerun after a kill skips the ids already written. A request an
endpoint could not answer is written with an empty response and its ``error`` (judged as no
prediction) and is tried again on the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trice.core.schema import EXAMPLE_FIELDS, Example
from trice.responses.backends import load_backend
from trice.responses.config import GenerateConfig
from trice.generation.decision import CallOpening
from trice.generation.stopping import StopRule
from trice.tasks import PER_ROW, get_task
from trice.tasks.inputs import check_row_task, read_input
from trice.core.call_format import TEXT, CallFormat
from trice.generation.models import call_format_of
from trice.utils.io import JsonlAppender, Partial, load_partial, read_partial, write_jsonl
from trice.utils.outputs import claim_output, holding_output, writing
from trice.utils.patience import EndpointError

log = logging.getLogger(__name__)

__all__ = ["GenerateConfig", "generate_for_examples", "run_generate", "stop_rules", "task_stop_rule"]


def task_stop_rule(task: str, calls: CallFormat = TEXT) -> StopRule:
    """The rule of a ``task``'s responses: over after the first complete call of the task's tool in
    the ``calls`` format, the only call its judge reads (so the cut never changes a judgement)."""
    return StopRule(tools=(get_task(task).tool,), calls=calls)


def stop_rules(config: GenerateConfig, examples: Sequence[Example]) -> list[StopRule] | None:
    """The per-example :class:`StopRule` of ``config`` (None: ``stop_after_call`` is off)."""
    if not config.stop_after_call:
        return None
    calls = call_format_of(config)
    return [task_stop_rule(e.task, calls) for e in examples]


def result_row(example: Example, result: str | EndpointError) -> dict:
    """The output row of one example: its response (with the P(call) its first token was decided
    with, where the backend read it: :mod:`trice.generation.decision`), or for a failed request an
    empty one and the error."""
    if isinstance(result, EndpointError):
        return example.to_dict() | {"response": "", "error": f"{result.kind}: {result}"}
    p_call = getattr(result, "p_call", None)
    return example.to_dict() | {"response": str(result)} | ({} if p_call is None else {"p_call": p_call})


def call_openings(config: GenerateConfig, examples: Sequence[Example]) -> list[CallOpening]:
    """What opens each example's call: its task's tool, in the run's call format."""
    calls = call_format_of(config)
    return [CallOpening(get_task(e.task).tool, calls) for e in examples]


def generate_for_examples(
    examples: Sequence[Example],
    output: str | Path,
    model: Any | None,
    tokenizer: Any | None,
    config: GenerateConfig,
    desc: str = "generate",
    backend: Any | None = None,
    claimed: Partial | None = None,
) -> list[dict]:
    """Generate a response per example, appending to ``output``; done ids are skipped on rerun.

    ``model``/``tokenizer`` are an already loaded transformers model for the transformers backend;
    pass None and ``config.backend`` is loaded here, only when some example is left to do. A loaded
    ``backend`` (:func:`trice.responses.backends.load_backend`) may be passed instead, to reuse it across calls.
    The backend sees every example's prompt and which are done, so the local backend forms the
    same batches (and per-batch seeds) as an uninterrupted run (:func:`trice.generation.decode.generate_responses`).
    Rows whose request failed (an endpoint's ``error``) do not count as done: they are tried again,
    and the file is then rewritten with one row per id.

    ``claimed``: what :func:`trice.utils.outputs.claim_output` found in a user-named ``output`` (None: a
    stage's own file, read as it is). A torn last line is cut only once work resumes.

    Returns all rows (old and new) in the order of ``examples``.

    One writer per output: the output's lock is held throughout (:func:`trice.utils.outputs.writing`),
    so a second ``trice generate``, or one aimed at a running stage's responses, is refused; a file
    that holds an id twice all the same (two writers of an earlier version) is rewritten with one
    row per id.
    """
    with writing(output):
        partial = read_partial(output) if claimed is None else claimed
        failed = {key for key, row in partial.rows.items() if row.get("error")}
        done = {key: row for key, row in partial.rows.items() if key not in failed}
        finished = {i for i, e in enumerate(examples) if e.id in done}
        if done:
            log.info("%s: %d of %d already done, resuming", output, len(finished), len(examples))
        if len(finished) < len(examples):
            backend = backend if backend is not None else load_backend(config, model, tokenizer)
            _generate_missing(examples, output, backend, config, desc, partial.keep_bytes if claimed is not None else None, done, finished)
        if failed & {e.id for e in examples} or partial.duplicates:  # retried or repeated ids: keep the newest row of each
            if partial.duplicates:
                log.warning("%s: %d rows repeated an id already there; rewritten with one row per id", output, partial.duplicates)
            write_jsonl(output, list(load_partial(output).values()))
    return [done[e.id] for e in examples]


def _generate_missing(
    examples: Sequence[Example],
    output: str | Path,
    backend: Any,
    config: GenerateConfig,
    desc: str,
    keep_bytes: int | None,
    done: dict[Any, dict],
    finished: set[int],
) -> None:
    """Generate the examples not ``finished``, appending each row to ``output`` and to ``done``."""
    prompts = [backend.prompt(e.task, e.question) for e in examples]
    errors: list[str] = []
    with JsonlAppender(output, keep_bytes) as sink:

        def write(indices: list[int], results: list[str | EndpointError]) -> None:
            for i, result in zip(indices, results):
                if i in finished:  # a sampled batch made whole again: this row is already written
                    continue
                row = result_row(examples[i], result)
                if "error" in row:
                    errors.append(row["error"])
                done[row["id"]] = row
                sink.write(row)

        openings = call_openings(config, examples)
        backend.generate(prompts, desc=desc, on_batch=write, done=finished, stops=stop_rules(config, examples), openings=openings)
    if errors:
        log.warning(
            "%s: %d of %d requests failed (first: %s); rerun to try them again",
            output, len(errors), len(examples) - len(finished), errors[0],
        )  # fmt: skip


@holding_output
def run_generate(config: GenerateConfig) -> list[dict]:
    """``trice generate``: load the configured backend once (only if work is left), generate for the input file."""
    config.validate()
    check = lambda row, path, line: check_row_task(row, PER_ROW, path, line)  # noqa: E731  (before any model loads)
    examples = [Example.from_dict(row, config.input) for row in read_input(config.input, EXAMPLE_FIELDS, check=check)]
    claimed = claim_output(config.output, inputs=[config.input], ids={e.id for e in examples}, fields=("response",), overwrite=config.overwrite)
    return generate_for_examples(examples, config.output, None, None, config, claimed=claimed)
