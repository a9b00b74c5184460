"""The generation config (the ``trice generate`` flags and every generating stage's section),
apart from the generation code so that commands which only judge text (``trice evaluate``,
``trice score``) can build it without importing torch or transformers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trice.generation.models import DEFAULT_MODEL
from trice.core.call_format import DECISIONS, NATIVE_FORMAT, call_format_field, check_call_format, tool_parser_field
from trice.utils.outputs import OVERWRITE_HELP

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
    endpoint_tools: bool = field(
        default=False,
        metadata={
            "help": "openai, endpoint_mode chat: offer the task's tool as a function schema (the request's tools) and write "
            'the calls the server returns (tool_calls) into the response as hermes <tool_call>{"name": ..., "arguments": {...}}</tool_call> '
            "text; for a server that parses the model's own calls (vllm serve --enable-auto-tool-choice --tool-call-parser hermes, a hosted API)."
        },
    )
    read_max_new_tokens: int = field(
        default=32,
        metadata={
            "help": "New tokens of a second reading (qa: each WikiSearch passage; mlqa: the translated question), greedy; the metric reads the first 20 words."
        },
    )
    stop_after_call: bool = field(
        default=False,
        metadata={
            "help": "Stop a response at the end of its first call of the task's tool and cut what follows (never judged); "
            "judgements are unchanged, generation is shorter. Off: responses run to max_new_tokens or a stop marker."
        },
    )
    call_format: str = call_format_field()
    tool_parser: str = tool_parser_field()
    decision: str = field(
        default="greedy",
        metadata={
            "help": f"How the first token decides between calling and answering ({', '.join(DECISIONS)}): greedy decodes as usual; "
            "threshold calls iff P(call) > decision_tau; call / answer force one branch (trice.generation.decision). transformers backend only."
        },
    )
    decision_tau: float = field(default=0.5, metadata={"help": "decision threshold: call iff P(call) > this (a run chooses it on dev)."})
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})

    def validate(self) -> None:
        for name in ("batch_size", "max_new_tokens", "num_beams", "vllm_tensor_parallel_size", "endpoint_workers", "read_max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.do_sample and self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {self.temperature}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0 (1.0: none), got {self.repetition_penalty}")
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
        check_call_format(self.call_format, self.tool_parser, self.template)
        self._validate_decision()
        if self.backend == "openai":
            self._validate_endpoint()
        elif self.endpoint_tools:
            raise ValueError(f"endpoint_tools: only the openai backend sends tools to a server; the {self.backend} backend would ignore it")

    def _validate_decision(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision: unknown {self.decision!r}; choose one of {', '.join(DECISIONS)}")
        if self.decision != "greedy" and (self.backend != "transformers" or self.num_beams != 1):
            raise ValueError(f"decision {self.decision}: reads the first token's logits, which only the transformers backend without beams gives")
        if not 0.0 <= self.decision_tau <= 1.0:
            raise ValueError(f"decision_tau: a probability in [0, 1], got {self.decision_tau}")

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
        if self.endpoint_tools and self.endpoint_mode != "chat":
            raise ValueError("endpoint_tools: tools are offered through the chat API only; set endpoint_mode chat")
        if self.endpoint_mode == "chat" and self.call_format == NATIVE_FORMAT and not self.endpoint_tools:
            raise ValueError(
                "call_format native with endpoint_mode chat needs endpoint_tools (the server then gets the tool schemas "
                "and returns its calls as hermes text), or endpoint_mode completions (the prompt is rendered here)"
            )
        if self.endpoint_tools and self.call_format == NATIVE_FORMAT and self.tool_parser not in ("auto", "hermes"):
            raise ValueError(f"endpoint_tools returns the server's tool calls as hermes text; tool_parser {self.tool_parser!r} would not read them")
        if not self.endpoint_url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint_url must start with http:// or https://, got {self.endpoint_url!r}")
        if self.endpoint_timeout <= 0:
            raise ValueError(f"endpoint_timeout must be > 0, got {self.endpoint_timeout}")
        if self.endpoint_max_retries < 0:
            raise ValueError(f"endpoint_max_retries must be >= 0, got {self.endpoint_max_retries}")

    def generation_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            max_new_tokens=self.max_new_tokens, do_sample=self.do_sample, num_beams=self.num_beams, repetition_penalty=self.repetition_penalty
        )
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        return kwargs
