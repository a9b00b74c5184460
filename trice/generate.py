"""Batched generation for probing, candidates and evaluation, resumable by example id.

Prompts are sorted by length and batched with left padding, so a batch wastes little compute on
padding and every sequence's new tokens start at the same column. Results are appended one line per
finished example; a rerun after a kill skips the ids already written.

:func:`generate_for_examples` runs the backend that ``GenerateConfig.backend`` names (local
transformers, vLLM, an OpenAI-compatible server; see :mod:`trice.backends`). A request an endpoint
could not answer is written with an empty response and its ``error`` (judged as no prediction) and is
tried again on the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from trice.data.schema import EXAMPLE_FIELDS, Example
from trice.inputs import check_row_task, read_input
from trice.io import JsonlAppender, Partial, load_partial, write_jsonl
from trice.models import DEFAULT_MODEL
from trice.outputs import OVERWRITE_HELP, claim_output
from trice.prompts import task_prompt
from trice.tasks import PER_ROW

log = logging.getLogger(__name__)

# Where a base model trained on no particular template keeps going after its answer: cut there.
STOP_MARKERS = ("\n### Instruction", "\n### Input", "\n### Response", "\n\n\n")
BACKENDS = ("transformers", "vllm", "openai")
DTYPES = ("float32", "bfloat16", "float16")
ENDPOINT_MODES = ("completions", "chat")


@dataclass
class GenerateConfig:
    """How to generate responses for a file of examples (the ``trice generate`` flags)."""

    input: str = field(default="", metadata={"help": "JSONL of examples (id, dataset, task, question, answers)."})
    output: str = field(default="", metadata={"help": "JSONL to append responses to; ids already there are skipped."})
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "Hub name, local directory or embedded alias."})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter directory to apply to the model."})
    template: str = field(default="alpaca", metadata={"help": "Prompt template: alpaca (the paper's) or chat."})
    batch_size: int = field(default=16, metadata={"help": "Prompts per generate() call."})
    max_new_tokens: int = field(default=128, metadata={"help": "New tokens per response (the paper: 128)."})
    do_sample: bool = field(default=False, metadata={"help": "Sample instead of greedy decoding."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (with --do_sample)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass (with --do_sample)."})
    num_beams: int = field(default=1, metadata={"help": "Beam width (the paper: 4; 1 is greedy and much faster)."})
    repetition_penalty: float = field(default=1.0, metadata={"help": "Repetition penalty (the paper: 1.3)."})
    seed: int = field(default=0, metadata={"help": "Seed for sampling."})
    backend: str = field(
        default="transformers",
        metadata={
            "help": "Who generates: transformers (local, batched), vllm (GPU; pip install vllm) or openai "
            "(an OpenAI-compatible server at endpoint_url, e.g. `vllm serve` or llama.cpp)."
        },
    )
    dtype: str = field(default="float32", metadata={"help": f"Weights dtype of the local backends: {', '.join(DTYPES)} (bfloat16 on GPUs)."})
    vllm_gpu_memory_utilization: float = field(default=0.9, metadata={"help": "vllm: share of GPU memory for weights and KV cache, in (0, 1]."})
    vllm_tensor_parallel_size: int = field(default=1, metadata={"help": "vllm: GPUs one model is split over."})
    vllm_max_model_len: int = field(default=0, metadata={"help": "vllm: longest prompt+response in tokens; 0 takes the model's."})
    endpoint_url: str = field(default="http://127.0.0.1:8000/v1", metadata={"help": "openai: server URL up to and including /v1."})
    endpoint_model: str = field(default="", metadata={"help": "openai: model name the server serves; empty sends `model`."})
    endpoint_mode: str = field(
        default="completions",
        metadata={
            "help": "openai: completions sends the exact prompt text the local backends read; chat sends the conversation "
            "(the alpaca prompt, or with template chat the user turn) and the server applies its chat template."
        },
    )
    endpoint_api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "openai: environment variable holding the API key ('EMPTY' when unset)."})
    endpoint_timeout: float = field(default=60.0, metadata={"help": "openai: seconds to wait for the next bytes of an answer."})
    endpoint_max_retries: int = field(default=3, metadata={"help": "openai: retries of a transiently failed request."})
    endpoint_workers: int = field(default=8, metadata={"help": "openai: requests in flight at once."})
    endpoint_cache_dir: str | None = field(default=None, metadata={"help": "openai: directory caching greedy answers, so a rerun costs no requests."})
    read_max_new_tokens: int = field(
        default=32,
        metadata={"help": "New tokens of a second reading (qa: each WikiSearch passage; mlqa: the translated question), greedy; the metric reads the first 20 words."},
    )
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})

    # added after runs were made: while at their defaults they stay out of stage fingerprints (trice.config.to_dict)
    OMIT_AT_DEFAULT: ClassVar[tuple[str, ...]] = (
        "backend", "dtype", "vllm_gpu_memory_utilization", "vllm_tensor_parallel_size", "vllm_max_model_len",
        "endpoint_url", "endpoint_model", "endpoint_mode", "endpoint_api_key_env", "endpoint_timeout",
        "endpoint_max_retries", "endpoint_workers", "endpoint_cache_dir", "read_max_new_tokens", "overwrite",
    )  # fmt: skip

    def validate(self) -> None:
        for name in ("batch_size", "max_new_tokens", "num_beams", "vllm_tensor_parallel_size", "endpoint_workers", "read_max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.do_sample and self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {self.temperature}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend: unknown {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype: unknown {self.dtype!r}; choose one of {', '.join(DTYPES)}")
        if self.backend != "transformers" and self.num_beams != 1:
            raise ValueError(f"num_beams: the {self.backend} backend decodes without beams; set num_beams 1 (got {self.num_beams})")
        if not 0 < self.vllm_gpu_memory_utilization <= 1:
            raise ValueError(f"vllm_gpu_memory_utilization must be in (0, 1], got {self.vllm_gpu_memory_utilization}")
        if self.vllm_max_model_len < 0:
            raise ValueError(f"vllm_max_model_len must be >= 0, got {self.vllm_max_model_len}")
        if self.backend == "openai":
            self._validate_endpoint()

    def _validate_endpoint(self) -> None:
        if self.repetition_penalty != 1.0:
            raise ValueError(f"repetition_penalty: the OpenAI API has none; set 1.0 for the openai backend (got {self.repetition_penalty})")
        if self.adapter:
            raise ValueError(
                "adapter: the openai backend cannot apply a LoRA adapter; serve it (e.g. `vllm serve BASE --enable-lora "
                "--lora-modules NAME=ADAPTER_DIR`) and set endpoint_model NAME without adapter, or use backend vllm"
            )
        if self.endpoint_mode not in ENDPOINT_MODES:
            raise ValueError(f"endpoint_mode: unknown {self.endpoint_mode!r}; choose one of {', '.join(ENDPOINT_MODES)}")
        if not self.endpoint_url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint_url must start with http:// or https://, got {self.endpoint_url!r}")
        if self.endpoint_timeout <= 0:
            raise ValueError(f"endpoint_timeout must be > 0, got {self.endpoint_timeout}")
        if self.endpoint_max_retries < 0:
            raise ValueError(f"endpoint_max_retries must be >= 0, got {self.endpoint_max_retries}")

    def generation_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            max_new_tokens=self.max_new_tokens,
            do_sample=self.do_sample,
            num_beams=self.num_beams,
            repetition_penalty=self.repetition_penalty,
        )
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        return kwargs


def clean_response(text: str) -> str:
    """Cut a response at the first marker where the model starts a new prompt of its own."""
    cut = min((i for i in (text.find(m) for m in STOP_MARKERS) if i >= 0), default=len(text))
    return text[:cut].strip()


@torch.inference_mode()
def generate_batch(model: Any, tokenizer: Any, prompts: Sequence[str], **kwargs: Any) -> list[str]:
    """Responses for one batch of prompts (left padded), special tokens dropped."""
    tokenizer.padding_side = "left"
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
    enc = {k: v.to(model.device) for k, v in enc.items()}
    out = model.generate(**enc, pad_token_id=tokenizer.pad_token_id, **kwargs)
    new = out[:, enc["input_ids"].shape[1] :]
    return [clean_response(t) for t in tokenizer.batch_decode(new, skip_special_tokens=True)]


def generate_responses(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    batch_size: int = 16,
    desc: str = "generate",
    on_batch: Any = None,
    done: Collection[int] = (),
    seed: int | None = None,
    **kwargs: Any,
) -> list[str | None]:
    """Responses for all prompts in input order (None for a prompt skipped as ``done``).

    Batches are formed from the length-sorted prompts of the *whole* list, so a batch holds the same
    prompts however many were done before. A batch whose prompts are all in ``done`` is skipped.
    Greedy decoding makes just the missing prompts of a batch (a response does not depend on its
    batch mates); sampling makes the batch whole again, each batch drawing from its own generator
    state (``seed`` and the batch's position), so sampled responses are the same whether a run went
    through at once or was resumed after a kill. ``on_batch(indices, responses)`` is called after
    each batch made (used to append results as they come).
    """
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    done = set(done)
    whole = bool(kwargs.get("do_sample"))
    todo = [(b, idx if whole else [i for i in idx if i not in done]) for b, idx in enumerate(batches) if not done.issuperset(idx)]
    responses: list[str | None] = [None] * len(prompts)
    with tqdm(total=len(prompts), initial=len(prompts) - sum(len(idx) for _, idx in todo), desc=desc, unit="ex") as bar:
        for b, idx in todo:
            if seed is not None:
                torch.manual_seed(seed * 1_000_003 + b)
            batch = generate_batch(model, tokenizer, [prompts[i] for i in idx], **kwargs)
            for i, r in zip(idx, batch):
                responses[i] = r
            if on_batch is not None:
                on_batch(idx, batch)
            bar.update(len(idx))
    return responses


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
    ``backend`` (:func:`trice.backends.load_backend`) may be passed instead, to reuse it across calls.
    The backend sees every example's prompt and which are done, so the local backend forms the
    same batches (and per-batch seeds) as an uninterrupted run (:func:`generate_responses`).
    Rows whose request failed (an endpoint's ``error``) do not count as done: they are tried again,
    and the file is then rewritten with one row per id.

    ``claimed``: what :func:`trice.outputs.claim_output` found in a user-named ``output`` (None: a
    stage's own file, read as it is). A torn last line is cut only once work resumes.

    Returns all rows (old and new) in the order of ``examples``.
    """
    partial = load_partial(output) if claimed is None else claimed.rows
    failed = {key for key, row in partial.items() if row.get("error")}
    done = {key: row for key, row in partial.items() if key not in failed}
    finished = {i for i, e in enumerate(examples) if e.id in done}
    if done:
        log.info("%s: %d of %d already done, resuming", output, len(finished), len(examples))
    if len(finished) < len(examples):
        from trice.backends import load_backend
        from trice.remote import EndpointError

        backend = backend if backend is not None else load_backend(config, model, tokenizer)
        prompts = [backend.prompt(e.task, e.question) for e in examples]
        errors: list[str] = []
        with JsonlAppender(output, None if claimed is None else claimed.keep_bytes) as sink:

            def write(indices: list[int], results: list[str | EndpointError]) -> None:
                for i, result in zip(indices, results):
                    if i in finished:  # a sampled batch made whole again: this row is already written
                        continue
                    if isinstance(result, EndpointError):
                        errors.append(f"{result.kind}: {result}")
                        row = examples[i].to_dict() | {"response": "", "error": errors[-1]}
                    else:
                        row = examples[i].to_dict() | {"response": result}
                    done[row["id"]] = row
                    sink.write(row)

            backend.generate(prompts, desc=desc, on_batch=write, done=finished)
        if failed & {e.id for e in examples}:  # retried ids now have two rows: keep the newest only
            write_jsonl(output, list(load_partial(output).values()))
        if errors:
            log.warning(
                "%s: %d of %d requests failed (first: %s); rerun to try them again",
                output, len(errors), len(examples) - len(finished), errors[0],
            )  # fmt: skip
    return [done[e.id] for e in examples]


def run_generate(config: GenerateConfig) -> list[dict]:
    """``trice generate``: load the configured backend once (only if work is left), generate for the input file."""
    config.validate()
    check = lambda row, path, line: check_row_task(row, PER_ROW, path, line)  # noqa: E731  (before any model loads)
    examples = [Example.from_dict(row, config.input) for row in read_input(config.input, EXAMPLE_FIELDS, check=check)]
    claimed = claim_output(
        config.output, inputs=[config.input], ids={e.id for e in examples}, fields=("response",), overwrite=config.overwrite
    )
    return generate_for_examples(examples, config.output, None, None, config, claimed=claimed)
