"""From a trained run to recommendations: :func:`load_run` (the model of a
run folder, answering in raw ids), :func:`export_run` (embedding tables
for other systems), :class:`ItemIndex` (a faiss retrieval index) and
:func:`make_server` (a JSON-over-HTTP service).

The pieces live where their imports put them: run loading, export and
the HTTP service use the command line's name table to rebuild a run's
model (:mod:`pyg_recsys.cli.runs`, :mod:`pyg_recsys.cli.export`,
:mod:`pyg_recsys.cli.http`; ``pyg-recsys recommend``, ``export`` and
``serve`` are thin commands over them), the index is an operator over
embeddings (:mod:`pyg_recsys.ops.index`).  This module gathers them for
Python users.
"""
from pyg_recsys.cli.export import embedding_tables, export_run, read_export
from pyg_recsys.cli.http import make_server
from pyg_recsys.cli.runs import LoadedRun, UnknownIdError, load_run
from pyg_recsys.ops.index import ItemIndex

__all__ = ['LoadedRun', 'UnknownIdError', 'load_run', 'embedding_tables',
           'export_run', 'read_export', 'ItemIndex',
           'make_server']
