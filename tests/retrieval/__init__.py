"""trice.retrieval: corpora, the bm25, dense and remote retrievers, the index cache."""
