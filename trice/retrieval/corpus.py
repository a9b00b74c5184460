"""The passage corpus WikiSearch searches: Wikipedia text cut into ~100-word passages with stable ids.

Why passages and not whole articles: the LM reads the top two passages back with the question
(the TRICE paper), so a passage must be short enough for a small model's context and long enough to hold
an answer; DPR's 100-word blocks are the usual compromise and what the NQ oracle passages already are.

Sources (under ``<data_dir>/wiki_corpus``, see the data MANIFEST):

* ``ovos_vital_articles``: ``summaries_en-us.json``, a JSON object ``{key: {"title", "extract", ...}}``
  of 10,033 article leads. Each lead is cut into ``words / passage_words`` (rounded, at least one)
  nearly equal chunks, so passages stay near ``passage_words`` and no tiny tail is left over.
  Ids are ``vital:<article key>#<chunk>``: stable however the file is ordered.
* ``nq_open_oracle``: ``nq-open-oracle.jsonl.gz``, one NQ-open question per line with its gold
  passage in ``ctxs`` (``isgold``). The passage is kept whole (it is already ~100 words); a passage
  that is gold for several questions is kept once. Ids are ``nq-oracle:<line>``.
* any number of your own JSONL files of ``{"id", "title", "text"}`` objects (``extra_passages``),
  taken as they are.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trice.core.paths import resolve_data_dir
from trice.utils.io import DataError, iter_jsonl, read_json

SOURCES: dict[str, str] = {"ovos_vital_articles": "ovos_vital_articles/summaries_en-us.json", "nq_open_oracle": "nq_open_oracle/nq-open-oracle.jsonl.gz"}
"""Known corpus sources: name -> file under ``<data_dir>/wiki_corpus``."""


@dataclass(frozen=True)
class Passage:
    """One retrievable unit. ``text`` is the passage body; ``title`` the article it comes from."""

    id: str
    title: str
    text: str

    @property
    def display(self) -> str:
        """What the LM reads: ``Title | text``, the shape of the ColBERTv2 Wikipedia-abstracts passages
        the original TRICE read back (a title often names the answer's subject)."""
        return f"{self.title} | {self.text}" if self.title else self.text

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class CorpusConfig:
    """Which passages to index and how to cut them."""

    corpus_dir: str | None = field(
        default=None, metadata={"help": "Directory holding the corpus sources (else <data_dir>/wiki_corpus, data_dir from $TRICE_DATA_DIR or ../shared/data)."}
    )
    sources: list[str] = field(default_factory=lambda: list(SOURCES), metadata={"help": f"Built-in sources to index, any of: {', '.join(SOURCES)}."})
    extra_passages: list[str] = field(default_factory=list, metadata={"help": 'Your own JSONL files of {"id", "title", "text"} passages, indexed as they are.'})
    passage_words: int = field(default=100, metadata={"help": "Target passage length in words when cutting article leads."})

    def validate(self) -> None:
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown:
            raise ValueError(f"unknown corpus source(s) {unknown}; known: {', '.join(SOURCES)}")
        if not self.sources and not self.extra_passages:
            raise ValueError("the corpus is empty: name at least one source or extra_passages file")
        if self.passage_words < 10:
            raise ValueError(f"passage_words must be >= 10, got {self.passage_words}")

    def files(self) -> list[Path]:
        """Every file the corpus is read from, in a fixed order (what the index cache is keyed on)."""
        self.validate()
        paths: list[Path] = []
        if self.sources:
            root = Path(self.corpus_dir).expanduser() if self.corpus_dir else resolve_data_dir() / "wiki_corpus"
            paths += [root / SOURCES[name] for name in self.sources]
        paths += [Path(p).expanduser() for p in self.extra_passages]
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"corpus file not found: {path}")
        return paths


def split_words(text: str, passage_words: int) -> list[str]:
    """``text`` cut into ``words / passage_words`` (rounded, at least 1) chunks of nearly equal word counts."""
    words = text.split()
    if not words:
        return []
    n = max(1, int(len(words) / passage_words + 0.5))  # half up: 250 words at 100 -> 3 chunks
    bounds = [len(words) * i // n for i in range(n + 1)]
    return [" ".join(words[bounds[i] : bounds[i + 1]]) for i in range(n)]


def vital_articles(path: Path, passage_words: int) -> Iterator[Passage]:
    """Passages of the vital-article leads (``summaries_en-us.json``)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, None, None, f"expected a JSON object of articles, got {type(data).__name__}")
    for key, article in data.items():
        if not isinstance(article, dict) or not isinstance(article.get("extract"), str):
            raise DataError(path, None, key, "expected an object with a string 'extract'")
        title = article.get("title") if isinstance(article.get("title"), str) else key
        for i, chunk in enumerate(split_words(article["extract"], passage_words)):
            yield Passage(f"vital:{key}#{i}", title, chunk)


def nq_oracle(path: Path) -> Iterator[Passage]:
    """The gold passages of ``nq-open-oracle.jsonl.gz``, each once."""
    seen: set[tuple[str, str]] = set()
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, lineno, None, f"malformed JSON ({exc.msg})") from None
            ctxs = row.get("ctxs") if isinstance(row, dict) else None
            if not isinstance(ctxs, list):
                raise DataError(path, lineno, "ctxs", "expected a list of passages")
            for ctx in ctxs:
                if not (isinstance(ctx, dict) and ctx.get("isgold") and isinstance(ctx.get("text"), str)):
                    continue
                title = ctx.get("title") if isinstance(ctx.get("title"), str) else ""
                text = " ".join(ctx["text"].split())
                if (title, text) in seen or not text:
                    continue
                seen.add((title, text))
                yield Passage(f"nq-oracle:{lineno}", title, text)


def passages_jsonl(path: Path) -> Iterator[Passage]:
    """Passages from a JSONL file of ``{"id", "title", "text"}`` objects (ids unique within the file)."""
    for row in iter_jsonl(path, {"id": str, "title": str, "text": str}, unique="id"):
        yield Passage(row["id"], row["title"], row["text"])


def load_corpus(config: CorpusConfig) -> list[Passage]:
    """All passages of the configured sources, in a fixed order; ids must be unique across files."""
    files = config.files()
    readers: list[Iterable[Passage]] = []
    index = 0
    for name in config.sources:
        path = files[index]
        readers.append(vital_articles(path, config.passage_words) if name == "ovos_vital_articles" else nq_oracle(path))
        index += 1
    readers += [passages_jsonl(path) for path in files[index:]]
    passages: list[Passage] = []
    ids: set[str] = set()
    for reader in readers:
        for passage in reader:
            if passage.id in ids:
                raise ValueError(f"passage id {passage.id!r} appears twice in the corpus ({', '.join(map(os.fspath, files))})")
            ids.add(passage.id)
            passages.append(passage)
    if not passages:
        raise ValueError(f"the corpus has no passages ({', '.join(map(os.fspath, files))})")
    return passages
