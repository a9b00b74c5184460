"""A task's responses from a model: the backends that prompt it with a task's questions (local
transformers, vLLM, an OpenAI-compatible endpoint), ``trice generate``, and the few-shot baseline's
prompts. Running the model itself (loading, decoding, endpoints) is :mod:`trice.generation`.
"""
