"""Translation quality of the translator tool on XQuAD's aligned questions.

XQuAD's questions are translations of the same English questions, aligned by id, so the English
question is a reference translation for the Chinese, Vietnamese and German ones. For ``--n``
questions (the same ids in every language, drawn from the mlqa test pool) this translates each
language's question into English with the chosen backend and scores it against the English
question with sacrebleu: corpus chrF and BLEU, plus the same scores for the untranslated question
(a floor: names and numbers match without any translation) and the share of outputs that copied
the source unchanged.

Prints one JSON object and a one-line summary; ``--output`` also writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

from trice.data.mlqa import XQUAD_LANGUAGES, load_xquad, xquad_questions
from trice.core.paths import resolve_data_dir
from trice.core.schema import sample
from trice.utils.io import write_json
from trice.tools.translator import Translator, TranslatorConfig


def main() -> None:
    import sacrebleu

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--languages", nargs="+", default=["zh", "vi", "de"], choices=sorted(XQUAD_LANGUAGES))
    parser.add_argument("--n", type=int, default=100, help="questions per language (the same ids in each)")
    parser.add_argument("--backend", default="gemma", choices=["gemma", "hf", "endpoint"])
    parser.add_argument("--model", default="", help="backend model (default: the backend's own)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--endpoint", default="{}", help="endpoint backend: EndpointConfig fields as JSON")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=None, help="also write the JSON here")
    args = parser.parse_args()

    data_dir = resolve_data_dir(args.data_dir)
    pool = load_xquad(data_dir, language="zh").test  # the split is by question id, the same in every language
    ids = [e.id.rsplit("-", 1)[1] for e in sample(pool, args.n, 0)]
    english = xquad_questions(data_dir, "en")
    references = [english[i] for i in ids]

    result = {
        "measure": "translation of XQuAD questions into English, scored against the aligned English question",
        "backend": args.backend,
        "model": args.model or "(backend default)",
        "n_per_language": len(ids),
        "question_ids": "first n of the mlqa test pool in its seeded order (seed 0)",
        "machine": f"{platform.machine()}, torch threads per OMP_NUM_THREADS; times include load from other processes",
        "languages": {},
    }
    for lang in args.languages:
        name = XQUAD_LANGUAGES[lang]
        config = TranslatorConfig(
            backend=args.backend,
            model=args.model,
            source_language=name,
            batch_size=args.batch_size,
            endpoint=json.loads(args.endpoint),
            cache_dir="",  # time the model, not the tool's output cache
        )
        tool = Translator.from_options(**vars(config))
        in_language = xquad_questions(data_dir, lang)
        sources = [in_language[i] for i in ids]
        tool.translate_many(sources[:1])  # load the model outside the timing
        t0 = time.perf_counter()
        hypotheses = tool.translate_many(sources)
        seconds = time.perf_counter() - t0
        result["languages"][lang] = {
            "language": name,
            "chrF": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 1),
            "BLEU": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 1),
            "untranslated_chrF": round(sacrebleu.corpus_chrf(sources, [references]).score, 1),
            "untranslated_BLEU": round(sacrebleu.corpus_bleu(sources, [references]).score, 1),
            "copied_source": round(sum(h.strip() == s.strip() for h, s in zip(hypotheses, sources)) / len(ids), 3),
            "seconds_per_question": round(seconds / len(ids), 2),
            "examples": [{"id": i, "source": s, "translation": h, "reference": r} for i, s, h, r in list(zip(ids, sources, hypotheses, references))[:5]],
        }
        print(f"{lang}: chrF {result['languages'][lang]['chrF']}", flush=True)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.output:
        write_json(args.output, result)
    summary = ", ".join(f"{lang} chrF {r['chrF']} / BLEU {r['BLEU']} (untranslated {r['untranslated_chrF']})" for lang, r in result["languages"].items())
    print(f"translator ({args.backend}) on {len(ids)} XQuAD questions per language: {summary}")


if __name__ == "__main__":
    main()
