"""From a trained run to recommendations: :func:`load_run` (the model of a
run folder, answering in raw ids), :func:`export_run` (embedding tables
for other systems), :class:`ItemIndex` (a faiss retrieval index) and
:func:`make_server` (a JSON-over-HTTP service).

This sits above the command line's name table, which it uses to rebuild
a run's model; ``pyg-recsys recommend``, ``export`` and ``serve`` are thin
commands over it.
"""
from pyg_recsys.serving.export import embedding_tables, export_run, read_export
from pyg_recsys.serving.http import make_server
from pyg_recsys.serving.index import ItemIndex, index_run
from pyg_recsys.serving.run import LoadedRun, UnknownIdError, load_run

__all__ = ['LoadedRun', 'UnknownIdError', 'load_run', 'embedding_tables',
           'export_run', 'read_export', 'ItemIndex', 'index_run',
           'make_server']
