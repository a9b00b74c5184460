"""Stage II's candidate sources: what each entry of ``trice candidates``' ``sources`` list may say,
and how the list is checked (:func:`parse_sources`). How the sources' responses are made, resumed
and merged is :mod:`trice.stage2.candidates`; its docstring shows the sources in a recipe.

Each source says what decides its responses (``settings()``): a part written under other settings
is made again, so the keys a source records are part of its on-disk contract.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trice.responses.config import GenerateConfig
from trice.generation.models import DEFAULT_MODEL
from trice.generation.remote import EndpointConfig
from trice.utils.config import ConfigError, build_config

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a source name is also a file name


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
    few_shot: str | None = field(
        default=None, metadata={"help": "Few-shot prefix: a preset name (math, qa, lama, mlqa; task: each question's own task's) or the text."}
    )
    seed: int | None = field(
        default=None,
        metadata={
            "help": "Sampling seed of this source (unset: the candidates' seed). Several sampled sources of one model draw different samples only with different seeds."
        },
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
    few_shot: str | None = field(
        default=None, metadata={"help": "Few-shot prefix: a preset name (math, qa, lama, mlqa; task: each question's own task's) or the text."}
    )
    stop_after_call: bool = field(default=False, metadata={"help": STOP_HELP})
    tools: bool = field(
        default=False,
        metadata={
            "help": "mode chat: offer the question's task tool as a function schema; the calls the server returns (tool_calls) "
            "become the response as hermes <tool_call> text (see trice.generation.remote)."
        },
    )

    def validate(self) -> None:
        super().validate()
        if self.tools and self.mode != "chat":
            raise ValueError("tools: tools are offered through the chat API only; set mode chat")

    def settings(self) -> dict[str, Any]:
        """What decides the answers; like the answer cache, not the server address or the patience.
        An option at its default stays out, so parts recorded before it existed stay valid."""
        keys = ("model", "mode", "max_tokens", "temperature", "top_p", "stop", "few_shot")
        keys += tuple(k for k in ("stop_after_call", "tools") if getattr(self, k))
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
        if not NAME.match(source.name):
            raise ConfigError(f"{where}: key 'name': {source.name!r} is not a plain file name (letters, digits, . _ -)")
        if (i == 0) != (kind == "gold"):
            raise ConfigError(f"{where}: the gold source (kind: gold) must come first, and only once")
        if source.name in {s.name for s in sources}:
            raise ConfigError(f"{where}: key 'name': {source.name!r} is used by another source")
        sources.append(source)
    return sources
