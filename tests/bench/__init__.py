"""The scripts under bench/: result records, the eight-set tables, the retrieval benchmark."""
