"""LAMA T-REx as :class:`Example` records (task ``"lama"``).

Source: ``lama_trex/lama_original_bertknn/TREx/P*.jsonl``, one fact per line (subject, relation,
object) with Wikipedia evidence sentences in which the object is masked. As in TRICE, the question
is an evidence sentence cut at the masked object and ending in `` ?``::

    "Allan Peiper (born 26 April 1960 in [MASK], Australia) is ..."  ->  "Allan Peiper (born 26 April 1960 in ?"

The evidence used is the first one (in file order) that masks the object exactly once, keeps at
least :data:`MIN_PREFIX_WORDS` words before the mask (a sentence starting with the mask leaves no
question) and does not name the answer before the mask (it would give it away). Facts without such
an evidence are skipped and counted.

The gold answers are the object's label and, when it differs, the surface form the chosen sentence
used (``Scotland`` / ``Scottish``): the cut sentence asks for exactly that word.

The reference tool call is ``QA(<natural question>)``, built from the subject with one question
template per relation (:data:`RELATION_QUESTIONS`, e.g. P19 ``Where was [X] born?``); the labelling
stage keeps it only when the QA tool answers it right. A subject with an unbalanced parenthesis
(``Sunn O)))``) gets no call, since the call would not parse back. No split ships, so the facts are split by
:func:`trice.core.schema.split_seeded` on their ids.
"""

from __future__ import annotations

from pathlib import Path

from trice.core.paths import require_file
from trice.core.records import check_unique, nonblank_lines
from trice.core.schema import Example, LoadedDataset, reference_call, split_seeded
from trice.utils.io import DataError, check_fields, read_jsonl

TASK = "lama"
DATASET = "trex"
TOOL = "QA"
MASK = "[MASK]"
MIN_PREFIX_WORDS = 3
FACT_FIELDS = {"uuid": str, "sub_label": str, "obj_label": str, "predicate_id": str, "evidences": (list, dict)}
EVIDENCE_FIELDS = {"masked_sentence": str, "obj_surface": str}

# One natural question per relation, [X] = the subject; every relation of LAMA's T-REx and
# Google-RE-style extras listed in the source's relations.jsonl (46) has one.
RELATION_QUESTIONS: dict[str, str] = {
    "P19": "Where was [X] born?",
    "P20": "Where did [X] die?",
    "P279": "What is [X] a subclass of?",
    "P37": "What is the official language of [X]?",
    "P413": "What position does [X] play?",
    "P166": "What award did [X] receive?",
    "P449": "On which network was [X] originally aired?",
    "P69": "Where was [X] educated?",
    "P47": "Which country or region shares a border with [X]?",
    "P138": "Who or what is [X] named after?",
    "P364": "What is the original language of [X]?",
    "P54": "Which sports team does [X] play for?",
    "P463": "What organization is [X] a member of?",
    "P101": "What field does [X] work in?",
    "P1923": "Which team participated in [X]?",
    "P106": "What is the occupation of [X]?",
    "P527": "What does [X] consist of?",
    "P102": "Which political party is [X] a member of?",
    "P530": "Which country does [X] maintain diplomatic relations with?",
    "P176": "Which company produces [X]?",
    "P27": "What country is [X] a citizen of?",
    "P407": "In which language was [X] written?",
    "P30": "On which continent is [X] located?",
    "P178": "Who developed [X]?",
    "P1376": "What is [X] the capital of?",
    "P131": "In which administrative region is [X] located?",
    "P1412": "What language does [X] speak?",
    "P108": "Who does [X] work for?",
    "P136": "What genre of music does [X] play?",
    "P17": "In which country is [X] located?",
    "P39": "What position did [X] hold?",
    "P264": "Which record label is [X] signed to?",
    "P276": "Where is [X] located?",
    "P937": "Where did [X] work?",
    "P140": "What religion is [X] affiliated with?",
    "P1303": "What instrument does [X] play?",
    "P127": "Who owns [X]?",
    "P103": "What is the native language of [X]?",
    "P190": "Which city is the twin city of [X]?",
    "P1001": "In which jurisdiction does [X] apply?",
    "P31": "What is [X] an instance of?",
    "P495": "In which country was [X] created?",
    "P159": "Where is the headquarters of [X]?",
    "P36": "What is the capital of [X]?",
    "P740": "Where was [X] founded?",
    "P361": "What is [X] part of?",
}


