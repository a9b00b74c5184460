"""The T-REx evidence sentences, their object restored, as a passage file for the QA tool's corpus.

The original QA tool (Atlas) retrieved from a Wikipedia index, which holds the sentences LAMA's
T-REx facts were aligned to. The data has those sentences with the object masked
(``lama_trex/lama_original_bertknn/TREx/P*.jsonl``, field ``masked_sentence``) and the object's
surface form beside it (``obj_surface``): putting it back gives the Wikipedia sentence, so the QA
tool can find ``Allan Peiper (born 26 April 1960 in Alexandra, Victoria, Australia) ...`` when asked
``Where was Allan Peiper born?``, as Atlas could. (The cloze *questions* are cut from the same
sentences, so these passages hold their answers, as Wikipedia held them for Atlas: a test of
calling the tool well, not of a closed book.)

Each distinct restored sentence is one passage, titled with the fact's subject; ids are
``trex:<fact uuid>#<evidence number>`` and stable. The file is written once under the trice cache
(``$TRICE_CACHE_DIR/corpora``), named by a hash of the source files' contents, atomically; the
retrieval layer takes it as an ``extra_passages`` file and caches its own index over it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

from trice.core.paths import resolve_data_dir
from trice.core.records import nonblank_lines
from trice.core.paths import cache_dir
from trice.utils.io import DataError, check_fields, read_jsonl, write_jsonl
from trice.retrieval.corpus import Passage
from trice.retrieval.index_cache import file_digest

log = logging.getLogger(__name__)

FORMAT = 1
"""Bump when the passages made from a fact change, so a cached file is not reused."""
SOURCE = Path("lama_trex") / "lama_original_bertknn" / "TREx"
MASK = "[MASK]"
FACT_FIELDS = {"uuid": str, "sub_label": str, "evidences": (list, dict)}
EVIDENCE_FIELDS = {"masked_sentence": str, "obj_surface": str}


def source_files(data_dir: str | Path | None = None) -> list[Path]:
    """The fact files, sorted (``<data_dir>/lama_trex/lama_original_bertknn/TREx/P*.jsonl``)."""
    root = resolve_data_dir(data_dir) / SOURCE
    files = sorted(root.glob("P*.jsonl"))
    if not files:
        raise FileNotFoundError(f"T-REx evidence files not found: {root / 'P*.jsonl'}")
    return files


def restored(masked_sentence: str, obj_surface: str) -> str:
    """The evidence sentence with every mask replaced by the object's surface form, whitespace collapsed."""
    return " ".join(masked_sentence.replace(MASK, obj_surface).split())


def trex_passages(files: list[Path]) -> Iterator[Passage]:
    """One passage per distinct restored evidence sentence of ``files`` (first occurrence kept)."""
    seen: set[str] = set()
    for path in files:
        for line, fact in zip(nonblank_lines(path), read_jsonl(path, FACT_FIELDS)):
            for number, evidence in enumerate(fact["evidences"], start=1):
                try:
                    check_fields(evidence, EVIDENCE_FIELDS, path, line)
                except DataError as err:
                    raise DataError(path, line, f"evidences[{number}].{err.field}", err.problem) from None
                text = restored(evidence["masked_sentence"], evidence["obj_surface"])
                if MASK in evidence["obj_surface"] or not text or text in seen:
                    continue
                seen.add(text)
                yield Passage(f"trex:{fact['uuid']}#{number}", " ".join(fact["sub_label"].split()), text)


def trex_corpus_file(data_dir: str | Path | None = None, cache: str | Path | None = None) -> Path:
    """The passage JSONL of the T-REx evidence (``{"id", "title", "text"}`` per line), written once.

    ``cache`` is the directory to keep it in (default ``$TRICE_CACHE_DIR/corpora``).
    """
    files = source_files(data_dir)
    digest = hashlib.sha256(f"{FORMAT}:".encode() + "".join(file_digest(f) for f in files).encode()).hexdigest()[:20]
    out = (Path(cache) if cache is not None else cache_dir() / "corpora") / f"trex-evidence-{digest}.jsonl"
    if not out.is_file():
        log.info("writing the T-REx evidence passages to %s (once)", out)
        write_jsonl(out, (p.to_dict() for p in trex_passages(files)))  # atomic: a killed write leaves nothing
    return out
