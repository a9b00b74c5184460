"""Datasets: loading (:mod:`trice.data.loaders`), the example schema, the data stage and the download.

Kept empty on purpose: importing any one submodule (e.g. :mod:`trice.data.paths` from retrieval)
must not load every dataset's loader, nor anything that imports back into it.
"""
