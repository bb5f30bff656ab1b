"""Embedding tables of a trained run, for systems without this package.

:func:`export_run` writes one table per node type (``user``, ``item``;
``entity`` and ``relation`` for knowledge-graph models), each row a raw id
and its vector:

* with ``pyarrow`` (the ``serve`` extra): ``<type>.parquet`` with the
  columns ``id`` (the raw id, as text) and ``embedding`` (a fixed-size
  list of float32);
* without it: ``<type>.npy`` (``[n, d]`` float32) and ``<type>_ids.json``
  (the raw ids in row order).

``manifest.json`` names the files, the model, the run, the dimension, the
score (``dot``: a user's score for an item is the inner product of their
rows) and the format, so a loader needs nothing else.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pyg_recsys.cli.tasks import UserError
from pyg_recsys.io import atomic_write, atomic_write_text

log = logging.getLogger(__name__)

FORMATS = ('parquet', 'npy')
#: how a model scores with its tables, where it is not their inner product
SCORES = {'transe': '-||h + r - t||_p (TransE)',
          'tagnn': 'not a plain dot product: TAGNN\'s session vector '
                   'depends on the candidate item (the item table is its '
                   'item embeddings)'}


def embedding_tables(model: torch.nn.Module) -> dict[str, Tensor]:
    """The final embedding tables of a model by node type, float32 on the
    CPU: ``embeddings()`` (user, item) of the pairwise rankers (after
    propagation for the graph models; PinSage's item vectors and its
    users' means), the item table of the session models, the entity and
    relation tables of TransE.

    Raises:
        UserError: For models without embedding tables (popularity,
            ItemKNN) or whose vectors do not score by inner product.
    """
    name = type(model).__name__
    with torch.no_grad():
        if hasattr(model, 'embeddings'):
            user, item = model.embeddings()
            out = {'user': user, 'item': item}
            counts = getattr(getattr(model, 'embedding', None),
                             'num_nodes', None)
            if isinstance(counts, dict) and len(counts) > 2:
                # node types beyond users and items (a knowledge graph's
                # entities), after them in the model's node order; the
                # output embeddings() just computed, from the cache
                full, start = model.all_embeddings(), 0
                for kind, n in counts.items():
                    if kind not in out:
                        out[kind] = full[start:start + n]
                    start += n
        elif hasattr(model, 'item_weight'):  # session models
            out = {'item': model.item_weight()}
        elif name == 'TransE':
            out = {'entity': model.entity.weight,
                   'relation': model.relation.weight}
        else:
            raise UserError(
                f'{name} has no embedding tables to export (its scores '
                f'are not an inner product of per-node vectors); use '
                f'load_run(...).recommend instead')
    return {k: v.detach().float().cpu().contiguous() for k, v in out.items()}


def _have_pyarrow() -> bool:
    from pyg_recsys import typing as pt
    return pt.WITH_PYARROW


def export_run(run: Any, out: str | Path, fmt: str | None = None
               ) -> dict[str, Any]:
    """Writes the embedding tables of a loaded run into ``out``.

    Args:
        run: A :class:`~pyg_recsys.serving.LoadedRun`.
        out: The folder to write (created; files of an earlier export of
            the same names are replaced atomically).
        fmt: ``'parquet'`` (needs ``pyarrow``), ``'npy'``, or ``None``:
            Parquet where ``pyarrow`` is installed, else NumPy.

    Returns:
        The manifest written to ``out/manifest.json``.
    """
    if fmt is None:
        fmt = 'parquet' if _have_pyarrow() else 'npy'
    if fmt not in FORMATS:
        raise UserError(f'unknown export format {fmt!r}; use one of '
                        f'{FORMATS}')
    if fmt == 'parquet' and not _have_pyarrow():
        raise UserError('--format parquet needs pyarrow (pip install '
                        'pyarrow, or the pyg_recsys[serve] extra); or use '
                        '--format npy')
    tables = run.tables()
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise UserError(f'--out {out} is a file, not a folder')
    if out == run.path or run.path in out.parents:
        raise UserError(f'--out {out} is inside the run folder; export '
                        f'elsewhere')
    for kind, table in tables.items():
        ids = run.ids.get(kind)
        if ids is None:
            ids = np.arange(table.size(0))
        if len(ids) != table.size(0):
            raise UserError(f'{run.path}: {len(ids)} {kind} ids for a '
                            f'{table.size(0)}-row table; retrain the run')
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for kind, table in tables.items():
        ids = run.ids.get(kind)
        ids = (np.arange(table.size(0)) if ids is None
               else np.asarray(ids))
        files[kind] = _write_table(out, kind, ids, table.numpy(), fmt)
    manifest = dict(
        format=fmt, model=run.args.model, dataset=run.args.dataset,
        task=run.task, run=str(run.path),
        dim=int(next(iter(tables.values())).size(1)),
        score=SCORES.get(run.args.model, 'dot'),
        tables={k: dict(rows=int(t.size(0)), **files[k])
                for k, t in tables.items()})
    atomic_write_text(json.dumps(manifest, indent=2),
                      out / 'manifest.json')
    return manifest


def _write_table(out: Path, kind: str, ids: np.ndarray, table: np.ndarray,
                 fmt: str) -> dict[str, str]:
    text_ids = [str(i) for i in ids.tolist()]
    if fmt == 'parquet':
        import pyarrow as pa
        import pyarrow.parquet as pq
        flat = pa.array(table.reshape(-1), type=pa.float32())
        emb = pa.FixedSizeListArray.from_arrays(flat, table.shape[1])
        data = pa.table({'id': pa.array(text_ids, type=pa.string()),
                         'embedding': emb})
        with atomic_write(out / f'{kind}.parquet') as f:
            pq.write_table(data, f)
        return {'file': f'{kind}.parquet'}
    with atomic_write(out / f'{kind}.npy') as f:
        np.save(f, table.astype(np.float32))
    atomic_write_text(json.dumps(text_ids), out / f'{kind}_ids.json')
    return {'file': f'{kind}.npy', 'ids': f'{kind}_ids.json'}


def read_export(folder: str | Path) -> dict[str, tuple[list[str],
                                                        np.ndarray]]:
    """The tables of an export folder, ``{type: (raw ids, [n, d] array)}``
    (what another system does with the files; used by the tests)."""
    folder = Path(folder)
    manifest = json.loads((folder / 'manifest.json').read_text())
    out = {}
    for kind, meta in manifest['tables'].items():
        if manifest['format'] == 'parquet':
            import pyarrow.parquet as pq
            t = pq.read_table(folder / meta['file'])
            ids = t.column('id').to_pylist()
            emb = np.asarray(t.column('embedding').combine_chunks()
                             .flatten()).reshape(len(ids), -1)
        else:
            emb = np.load(folder / meta['file'])
            ids = json.loads((folder / meta['ids']).read_text())
        out[kind] = (ids, emb)
    return out


__all__ = ['FORMATS', 'embedding_tables', 'export_run', 'read_export']
