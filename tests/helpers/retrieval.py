"""A tiny wiki corpus in the real files' formats and the replies of fake search servers, shared by the
retrieval tests, the WikiSearch tool's tests and the retrieval benchmark's tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fake_servers import Reply

AMAZON = "The Amazon River in South America is the largest river by discharge volume of water in the world. "
ARTICLES = {
    "Marie Curie": "Marie Curie was a Polish and naturalised-French physicist and chemist who conducted pioneering "
    "research on radioactivity. She was the first woman to win a Nobel Prize.",
    "Mount Everest": "Mount Everest is Earth's highest mountain above sea level, located in the Mahalangur Himal "
    "sub-range of the Himalayas. The China-Nepal border runs across its summit point.",
    "Python (programming language)": "Python is a high-level, general-purpose programming language. Its design "
    "philosophy emphasizes code readability with the use of significant indentation.",
    "Amazon River": AMAZON * 14,  # 252 words -> 3 passages of 84
    "Marathon": "Marathon runners train by running long distances every week before a race.",
    "Coffee": "Coffee is a beverage brewed from roasted coffee beans of the Coffea plant.",
}
MONA = {"title": "Mona Lisa", "text": "The Mona Lisa is a half-length portrait painting by Italian artist Leonardo da Vinci.", "isgold": True}
ORACLE = [
    {"question": "who painted the mona lisa", "answers": ["Leonardo da Vinci"], "ctxs": [MONA]},
    {"question": "mona lisa painter", "answers": ["Leonardo da Vinci"], "ctxs": [MONA]},  # same gold passage
    {
        "question": "when is the next deadpool movie being released",
        "answers": ["May 18, 2018"],
        "ctxs": [
            {"title": "Noise", "text": "Not the gold passage.", "isgold": False},
            {"title": "Deadpool 2", "text": "Deadpool 2 is scheduled to be released on May 18, 2018.", "isgold": True},
        ],
    },
]


def write_corpus(root: Path, articles: dict[str, str] = ARTICLES, oracle: list[dict] = ORACLE) -> Path:
    """A corpus directory laid out like ``wiki_corpus/``, in the real files' formats."""
    (root / "ovos_vital_articles").mkdir(parents=True, exist_ok=True)
    (root / "nq_open_oracle").mkdir(parents=True, exist_ok=True)
    summaries = {t: {"title": t, "extract": x, "description": "", "topic": "Test"} for t, x in articles.items()}
    (root / "ovos_vital_articles" / "summaries_en-us.json").write_text(json.dumps(summaries), encoding="utf-8")
    with gzip.open(root / "nq_open_oracle" / "nq-open-oracle.jsonl.gz", "wt", encoding="utf-8") as fh:
        for row in oracle:
            fh.write(json.dumps(row) + "\n")
    return root


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "wiki_corpus")


def json_reply(obj: Any, status: int = 200) -> Reply:
    return status, json.dumps(obj).encode(), "application/json"


def colbert_ok(hit: int, path: str, request: dict) -> Reply:
    k = int(request["k"])
    topk = [{"text": f"Passage {i} | about {request['query']}", "pid": 100 + i, "prob": 1 / (i + 1)} for i in range(k + 3)]
    return json_reply({"topk": topk})


def es_ok(hit: int, path: str, request: dict) -> Reply:
    query = request["query"]["match"]["text"]["query"]
    hits = [{"_id": f"d{i}", "_score": 10.0 - i, "_source": {"title": f"T{i}", "text": f"about {query}"}} for i in range(request["size"])]
    return json_reply({"took": 1, "hits": {"total": {"value": 99}, "hits": hits}})
