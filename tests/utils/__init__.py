"""trice.utils: jsonl and json io, typed configs, output ownership, statistics."""
