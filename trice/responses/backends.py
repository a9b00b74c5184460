"""Generation backends behind one interface: local transformers, vLLM, any OpenAI-compatible server.

Probing, evaluation and stage II's candidates all need "a response for each of these prompts". On
a CPU box that is transformers' ``generate`` in length-sorted, left-padded batches; on GPUs vLLM's
paged attention and continuous batching are many times faster for a 7B model; and a model served
elsewhere (a teacher, a shared `vllm serve`, llama.cpp) speaks the OpenAI API. Each backend here
turns a task and question into its prompt (:meth:`prompt`) and prompts into cleaned responses
(:meth:`generate`), reporting each finished chunk to ``on_batch`` so the caller can append results
as they come and resume after a kill (:func:`trice.responses.generate.generate_for_examples`).

What makes the backends agree:

* The prompt is the same text (the recipe's template). The local backends tokenize it without
  special tokens, as training does; vLLM gets those token ids, not the text, so it cannot add a BOS
  of its own. An OpenAI server tokenizes the text itself (vLLM's completions API adds the BOS).
* The sampling settings map one to one (:func:`vllm_sampling_kwargs`, :func:`endpoint_config`);
  greedy is temperature 0. Remote and vLLM generation stop at the template's stop markers, where
  the local backend's output is cut anyway (:func:`trice.generation.stopping.clean_response`).
* Given a :class:`~trice.generation.stopping.StopRule` per prompt (``stop_after_call``), every backend cuts a
  response just after its first tool call; the local backend also stops generating there.
* Beams exist only locally, a repetition penalty only locally and in vLLM; a config asking for
  more of a backend fails validation naming the field.

A request an endpoint cannot answer (after its retries) comes back as a
:class:`~trice.generation.remote.EndpointError` value instead of text, so a dead server costs examples, not
the run. The local backends raise instead: their failures are bugs or out-of-memory, not weather.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import Any, ClassVar

from tqdm.auto import tqdm

from trice.generation.adapters import adapter_config, check_adapter_dir
from trice.responses.config import GenerateConfig
from trice.generation.decision import CallOpening
from trice.generation.decode import generate_responses
from trice.generation import models
from trice.generation.models import load_tokenizer, resolve_model
from trice.generation.remote import EndpointConfig, EndpointError, OpenAIEndpoint, Prompt, ToolChat
from trice.generation.stopping import STOP_MARKERS, StopRule, clean_response
from trice.core.templates import chat_messages, format_prompt, render_chat
from trice.tasks import get_task, prompt_tools
from trice.core.prompts import task_instruction
from trice.core.call_format import NATIVE_FORMAT
from trice.core.native import tool_schema
from trice.utils.config import ConfigError

log = logging.getLogger(__name__)

Result = str | EndpointError
OnBatch = Callable[[list[int], list[Result]], None]


class GenerationBackend(ABC):
    """Responses for prompts, reported chunk by chunk. Subclasses say how to prompt and generate."""

    name: ClassVar[str]

    def __init__(self, config: GenerateConfig):
        self.config = config

    def prompt(self, task: str, question: str) -> Prompt:
        """What this backend sends for one example: the template's text (or a chat conversation);
        in the native call format with the task's tool schema offered."""
        tools = prompt_tools(task, self.config.call_format == NATIVE_FORMAT)
        return self.instruction_prompt(task_instruction(task, bool(tools)), question, tools)

    def conversation_prompt(self, messages: list[dict[str, Any]]) -> Prompt:
        """A conversation with turns after the user's (a call and its tool's reply), rendered by the
        chat template for the model's next turn: how a native run reads a tool's output again."""
        if self.config.template != "chat":
            raise ValueError(f"a conversation with tool turns needs template 'chat' (got {self.config.template!r})")
        return render_chat(self.chat_tokenizer(), messages, add_generation_prompt=True)

    def chat_tokenizer(self) -> Any:
        """The tokenizer whose chat template renders this backend's conversations."""
        return self.tokenizer

    def instruction_prompt(self, instruction: str, input_text: str, tools: list[dict] | None = None) -> Prompt:
        """The prompt of any instruction and input (a task's, or a second reading's: :mod:`trice.judge.reading`),
        offering ``tools`` (function schemas) through the chat template where given."""
        return format_prompt(instruction, input_text, self.config.template, self.chat_tokenizer(), tools)

    @abstractmethod
    def generate(
        self,
        prompts: Sequence[Prompt],
        desc: str = "generate",
        on_batch: OnBatch | None = None,
        done: Collection[int] = (),
        stops: Sequence[StopRule] | None = None,
        openings: Sequence[CallOpening] | None = None,
    ) -> list[Result | None]:
        """A cleaned response (or an endpoint's error) per prompt, in input order, None for the
        indices in ``done`` (made before a resume); ``on_batch(indices, results)`` after each chunk.
        ``stops``: one rule per prompt, cutting its response where the rule says it is over.
        ``openings``: what opens each prompt's call, for a backend that reads the first token's
        logits (:mod:`trice.generation.decision`: the local one); the others ignore it."""

    @staticmethod
    def _finish(stops: Sequence[StopRule] | None, i: int, text: str) -> str:
        """Prompt ``i``'s response in a finished generation ``text`` (a remote or vLLM one, cut afterwards)."""
        return clean_response(text) if stops is None else stops[i].finish(text)

    def _chunks(self, n: int, done: Collection[int]) -> list[list[int]]:
        skip = set(done)
        todo = [i for i in range(n) if i not in skip]
        size = self.config.batch_size
        return [todo[start : start + size] for start in range(0, len(todo), size)]


