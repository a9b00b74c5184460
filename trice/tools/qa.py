"""The QA tool: ``QA(Where was Allan Peiper born?)`` -> a short answer (TRICE's LAMA tool).

The original QA tool was Atlas: a retriever over Wikipedia and a reader that answers from the
passages it finds. Here both halves are swappable:

* **retrieval** (:mod:`trice.retrieval`): by default the WikiSearch corpus (vital-article leads,
  NQ gold passages) plus the T-REx evidence sentences with their object restored
  (:mod:`trice.retrieval.trex`; Atlas's Wikipedia index held them), BM25 via bm25s, cached on
  disk; any :class:`~trice.retrieval.RetrieverConfig` key in ``retriever`` changes it (a dense or
  remote index, another corpus);
* **reader**: no extractive QA weights install offline (no PyPI package ships a SQuAD-tuned
  model), so the default reader is a language model reading the top ``k`` passages: the embedded
  SmolLM2-135M-Instruct (:mod:`trice.generation.models`, loaded on the first call), greedy, at most
  ``max_new_tokens`` tokens and ``max_time`` seconds, its first line taken as the answer. ``reader:
  endpoint`` asks an OpenAI-compatible server instead (:class:`trice.generation.remote.OpenAIEndpoint`:
  timeouts, retries, circuit breaker, cache); any object with ``answer(questions, passages)`` fits.

The argument is model output: it is whitespace-collapsed, one pair of surrounding quotes dropped,
and refused past ``max_question_chars``. A question no passage matches, an unloadable reader, a
failing server and an empty answer are typed :class:`~trice.core.tools.ToolError`s. Answers are
memoised per question in a bounded LRU, and :meth:`QATool.prefetch` answers many questions in one
batched retrieval and generation (judging calls it with all of a file's calls before executing
them one by one).

Answers are also cached on disk (``cache_dir``, :mod:`trice.tools.cache`), keyed by every option
that changes them (retriever, ``k``, reader model, template, ...) and the cleaned question: the
reader is greedy, and the same questions come back in every stage, run and evaluated model. Errors
are not cached. The ``endpoint`` reader is not cached here: its client already caches by model and
prompt when ``endpoint.cache_dir`` is set, and a key made of the endpoint's options would tie
entries to a server address and timeouts.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tqdm.auto import tqdm

from trice.core.paths import resolve_data_dir
from trice.generation import models
from trice.generation.models import DEFAULT_MODEL
from trice.generation.remote import EndpointError
from trice.core.templates import format_prompt
from trice.retrieval import RetrieverConfig, build_retriever
from trice.retrieval.factory import LOCAL_BACKENDS
from trice.retrieval.trex import trex_corpus_file
from trice.core.tools import OUTAGE_KINDS, ToolError, ToolSetupError, clean_text_argument
from trice.tools.cache import CACHE_DIR_HELP, NO_CACHE, ToolOutputCache
from trice.tools.endpoint import complete, open_endpoint
from trice.utils.config import ConfigError, build_config

log = logging.getLogger(__name__)

NAME = "QA"
READERS = ("lm", "endpoint")
CACHE_SIZE = 4096
READ_INSTRUCTION = "Read the passages and answer the question. Reply with the answer only."
PROMPT_VERSION = "1"
"""Part of every cache key: bump it when :func:`reader_input` or :func:`short_answer` changes."""


@dataclass
class QAToolConfig:
    """How ``QA(...)`` calls are answered (the ``QA`` tool's options)."""

    retriever: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "RetrieverConfig keys (backend, corpus_dir, sources, extra_passages, index_dir, url, ...); default: BM25 over the wiki corpus."},
    )
    trex_evidence: bool = field(
        default=True, metadata={"help": "Add the T-REx evidence sentences (object restored) to a local corpus, as Atlas's Wikipedia had them."}
    )
    data_dir: str | None = field(default=None, metadata={"help": "Data directory holding lama_trex/ (else $TRICE_DATA_DIR, else ../shared/data)."})
    k: int = field(
        default=2,
        metadata={
            "help": "Passages the reader reads per question (measured on 300 T-REx reference questions with the default BM25: a gold answer is in the top passage for 90%, in the top 2 for 94%)."
        },
    )
    reader: str = field(default="lm", metadata={"help": f"What answers each question from its passages (an AnswerReader): {', '.join(READERS)}."})
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "lm: the reading model (hub name, directory or embedded alias)."})
    template: str = field(
        default="auto",
        metadata={
            "help": "lm: prompt template: chat, alpaca, or auto (chat when the model's tokenizer has a chat template: SmolLM2-Instruct reads better so)."
        },
    )
    max_new_tokens: int = field(default=24, metadata={"help": "Most tokens of an answer (the metric reads its first 20 words)."})
    max_time: float = field(
        default=120.0,
        metadata={"help": "lm: seconds one batch of answers may take before it is cut off (a safety bound: a cut answer depends on the machine's load)."},
    )
    batch_size: int = field(default=8, metadata={"help": "lm: questions per generate() call."})
    max_question_chars: int = field(default=300, metadata={"help": "Longest question accepted; longer calls fail with kind 'limit'."})
    max_passage_words: int = field(default=60, metadata={"help": "Words of each passage the reader sees (bounds the prompt, and so the reader's time)."})
    endpoint: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "endpoint: trice.generation.remote.EndpointConfig fields (base_url, model, mode, cache_dir, ...)."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": f"{CACHE_DIR_HELP} Not used by the endpoint reader (see endpoint.cache_dir)."})

    def validate(self) -> None:
        if self.reader not in READERS:
            raise ValueError(f"reader must be one of {', '.join(READERS)}, got {self.reader!r}")
        for name in ("k", "max_new_tokens", "batch_size", "max_question_chars", "max_passage_words"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_time <= 0:
            raise ValueError(f"max_time must be > 0, got {self.max_time}")
        if self.template not in ("auto", "alpaca", "chat"):
            raise ValueError(f"template must be auto, alpaca or chat, got {self.template!r}")
        if self.reader == "endpoint" and not self.endpoint.get("model"):
            raise ValueError("reader 'endpoint' needs endpoint={'base_url': ..., 'model': ...}")

    def local_models(self) -> list[str]:
        """The reading model loaded on this machine (a run checks it is installed before its first
        stage); an endpoint reader loads none."""
        return [self.model] if self.reader == "lm" else []


def clean_question(argument: str, limit: int) -> str:
    """The question in a call's argument (see :func:`trice.core.tools.clean_text_argument`)."""
    return clean_text_argument(argument, limit, "question")


def reader_input(question: str, passages: Sequence[str], max_words: int) -> str:
    """What the reader reads: the numbered passages (each cut to ``max_words`` words), then the question."""
    lines = [f"{i}. {' '.join(p.split()[:max_words])}" for i, p in enumerate(passages, start=1)]
    return "Passages:\n" + "\n".join(lines) + f"\n\nQuestion: {question}"


def short_answer(text: str) -> str:
    """The answer in a reader's output: its lines joined (a small model often writes "The answer
    is:" and the answer on the next line), an ``Answer:`` label dropped. Its length is bounded by
    the reader's ``max_new_tokens``."""
    answer = " ".join(text.split())
    if answer.lower().startswith("answer:"):
        answer = answer[len("answer:") :].strip()
    return answer


class AnswerReader(Protocol):
    """Answers each question from its passages, in order; raises :class:`ToolError`."""

    def answer(self, questions: Sequence[str], passages: Sequence[Sequence[str]]) -> list[str]: ...


class LMReader:
    """A local causal LM reading the passages (loaded on first use)."""

    def __init__(self, config: QAToolConfig):
        self.config = config
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._model is None:
            log.info("loading the QA reader %s", self.config.model)
            try:
                self._model, self._tokenizer = models.load_model(self.config.model)
            except (OSError, ValueError) as err:  # not installed, no such model
                raise ToolSetupError(f"cannot load QA reader model {self.config.model!r}: {err}") from None

    def answer(self, questions: Sequence[str], passages: Sequence[Sequence[str]]) -> list[str]:
        from trice.generation.decode import (
            generate_batch,
        )  # here, not at the top: it imports torch, and every `trice evaluate` imports this module (the tool registry)

        self._load()
        c = self.config
        template = c.template
        if template == "auto":
            template = "chat" if getattr(self._tokenizer, "chat_template", None) else "alpaca"
        prompts = [format_prompt(READ_INSTRUCTION, reader_input(q, p, c.max_passage_words), template, self._tokenizer) for q, p in zip(questions, passages)]
        out: list[str] = []
        for start in range(0, len(prompts), c.batch_size):
            texts = generate_batch(
                self._model, self._tokenizer, prompts[start : start + c.batch_size],
                max_new_tokens=c.max_new_tokens, do_sample=False, max_time=c.max_time,
            )  # fmt: skip
            out += [short_answer(t) for t in texts]
        return out


class EndpointReader:
    """An OpenAI-compatible server reading the passages; its failures become typed errors."""

    def __init__(self, config: QAToolConfig):
        self.config = config
        self.endpoint = open_endpoint(config.endpoint, config.max_new_tokens)

    def answer(self, questions: Sequence[str], passages: Sequence[Sequence[str]]) -> list[str]:
        return [
            short_answer(complete(self.endpoint, f"{READ_INSTRUCTION}\n\n{reader_input(q, p, self.config.max_passage_words)}\nAnswer:", "QA reader"))
            for q, p in zip(questions, passages)
        ]


_READERS = {"lm": LMReader, "endpoint": EndpointReader}


class QATool:
    """``QA(question)``: retrieve the top ``k`` passages, let the reader answer from them.

    Build from options with :meth:`from_options` (the registry's factory), or hand it a ready
    ``retriever`` (any :class:`~trice.retrieval.Retriever`) and ``reader`` (:class:`AnswerReader`),
    and a ``cache`` only if its key describes them.
    """

    name = NAME

    def __init__(self, reader: AnswerReader, retriever: Any = None, config: QAToolConfig | None = None, cache: ToolOutputCache = NO_CACHE):
        self.config = config or QAToolConfig()
        self.config.validate()
        self.reader = reader
        self._retriever = retriever
        self.cache = cache
        self._answers: OrderedDict[str, str | ToolError] = OrderedDict()

    @classmethod
    def from_options(cls, **options: Any) -> QATool:
        """The QA tool that :class:`QAToolConfig` ``options`` describe; nothing loads until the first call."""
        config = build_config(QAToolConfig, options, "QA options")
        cache = NO_CACHE
        if config.reader != "endpoint":  # the endpoint client caches for itself (module docstring)
            cache = ToolOutputCache.for_config(NAME, PROMPT_VERSION, config, {"instruction": READ_INSTRUCTION})
        return cls(_READERS[config.reader](config), None, config, cache)

    @property
    def retriever(self) -> Any:
        """The retriever, built (or its cached index loaded) on first use; a corpus or retriever
        setting that cannot be used stops the run (:class:`ToolSetupError`)."""
        if self._retriever is None:
            options = dict(self.config.retriever)
            try:
                if options.get("backend", "bm25") in LOCAL_BACKENDS:
                    if self.config.data_dir and "corpus_dir" not in options:
                        options["corpus_dir"] = str(resolve_data_dir(self.config.data_dir) / "wiki_corpus")
                    if self.config.trex_evidence:
                        extra = [*options.get("extra_passages", []), str(trex_corpus_file(self.config.data_dir))]
                        options["extra_passages"] = extra
                self._retriever = build_retriever(build_config(RetrieverConfig, options, "QA retriever options"))
            except (OSError, ValueError, ConfigError) as err:
                raise ToolSetupError(f"QA retrieval: {err}") from None
        return self._retriever

    def passages(self, question: str) -> list[str]:
        """The texts the reader reads for ``question`` (``Title | text``), best first."""
        try:
            hits = self.retriever.search(question, self.config.k)
        except EndpointError as err:
            raise ToolError("unavailable" if err.kind != "timeout" else "timeout", f"QA retrieval: {err}") from None
        except ValueError as err:
            raise ToolError("bad_argument", f"QA retrieval: {err}") from None
        return [hit.text for hit in hits]

    def _remember(self, question: str, answer: str | ToolError) -> None:
        """Keep an answer, or an error that asking again would repeat (not a timeout or an outage)."""
        if isinstance(answer, ToolError) and answer.kind in OUTAGE_KINDS:
            return
        self._answers[question] = answer
        self._answers.move_to_end(question)
        while len(self._answers) > CACHE_SIZE:
            self._answers.popitem(last=False)

    def _answered(self, question: str, answer: str) -> None:
        """Keep a fresh answer, in memory and on disk."""
        self.cache.put(question, answer)
        self._remember(question, answer)

    def prefetch(self, arguments: Sequence[str]) -> None:
        """Answer many calls at once (one batched search and generation), into the answer cache; a
        call that fails is remembered as its error and raised when it is run."""
        questions: list[str] = []
        for argument in arguments:
            try:
                question = clean_question(argument, self.config.max_question_chars)
            except ToolError:
                continue  # run() raises it again
            if question not in self._answers and question not in questions:
                questions.append(question)
        cached, questions = self.cache.split(questions)
        for question, answer in cached.items():
            self._remember(question, answer)
        if not questions:
            return
        found: list[tuple[str, list[str]]] = []
        for question in questions:
            try:
                found.append((question, self.passages(question)))
            except ToolError as err:
                self._remember(question, err)
        for q, p in found:
            if not p:
                self._remember(q, ToolError("bad_argument", f"QA: no passage matches {q!r}"))
        readable = [(q, p) for q, p in found if p]
        step = self.config.batch_size
        with tqdm(range(0, len(readable), step), desc="QA tool", unit="batch", leave=False) as bar:  # closed on an error
            for start in bar:
                self._read_batch(readable[start : start + step])

    def _read_batch(self, batch: Sequence[tuple[str, list[str]]]) -> None:
        """Answer a batch of questions from their passages, remembering each answer; a batch that
        fails is left for :meth:`run` to try call by call, unless the reader cannot be set up."""
        try:
            answers = self.reader.answer([q for q, _ in batch], [p for _, p in batch])
        except ToolSetupError:
            raise
        except Exception as err:  # noqa: BLE001 - run() retries each call under the registry's guard
            log.warning("QA tool: a batch of %d answers failed (%s); each call is tried alone", len(batch), err)
            return
        for (q, _), answer in zip(batch, answers):
            if isinstance(answer, str) and answer:
                self._answered(q, answer)
            else:
                self._remember(q, ToolError("runtime", f"QA: empty answer to {q!r}"))

    def run(self, argument: str) -> str:
        """The reader's answer to the call's question."""
        question = clean_question(argument, self.config.max_question_chars)
        if question not in self._answers:
            cached = self.cache.get(question)
            if cached is None:
                self._answered(question, self._read(question))
            else:
                self._remember(question, cached)
        answer = self._answers[question]
        if isinstance(answer, ToolError):
            raise answer
        return answer

    def _read(self, question: str) -> str:
        """Retrieve passages for one question and let the reader answer it; raises :class:`ToolError`."""
        passages = self.passages(question)
        if not passages:
            raise ToolError("bad_argument", f"QA: no passage matches {question!r}")
        answers = self.reader.answer([question], [passages])
        if len(answers) != 1 or not isinstance(answers[0], str):
            raise ToolError("runtime", f"QA reader gave {answers!r} for one question")
        if not answers[0]:
            raise ToolError("runtime", f"QA: empty answer to {question!r}")
        return answers[0]
