r"""Retrieval index over item embeddings (faiss), known items excluded.

Maximum inner-product search :math:`\operatorname{top-}k_i\,
\mathbf{q}^\top \mathbf{e}_i` of query vectors (users' final embeddings)
against the item table, exact (``'exact'``: ``IndexFlatIP``) or
approximate (``'hnsw'``: a graph index, ``IndexHNSWFlat``; ``'ivf'``:
``IndexIVFFlat`` over ``nlist`` k-means cells, ``nprobe`` searched).

Known items are excluded the way :func:`pyg_recsys.ops.topk.masked_topk`
does for the exact path: each query asks for ``k`` plus its number of
known items, and the known ones are dropped from the answer, so the
result is the top ``k`` of the unknown items (of the candidates the
index returns, for the approximate kinds).  Queries are grouped by their
number of known items, so one heavy user does not deepen every search.

``faiss`` (``faiss-cpu``, the ``retrieval`` extra) is imported only when
an index is built.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pyg_recsys.ops.csr import CSR

KINDS = ('exact', 'hnsw', 'ivf')


def _faiss() -> Any:
    from pyg_recsys import typing as pt
    if not pt.WITH_FAISS:
        raise ImportError('a retrieval index needs faiss: pip install '
                          'faiss-cpu (or the pyg_recsys[retrieval] extra)')
    import faiss
    return faiss


class ItemIndex:
    """A faiss inner-product index over an item table.

    Args:
        items: ``[num_items, d]`` item embeddings (any device; the index
            lives on the CPU).
        kind: ``'exact'``, ``'hnsw'`` or ``'ivf'``.
        hnsw_m: Neighbours per node of the HNSW graph.
        ef_construction: HNSW build breadth.
        ef_search: HNSW search breadth (raised to the search depth of a
            query group where that is larger).
        nlist: IVF cells (default :math:`\\min(4\\sqrt{n}, n / 39)`, at
            least 1; at most ``n``).
        nprobe: IVF cells searched per query (at most ``nlist``).

    faiss runs on its own threads (OpenMP's default; set
    ``faiss.omp_set_num_threads`` to change it for the process).

    Attributes:
        build_seconds: Time to build the index.
    """

    def __init__(self, items: Tensor, kind: str = 'exact', hnsw_m: int = 32,
                 ef_construction: int = 200, ef_search: int = 128,
                 nlist: int | None = None, nprobe: int = 16) -> None:
        if kind not in KINDS:
            raise ValueError(f'ItemIndex: unknown kind {kind!r}; use one '
                             f'of {KINDS}')
        if items.dim() != 2 or items.size(0) == 0:
            raise ValueError(f'ItemIndex: items must be a non-empty '
                             f'[num_items, d] table, got shape '
                             f'{list(items.shape)}')
        for name, v in (('hnsw_m', hnsw_m), ('ef_construction',
                        ef_construction), ('ef_search', ef_search),
                        ('nprobe', nprobe)):
            if v < 1:
                raise ValueError(f'ItemIndex: {name} must be >= 1, got {v}')
        faiss = _faiss()
        x = np.ascontiguousarray(items.detach().float().cpu().numpy())
        n, d = x.shape
        self.kind, self.num_items, self.dim = kind, n, d
        self.ef_search, self.nprobe = ef_search, nprobe
        t0 = time.perf_counter()
        if kind == 'exact':
            index = faiss.IndexFlatIP(d)
        elif kind == 'hnsw':
            index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
        else:
            nlist = nlist or max(1, min(n // 39, int(4 * n ** 0.5)))
            if not 1 <= nlist <= n:
                raise ValueError(f'ItemIndex: nlist must be in [1, {n}] '
                                 f'(the number of items), got {nlist}')
            self._quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(self._quantizer, d, nlist,
                                       faiss.METRIC_INNER_PRODUCT)
            index.train(x)
            index.nprobe = min(nprobe, nlist)
        index.add(x)
        self.index = index
        self.build_seconds = time.perf_counter() - t0

    def __repr__(self) -> str:
        return (f'ItemIndex({self.kind}, {self.num_items} items, '
                f'dim={self.dim})')

    def search(self, queries: Tensor, k: int, exclude: CSR | None = None,
               rows: Tensor | None = None, group: int = 1024
               ) -> tuple[Tensor, Tensor]:
        """The ``k`` items of highest inner product per query.

        Args:
            queries: ``[B, d]`` query vectors.
            k: Items per query (``1 <= k <= num_items``).
            exclude: Items never returned, one :class:`CSR` row per
                entity (e.g. a split's known items per user).
            rows: ``[B]`` the row of ``exclude`` of each query (default:
                query ``b`` is row ``b``).
            group: Queries searched together (grouped by how many items
                they exclude).

        Returns:
            ``(scores, items)``, both ``[B, k]`` on the CPU, best first;
            item ``-1`` with score ``-inf`` where fewer than ``k`` are
            left.
        """
        if not 1 <= k <= self.num_items:
            raise ValueError(f'ItemIndex.search: k must be in [1, '
                             f'{self.num_items}], got {k}')
        if queries.dim() != 2 or queries.size(1) != self.dim:
            raise ValueError(f'ItemIndex.search: queries must be [B, '
                             f'{self.dim}], got {list(queries.shape)}')
        q = np.ascontiguousarray(queries.detach().float().cpu().numpy())
        B = q.shape[0]
        if exclude is None:
            s, i = self._search(q, k)
            return self._pad(s, i, k)
        exclude = exclude.to('cpu')
        if exclude.num_cols != self.num_items:
            raise ValueError(f'ItemIndex.search: exclude has '
                             f'{exclude.num_cols} columns for '
                             f'{self.num_items} items')
        rows = (torch.arange(B) if rows is None
                else rows.long().cpu().view(-1))
        if rows.numel() != B:
            raise ValueError(f'ItemIndex.search: {rows.numel()} rows for '
                             f'{B} queries')
        out_s = torch.full((B, k), float('-inf'))
        out_i = torch.full((B, k), -1, dtype=torch.long)
        deg = exclude.degree(rows)
        order = torch.argsort(deg, stable=True)
        keys = exclude.keys()
        for chunk in order.split(group):
            depth = min(self.num_items, k + int(deg[chunk].max()))
            s, i = self._search(q[chunk.numpy()], depth)
            s, i = torch.from_numpy(s), torch.from_numpy(i).long()
            known = exclude.contains(rows[chunk], i.clamp(min=0), keys)
            s = s.masked_fill(known | (i < 0), float('-inf'))
            s, pos = s.topk(k, dim=1)
            i = i.gather(1, pos).masked_fill(torch.isinf(s), -1)
            out_s[chunk], out_i[chunk] = s, i
        return out_s, out_i

    def _search(self, q: np.ndarray, depth: int
                ) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == 'hnsw':  # per call: searches may run in threads
            import faiss
            params = faiss.SearchParametersHNSW(
                efSearch=max(self.ef_search, depth))
            return self.index.search(q, depth, params=params)
        return self.index.search(q, depth)

    @staticmethod
    def _pad(s: np.ndarray, i: np.ndarray, k: int) -> tuple[Tensor, Tensor]:
        s, i = torch.from_numpy(s), torch.from_numpy(i).long()
        s = s.masked_fill(i < 0, float('-inf'))
        return s[:, :k], i[:, :k]


__all__ = ['KINDS', 'ItemIndex']