def relation_question(relation: str, subject: str) -> str:
    """The natural question asking for ``relation``'s object of ``subject``; KeyError for a relation
    without a template."""
    return RELATION_QUESTIONS[relation].replace("[X]", " ".join(subject.split()))


def cloze_question(masked_sentence: str) -> str | None:
    """The sentence cut at its one ``[MASK]``, ending in `` ?``; None when it masks more or less than
    once or keeps fewer than :data:`MIN_PREFIX_WORDS` words."""
    if masked_sentence.count(MASK) != 1:
        return None
    prefix = " ".join(masked_sentence.split(MASK)[0].split())
    if len(prefix.split()) < MIN_PREFIX_WORDS:
        return None
    return f"{prefix} ?"


def _answers(obj_label: str, obj_surface: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a for a in (" ".join(obj_label.split()), " ".join(obj_surface.split())) if a))


def _pick_evidence(fact: dict, path: Path, line: int) -> tuple[str, tuple[str, ...]] | None:
    """(question, answers) from the first usable evidence of ``fact``, or None."""
    for number, evidence in enumerate(fact["evidences"], start=1):
        try:
            check_fields(evidence, EVIDENCE_FIELDS, path, line)
        except DataError as err:
            raise DataError(path, line, f"evidences[{number}].{err.field}", err.problem) from None
        question = cloze_question(evidence["masked_sentence"])
        answers = _answers(fact["obj_label"], evidence["obj_surface"])
        if question is None or not answers:
            continue
        if any(a.lower() in question.lower() for a in answers):
            continue
        return question, answers
    return None


def _fact_file(path: Path, seen: set[str]) -> tuple[list[Example], int]:
    examples, skipped = [], 0
    for line, fact in zip(nonblank_lines(path), read_jsonl(path, FACT_FIELDS)):
        relation = fact["predicate_id"]
        if relation not in RELATION_QUESTIONS:
            raise DataError(path, line, "predicate_id", f"no question template for relation {relation!r} in RELATION_QUESTIONS")
        check_unique(seen, fact["uuid"], path, line, "uuid")
        picked = _pick_evidence(fact, path, line)
        if picked is None:
            skipped += 1
            continue
        question, answers = picked
        examples.append(
            Example(
                id=f"{DATASET}-{relation}-{fact['uuid']}",
                dataset=DATASET,
                task=TASK,
                question=question,
                answers=answers,
                tool_call=reference_call(TOOL, relation_question(relation, fact["sub_label"])),
            )
        )
    return examples, skipped


def load_trex(data_dir: str | Path, *, seed: int = 0, test_fraction: float = 0.3) -> LoadedDataset:
    """T-REx's facts that yield a cloze question, split by hashed id; ``skipped`` counts the rest."""
    root = Path(data_dir) / "lama_trex" / "lama_original_bertknn" / "TREx"
    require_file(root.parent / "relations.jsonl", "LAMA T-REx")
    files = sorted(root.glob("P*.jsonl"))
    if not files:
        raise FileNotFoundError(f"LAMA T-REx fact files not found: {root / 'P*.jsonl'}")
    examples, skipped, seen = [], 0, set()
    for path in files:
        file_examples, file_skipped = _fact_file(path, seen)
        examples += file_examples
        skipped += file_skipped
    return split_seeded(examples, seed, test_fraction, skipped)


LAMA_LOADERS = {"trex": load_trex}
