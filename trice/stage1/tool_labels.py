"""Tool calls for D_tool's wrong questions, per task, each kept only when executing it gives gold.

TRICE labels a question the untuned model got wrong with a tool call that a teacher wrote and that
executes to the gold answer. What stands in for the teacher, and what "executes to gold" means,
differ per task:

* **math**: the data's own calculation (GSM8K's ``<<48/2=24>>``, SVAMP's Equation, ASDiv's
  Formula) as ``calculator(...)``, kept when its value is gold.
* **lama**: the reference ``QA(<natural question>)`` from the fact's subject and one question
  template per relation (:data:`trice.data.lama.RELATION_QUESTIONS`), kept when the QA tool
  (retrieval + reader) answers it right.
* **mlqa**: ``translator(<the question>)`` (the paper's call), kept when the translation, read by the
  model in place of the question, is answered right (the model reading is the probed one).
* **qa**: no data carries a search term, so several candidates are tried per question: a teacher
  LLM's proposals when a teacher is configured (an OpenAI-compatible server, or a local model
  with ``kind: model``; either prompted as in the paper with the question, its gold answers and
  examples: :data:`TEACHER_QA_PROMPT`), then deterministic ones (the
  question's key words, its capitalised phrases, the question itself). The first whose top
  ``search_k`` passages contain a gold answer is kept, as ``WikiSearch(<term>)``. The check is the
  retrieval alone (a term counts when it surfaces a gold answer): whether the model then reads the
  passage right is stage II's business, where the call is executed and read.

Every check executes through the task's tool registry (bounded, typed failures), in batches: the
QA tool answers all its calls in one batched pass, the readings of all translations are one
batched generation.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from trice.generation import models
from trice.generation.remote import EndpointConfig, EndpointError, OpenAIEndpoint
from trice.generation.stopping import STOP_MARKERS, StopRule
from trice.judge.evaluate import judge_rows, machine_failure, tool_outages
from trice.judge.reading import ReadingModel
from trice.tasks.metrics import answer_in_text
from trice.utils.config import build_config
from trice.tasks import PER_ROW, get_task, tool_error_text, tool_registries
from trice.core.tools import OUTAGE_KINDS, ToolError, parse_call

log = logging.getLogger(__name__)

WH_WORDS = frozenset("what which who whom whose where when why how".split())
AUXILIARIES = frozenset("is are was were be been being am do does did has have had can could will would shall should may might must".split())
FUNCTION_WORDS = frozenset("a an the of in on at to for from by with about as into and or".split())
MAX_TERM_WORDS = 12

# The TRICE paper's teacher prompt for WikiSearch, with three examples and room for several calls.
TEACHER_QA_PROMPT = (
    'I will provide you with a Question and its Golden answers. I need you to write "WikiSearch(term)" to invoke '
    'the API for assistance in answering the question, where "term" is the search term you want to look up to '
    "obtain the Golden answers. Write up to {n} different calls, one per line, the best first.\n\n"
    "Question: what is nina dobrev nationality?\nGolden answers: Bulgaria\nWikiSearch(Nina Dobrev nationality)\n"
    "WikiSearch(Nina Dobrev)\n\n"
    "Question: who played the voice of darth vader in star wars?\nGolden answers: James Earl Jones\n"
    "WikiSearch(voice of Darth Vader)\nWikiSearch(Darth Vader actor)\n\n"
    "Question: Which river flows through Vienna?\nGolden answers: Danube\nWikiSearch(Vienna river)\n\n"
    "Question: {question}\nGolden answers: {answers}\n"
)


def search_terms(question: str) -> list[tuple[str, str]]:
    """Deterministic candidate search terms for ``question``, as ``(kind, term)``, best guess first:

    * ``keywords``: the question without wh-words, auxiliaries, articles, common prepositions and
      its question mark (``what is nina dobrev nationality?`` -> ``nina dobrev nationality``);
    * ``question``: the question itself, without the question mark;
    * ``entities``: its capitalised phrases (``Darth Vader Star Wars``), when it has any.

    Terms longer than :data:`MAX_TERM_WORDS` words are cut; duplicates are dropped.
    """
    text = " ".join(question.replace("?", " ").split())
    words = [w.strip(",;:\"'") for w in text.split()]
    keywords = [w for w in words if w and w.lower() not in WH_WORDS | AUXILIARIES | FUNCTION_WORDS]
    entities: list[str] = []
    for i, word in enumerate(words):
        capital = bool(word) and (word[0].isupper() or word[0].isdigit())
        if capital and not (i == 0 and word.lower() in WH_WORDS | AUXILIARIES | FUNCTION_WORDS):
            entities.append(word)
    found = [("keywords", " ".join(keywords)), ("question", text), ("entities", " ".join(entities))]
    out: list[tuple[str, str]] = []
    for kind, term in found:
        term = " ".join(term.split()[:MAX_TERM_WORDS])
        if term and term.lower() not in {t.lower() for _, t in out}:
            out.append((kind, term))
    return out


def teacher_terms(endpoint: Any, rows: Sequence[dict], n: int = 3) -> dict[str, list[str]]:
    """The teacher's proposed search terms per row id (its ``WikiSearch(...)`` lines, at most ``n``);
    a request that fails after the endpoint's retries proposes nothing (the deterministic terms remain)."""
    prompts = [TEACHER_QA_PROMPT.format(n=n, question=row["question"], answers="; ".join(row["answers"])) for row in rows]
    answers = endpoint.complete_many(prompts, desc="teacher search terms")
    proposed: dict[str, list[str]] = {}
    failed = 0
    for row, answer in zip(rows, answers):
        if isinstance(answer, EndpointError):
            failed += 1
            proposed[row["id"]] = []
            continue
        terms = []
        for line in answer.splitlines():
            call = parse_call(line, ["WikiSearch"])
            if call is not None and call.argument and call.argument not in terms:
                terms.append(call.argument)
        proposed[row["id"]] = terms[:n]
    if failed:
        log.warning("teacher: %d of %d requests failed; those questions use the deterministic terms only", failed, len(rows))
    return proposed