class TransformersBackend(GenerationBackend):
    """Local ``model.generate`` in batches of ``batch_size`` length-sorted, left-padded prompts
    (:func:`trice.generation.decode.generate_responses`)."""

    name = "transformers"

    def __init__(self, config: GenerateConfig, model: Any = None, tokenizer: Any = None):
        super().__init__(config)
        if model is None:
            model, tokenizer = models.load_model(config.model, config.adapter, dtype=config.dtype)  # on the GPU if there is one
        elif tokenizer is None:
            tokenizer = load_tokenizer(config.model)
        self.model, self.tokenizer = model, tokenizer

    def generate(
        self,
        prompts: Sequence[Prompt],
        desc: str = "generate",
        on_batch: OnBatch | None = None,
        done: Collection[int] = (),
        stops: Sequence[StopRule] | None = None,
        openings: Sequence[CallOpening] | None = None,
    ) -> list[Result | None]:
        return list(
            generate_responses(
                self.model, self.tokenizer, list(prompts), self.config.batch_size, desc=desc, on_batch=on_batch,
                done=done, seed=self.config.seed, stops=stops, openings=openings,
                decision=(self.config.decision, self.config.decision_tau), **self.config.generation_kwargs(),
            )
        )  # fmt: skip


def vllm_sampling_kwargs(config: GenerateConfig) -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments equivalent to ``config``'s transformers settings.

    Greedy is temperature 0 (vLLM's greedy). Sampling is seeded by the engine (``LLM(seed=...)``),
    not per request, so identical prompts still get different samples; unlike the local backend's
    per-batch seeds, a resumed sampled run is not bit-identical to an uninterrupted one. Generation
    stops at the template's stop markers, which :func:`~trice.generation.stopping.clean_response` would cut at
    anyway.
    """
    kwargs: dict[str, Any] = dict(
        n=1, max_tokens=config.max_new_tokens, repetition_penalty=config.repetition_penalty, stop=list(STOP_MARKERS), skip_special_tokens=True
    )
    if config.do_sample:
        kwargs.update(temperature=config.temperature, top_p=config.top_p)
    else:
        kwargs.update(temperature=0.0, top_p=1.0)
    return kwargs


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as err:
        raise ConfigError(
            f"backend: 'vllm' needs the vllm package, which is not installed ({err}). On a GPU machine: "
            "pip install vllm (it brings its own CUDA torch); elsewhere use backend transformers, or "
            "openai with a vLLM server running on a GPU machine."
        ) from None
    return vllm


def _lora_rank(adapter: str) -> int:
    """The adapter's LoRA rank, rounded up to a rank vLLM accepts as ``max_lora_rank``."""
    rank = int(adapter_config(adapter)["r"])
    return next((r for r in (8, 16, 32, 64, 128, 256, 320, 512) if r >= rank), rank)


def check_vllm_adapter(adapter: str) -> None:
    """Refuse an adapter vLLM would apply wrongly: a broken one (naming its directory), or one that
    trains embedding rows beside LoRA (trainable tokens), which vLLM's LoRA support leaves out."""
    check_adapter_dir(adapter)
    if adapter_config(adapter).get("trainable_token_indices"):
        raise ConfigError(
            f"adapter {adapter} trains embedding rows beside LoRA (trainable tokens, as the native call format "
            "does), which vLLM's LoRA support does not apply; use backend transformers, which merges them"
        )


class VLLMBackend(GenerationBackend):
    """vLLM's offline engine on the GPU(s); a LoRA adapter is applied per request (``enable_lora``),
    not merged, so several adapters can share one engine's base weights.

    ``batch_size`` is the prompts per ``LLM.generate`` call (vLLM schedules them itself): larger is
    faster, and a kill loses at most one call's work.
    """

    name = "vllm"

    def __init__(self, config: GenerateConfig):
        super().__init__(config)
        vllm = _import_vllm()
        self.tokenizer = load_tokenizer(config.model)
        path = resolve_model(config.model)
        engine: dict[str, Any] = dict(
            model=path,
            tokenizer=path,
            dtype=config.dtype,
            seed=config.seed,
            gpu_memory_utilization=config.vllm_gpu_memory_utilization,
            tensor_parallel_size=config.vllm_tensor_parallel_size,
        )
        if config.vllm_max_model_len:
            engine["max_model_len"] = config.vllm_max_model_len
        self.lora_request = None
        if config.adapter:
            from vllm.lora.request import LoRARequest  # vllm is optional: only this backend needs it

            check_vllm_adapter(config.adapter)
            engine.update(enable_lora=True, max_lora_rank=_lora_rank(config.adapter))
            self.lora_request = LoRARequest("adapter", 1, str(config.adapter))
        self.llm = vllm.LLM(**engine)
        self.sampling = vllm.SamplingParams(**vllm_sampling_kwargs(config))

    def generate(
        self,
        prompts: Sequence[Prompt],
        desc: str = "generate",
        on_batch: OnBatch | None = None,
        done: Collection[int] = (),
        stops: Sequence[StopRule] | None = None,
        openings: Sequence[CallOpening] | None = None,
    ) -> list[Result | None]:
        chunks = self._chunks(len(prompts), done)
        ids = {i: list(self.tokenizer(prompts[i], add_special_tokens=False)["input_ids"]) for chunk in chunks for i in chunk}
        results: list[Result | None] = [None] * len(prompts)
        with tqdm(total=len(prompts), initial=len(prompts) - len(ids), desc=desc, unit="ex") as bar:
            for chunk in chunks:
                outputs = self.llm.generate([{"prompt_token_ids": ids[i]} for i in chunk], self.sampling, lora_request=self.lora_request, use_tqdm=False)
                texts: list[Result] = [self._finish(stops, i, out.outputs[0].text) for i, out in zip(chunk, outputs)]
                for i, text in zip(chunk, texts):
                    results[i] = text
                if on_batch is not None:
                    on_batch(chunk, texts)
                bar.update(len(chunk))
        return results


def offering_task_tool(prompt: str | list[dict[str, Any]], task: str) -> ToolChat:
    """``prompt`` (its text as the user's turn, or chat messages) offering ``task``'s tool: the one
    tool TRICE teaches the task to call, never the other tasks'."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    return ToolChat(messages, [tool_schema(get_task(task).tool)])


def endpoint_config(config: GenerateConfig) -> EndpointConfig:
    """The :class:`~trice.generation.remote.EndpointConfig` of ``config``'s ``endpoint_*`` and sampling fields
    (greedy is temperature 0, which the endpoint also caches)."""
    return EndpointConfig(
        base_url=config.endpoint_url,
        model=config.endpoint_model or config.model,
        api_key_env=config.endpoint_api_key_env,
        mode=config.endpoint_mode,
        max_tokens=config.max_new_tokens,
        temperature=config.temperature if config.do_sample else 0.0,
        top_p=config.top_p if config.do_sample else 1.0,
        stop=list(STOP_MARKERS),
        read_timeout=config.endpoint_timeout,
        max_retries=config.endpoint_max_retries,
        cache_dir=config.endpoint_cache_dir,
    )


class OpenAIBackend(GenerationBackend):
    """An OpenAI-compatible server through :class:`~trice.generation.remote.OpenAIEndpoint` (timeouts, retries,
    circuit breaker, cache). ``batch_size`` prompts are in flight per chunk, ``endpoint_workers`` at once.
    With ``endpoint_tools`` a task's prompt offers the task's tool (:class:`~trice.generation.remote.ToolChat`),
    and the calls the server returns are part of the response text."""

    name = "openai"

    def __init__(self, config: GenerateConfig):
        super().__init__(config)
        self.endpoint = OpenAIEndpoint(endpoint_config(config))
        self._tokenizer: Any = None

    def prompt(self, task: str, question: str) -> Prompt:
        prompt = super().prompt(task, question)
        return offering_task_tool(prompt, task) if self.config.endpoint_tools else prompt

    def instruction_prompt(self, instruction: str, input_text: str, tools: list[dict] | None = None) -> Prompt:
        if self.config.template != "chat":
            return format_prompt(instruction, input_text, self.config.template, tools=tools)
        if self.config.endpoint_mode == "chat":  # native calls need completions (GenerateConfig.validate)
            return chat_messages(instruction, input_text)  # the server applies its chat template
        return format_prompt(instruction, input_text, "chat", self.chat_tokenizer(), tools)

    def chat_tokenizer(self) -> Any:
        """Completions of a chat prompt: the template is rendered here, as locally (loaded on first need)."""
        if self.config.endpoint_mode == "chat":
            raise ValueError("endpoint_mode chat: the server renders conversations; native calls and their tool turns need completions")
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.config.model)
        return self._tokenizer

    def generate(
        self,
        prompts: Sequence[Prompt],
        desc: str = "generate",
        on_batch: OnBatch | None = None,
        done: Collection[int] = (),
        stops: Sequence[StopRule] | None = None,
        openings: Sequence[CallOpening] | None = None,
    ) -> list[Result | None]:
        results: list[Result | None] = [None] * len(prompts)
        for chunk in self._chunks(len(prompts), done):
            answers = self.endpoint.complete_many([prompts[i] for i in chunk], n_workers=self.config.endpoint_workers, desc=desc)
            texts: list[Result] = [a if isinstance(a, EndpointError) else self._finish(stops, i, a) for i, a in zip(chunk, answers)]
            for i, text in zip(chunk, texts):
                results[i] = text
            if on_batch is not None:
                on_batch(chunk, texts)
        return results


BACKEND_CLASSES: dict[str, type[GenerationBackend]] = {cls.name: cls for cls in (TransformersBackend, VLLMBackend, OpenAIBackend)}


def load_backend(config: GenerateConfig, model: Any = None, tokenizer: Any = None) -> GenerationBackend:
    """The backend ``config.backend`` names, ready to generate (weights loaded, client built).

    ``model``/``tokenizer``: an already loaded transformers model, used by the transformers backend
    (e.g. a checkpoint being evaluated); other backends load their own and ignore it, with a warning,
    since the caller then loaded a model for nothing.
    """
    try:
        config.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if config.backend == "transformers":
        return TransformersBackend(config, model, tokenizer)
    if model is not None:
        log.warning("backend %s: the transformers model passed in is not used (load none for this backend)", config.backend)
    return BACKEND_CLASSES[config.backend](config)
