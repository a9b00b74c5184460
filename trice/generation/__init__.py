"""Getting responses from a model: the generation config, local transformers decoding (decode) and
the other backends (vLLM, OpenAI-compatible servers, few-shot prompting), embedded model aliases and
adapters, stopping after a tool call, and exporting a trained adapter.
"""
