"""An OpenAI-compatible server as a tool's model (the QA reader, the translator).

The tool's ``endpoint`` options are checked by name against :class:`trice.generation.remote.EndpointConfig`,
decoding is greedy with the tool's token budget unless the options say otherwise, and the server's
failures come back as typed :class:`ToolError`s, so a dead or hanging server costs one bounded,
reported tool error and never a crash. (:mod:`trice.generation.remote` is imported on first use: it brings in
the ``openai`` client, which a tool without a server does not need.)
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from trice.generation.remote import EndpointConfig, EndpointError, OpenAIEndpoint
from trice.core.tools import ToolError

# EndpointError kinds as a generating tool reports them: a malformed answer is the tool failing
# (runtime), a rejected request means the server cannot serve it (unavailable)
ERROR_KINDS = {"unavailable": "unavailable", "timeout": "timeout", "bad_response": "runtime", "too_large": "limit", "rejected": "unavailable"}


def open_endpoint(options: dict[str, Any], max_tokens: int) -> Any:
    """An :class:`trice.generation.remote.OpenAIEndpoint` from a tool's ``endpoint`` options; an unknown
    option is a ``ValueError`` naming it and the known ones."""
    known = {f.name for f in fields(EndpointConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"endpoint: unknown option(s) {unknown}; known: {', '.join(sorted(known))}")
    return OpenAIEndpoint(EndpointConfig(**({"max_tokens": max_tokens, "temperature": 0.0} | options)))


def complete(endpoint: Any, prompt: str, who: str, **kwargs: Any) -> str:
    """``endpoint.complete(prompt, **kwargs)``, its failure a :class:`ToolError` that names ``who``."""
    try:
        return endpoint.complete(prompt, **kwargs)
    except EndpointError as err:
        raise ToolError(ERROR_KINDS[err.kind], f"{who}: {err}") from None
