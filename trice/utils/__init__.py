"""Plumbing every phase shares: JSON/JSONL I/O with located errors (io), config dataclasses from flags
and bounded YAML (config), output ownership (outputs), deadlines and retries (patience), a disk cache
(diskcache) and the 95% intervals of every reported number (stats).
"""
