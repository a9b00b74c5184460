"""The vocabulary every other package shares, importing only :mod:`trice.utils`: the tool interface
(:mod:`~trice.core.tools`) and the two ways a call is written (the paper's text, a model's native
format: :mod:`~trice.core.native`, :mod:`~trice.core.call_format`), prompt templates and each
task's instructions (:mod:`~trice.core.templates`, :mod:`~trice.core.prompts`), the example schema
and its record readers (:mod:`~trice.core.schema`, :mod:`~trice.core.records`), and where files
live: the data and cache directories (:mod:`~trice.core.paths`) and a run's layout
(:mod:`~trice.core.layout`).

Kept empty on purpose: each module is imported on its own.
"""
