"""The paper's four tools, one module each (``calculator``, ``wikisearch``, ``qa``, ``translator``),
their output cache, and :mod:`trice.tools.factories`, which builds them by name into a
:class:`~trice.core.tools.ToolRegistry`. The interface every tool implements is :mod:`trice.core.tools`.

Kept empty on purpose: importing one tool must not load the models and indexes the others need.
"""