def _check_endpoint_keys(options: dict) -> None:
    known = {f.name for f in fields(EndpointConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"teacher: unknown key(s) {unknown}; known: {', '.join(sorted(known))} (or kind: {LOCAL_TEACHER} for a local model)")


def teacher_endpoint(options: dict) -> Any:
    """An :class:`~trice.generation.remote.OpenAIEndpoint` from EndpointConfig keys (greedy, short answers by default)."""
    _check_endpoint_keys(options)
    return OpenAIEndpoint(EndpointConfig(**({"temperature": 0.0, "max_tokens": 96} | options)))


LOCAL_TEACHER = "model"
"""The teacher's ``kind`` that names a local model instead of a server."""


@dataclass
class LocalTeacherConfig:
    """A local causal LM as the label teacher (``teacher: {kind: model, model: ...}``), greedy."""

    kind: str = field(default=LOCAL_TEACHER, metadata={"help": LOCAL_TEACHER})
    model: str = field(default="", metadata={"help": "Hub name, local directory or embedded alias of the teacher."})
    max_new_tokens: int = field(default=96, metadata={"help": "New tokens per answer (a few calls, one per line)."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate() call."})
    dtype: str = field(default="float32", metadata={"help": "Weights dtype: float32, bfloat16 or float16."})

    def validate(self) -> None:
        if not self.model:
            raise ValueError("model: required (the teacher's alias or directory)")
        for name in ("max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype: unknown {self.dtype!r}; choose one of float32, bfloat16, float16")


# The few-shot examples are separated by a blank line: where the model starts an example of its own.
TEACHER_STOP = StopRule(markers=(*STOP_MARKERS, "\n\n"))


class LocalTeacher:
    """A local model answering teacher prompts, with the endpoint's ``complete_many`` interface, so
    :func:`teacher_terms` treats both alike. The model loads on first use; each answer ends at the
    first blank line (:data:`TEACHER_STOP`), where the prompt's examples end."""

    def __init__(self, config: LocalTeacherConfig):
        self.config = config
        self._loaded: tuple[Any, Any] | None = None

    def complete_many(self, prompts: Sequence[str], n_workers: int | None = None, desc: str = "teacher") -> list[str]:
        # here, not at the top: it imports torch, needed only when a local teacher is used, not by `trice label` itself
        from trice.generation.decode import generate_responses

        if self._loaded is None:
            self._loaded = models.load_model(self.config.model, dtype=self.config.dtype)
        model, tokenizer = self._loaded
        answers = generate_responses(
            model, tokenizer, list(prompts), self.config.batch_size, desc=desc, stops=[TEACHER_STOP] * len(prompts),
            max_new_tokens=self.config.max_new_tokens, do_sample=False,
        )  # fmt: skip
        return [a or "" for a in answers]


def label_teacher(options: dict) -> Any:
    """The teacher ``options`` describe: a local model (``kind: model``) or an OpenAI-compatible server
    (EndpointConfig keys); both answer ``complete_many(prompts)`` (:func:`teacher_terms`). A local
    model loads on its first prompts."""
    if options.get("kind") == LOCAL_TEACHER:
        return LocalTeacher(build_config(LocalTeacherConfig, options, "teacher"))
    return teacher_endpoint(options)


def check_teacher(options: dict) -> None:
    """Refuse bad teacher options (an error naming the key) before any labelling runs; builds nothing."""
    if options.get("kind") == LOCAL_TEACHER:
        build_config(LocalTeacherConfig, options, "teacher")
    elif options:
        _check_endpoint_keys(options)


def qa_calls(
    rows: Sequence[dict], wiki: Any, search_k: int = 2, teacher: dict[str, list[str]] | None = None, outages: dict[str, str] | None = None
) -> dict[str, tuple[str, str] | None]:
    """Per qa row id: ``(WikiSearch call, kind of term)`` for the first candidate term whose top
    ``search_k`` passages hold a gold answer, or None. ``wiki`` is the WikiSearch tool.
    ``outages`` collects, per question left without a call, the first search that met an outage."""
    found: dict[str, tuple[str, str] | None] = {}
    kinds: Counter[str] = Counter()
    first: dict[str, str] = {}
    for row in rows:
        candidates = [("teacher", t) for t in (teacher or {}).get(row["id"], [])] + search_terms(row["question"])
        found[row["id"]] = None
        for kind, term in candidates:
            call = f"WikiSearch({term})"
            parsed = parse_call(call, ["WikiSearch"])
            if parsed is None or parsed.argument != term:  # an unbalanced parenthesis would not parse back
                continue
            try:
                passages = wiki.passages(term, search_k)
            except ToolError as err:
                if err.kind in OUTAGE_KINDS:
                    kinds[err.kind] += 1
                    first.setdefault(row["id"], tool_error_text(err.kind, str(err)))
                continue
            if any(answer_in_text(p, row["answers"]) for p in passages):
                found[row["id"]] = (call, kind)
                break
    warn_outages(dict(kinds), len(rows))
    if outages is not None:
        outages |= {i: error for i, error in first.items() if found[i] is None}
    return found


def warn_outages(outages: dict[str, int], questions: int) -> None:
    """One warning when tools did not answer some calls made to verify a label: a question left
    without a verified call leaves the training set for the machine's sake, not the model's, so
    labelling again is worth it."""
    if outages:
        kinds = ", ".join(f"{n} {kind}" for kind, n in outages.items())
        log.warning(
            "label: tools did not answer %s call(s) made for %d questions; a question left without a verified "
            "call is dropped (label again once the tool answers)",
            kinds,
            questions,
        )


def executed_calls(rows: Sequence[dict], reader: ReadingModel | None, tools: dict | None, outages: dict[str, str] | None = None) -> dict[str, str | None]:
    """Per row id: the row's reference ``tool_call`` when executing it (and, for mlqa, reading the
    translation) gives a gold answer, else None. ``outages`` collects the calls that met an outage,
    and those whose output the reading endpoint did not read."""
    with_call = [row | {"response": row["tool_call"]} for row in rows if row.get("tool_call")]
    judged = judge_rows(with_call, PER_ROW, reader, tools) if with_call else []
    warn_outages(tool_outages(judged), len(with_call))
    if outages is not None:
        outages |= {row["id"]: failure for row in judged if (failure := machine_failure(row.get("tool_error"), row.get("unread", False)))}
    kept = {row["id"]: row["tool_call"] if row["correct"] and row["used_tool"] else None for row in judged}
    return {row["id"]: kept.get(row["id"]) for row in rows}


def verified_calls(
    rows: Sequence[dict],
    *,
    reader: ReadingModel | None = None,
    tools: dict | None = None,
    search_k: int = 2,
    teacher: dict | None = None,
    wiki: Callable[[], Any] | None = None,
    outages: dict[str, str] | None = None,
) -> dict[str, tuple[str, str] | None]:
    """``(call, source)`` or None per row id, for each row's task (rows may mix tasks).

    ``reader`` reads translations again (mlqa; the probed model); ``tools`` are tool options by tool
    name; ``teacher`` the options of a teacher for qa search terms (:func:`label_teacher`); ``wiki``
    builds the WikiSearch tool (default: from ``tools``). ``outages`` collects, per question left
    without a call because a tool did not answer, that failure (the machine's, not the question's).
    """
    by_task: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_task[row["task"]].append(row)
    out: dict[str, tuple[str, str] | None] = {}
    for task, task_rows in by_task.items():
        if task == "qa":
            tool = wiki() if wiki is not None else tool_registries(tools)(get_task("qa")).get("WikiSearch")
            proposals = teacher_terms(label_teacher(teacher), task_rows) if teacher else None
            for key, value in qa_calls(task_rows, tool, search_k, proposals, outages).items():
                out[key] = None if value is None else (value[0], f"search-term:{value[1]}")
        else:
            for key, call in executed_calls(task_rows, reader, tools, outages).items():
                out[key] = None if call is None else (call, "annotation")
    return out
