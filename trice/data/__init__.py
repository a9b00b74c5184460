"""Datasets: loading (:mod:`trice.data.loaders`), the data stage, the download and its manifest,
chat ``messages`` in and out. The example schema they produce is :mod:`trice.core.schema`.

Kept empty on purpose: importing any one submodule must not load every dataset's loader.
"""
