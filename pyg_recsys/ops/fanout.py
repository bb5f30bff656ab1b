r"""Fixed-size neighbourhoods: ``k`` sampled neighbours of every node, as a
dense ``[num_nodes, k]`` table (KGCN's receptive field)."""
from __future__ import annotations

import torch
from torch import Tensor


def _shuffled(rowptr: Tensor, nnz: int,
              generator: torch.Generator | None
              ) -> tuple[Tensor, Tensor, Tensor]:
    """The edges of a CSR graph shuffled within their rows: ``(row,
    order, rank)``, ``order[p]`` the edge at position ``p`` of the
    shuffled order (rows kept in order), ``row[p]`` its row and
    ``rank[p]`` its place within the row."""
    device = rowptr.device
    n = rowptr.numel() - 1
    row = torch.repeat_interleave(torch.arange(n, device=device),
                                  rowptr[1:] - rowptr[:-1])
    key = torch.rand(nnz, generator=generator, device=device)
    # sort by (row, key): rows stay in order, keys shuffle within rows
    order = torch.argsort(row.double() + key * 0.5)
    rank = torch.arange(nnz, device=device) - rowptr[row]
    return row, order, rank


def padded_fanout(rowptr: Tensor, k: int,
                  generator: torch.Generator | None = None) -> Tensor:
    r"""At most ``k`` edges of every row of a CSR graph, drawn uniformly
    without replacement (all of them where a row has at most ``k``), the
    rest of the row padded with ``-1``: a fixed-size neighbourhood whose
    padding an attention masks out, so that every sampled neighbour
    counts once (GraphRec's aggregations).  Vectorised: one random key
    per edge, sorted within its row.

    Args:
        rowptr: ``[N + 1]`` row pointers.
        k: Slots per row.
        generator: Random stream (on the device of ``rowptr``).

    Returns:
        ``[N, k]`` long edge positions (into the CSR's columns and edge
        attributes), ``-1`` for empty slots.
    """
    if k < 1:
        raise ValueError(f'padded_fanout: k must be >= 1, got {k}')
    n = rowptr.numel() - 1
    nnz = int(rowptr[-1]) if n else 0
    edge = torch.full((n, k), -1, dtype=torch.long, device=rowptr.device)
    row, order, rank = _shuffled(rowptr, nnz, generator)
    take = rank < k
    edge[row[take], rank[take]] = order[take]
    return edge


def fixed_fanout(rowptr: Tensor, col: Tensor, k: int,
                 generator: torch.Generator | None = None
                 ) -> tuple[Tensor, Tensor]:
    r"""``k`` neighbours of every row of a CSR graph, as KGCN's
    ``construct_adj`` draws them: uniformly *without* replacement where a
    row has at least ``k`` neighbours, *with* replacement where it has
    fewer.  Vectorised: one random key per edge, sorted within its row,
    for the rows without replacement; one draw per slot for the others.

    A row without neighbours gets itself ``k`` times, with edge position
    ``-1`` (a node of the knowledge graph always has a neighbour; items
    linked to no triple would not).

    Args:
        rowptr: ``[N + 1]`` row pointers.
        col: ``[nnz]`` neighbours.
        k: Neighbours per row.
        generator: Random stream (on the device of ``rowptr``).

    Returns:
        ``(neighbour, edge)``: both ``[N, k]`` long, the neighbour ids and
        the positions of their edges in ``col`` (to look up an edge's
        relation), ``-1`` for the self-loops of empty rows.
    """
    if k < 1:
        raise ValueError(f'fixed_fanout: k must be >= 1, got {k}')
    device = rowptr.device
    n = rowptr.numel() - 1
    deg = rowptr[1:] - rowptr[:-1]
    # with replacement: slot j of row r takes edge rowptr[r] + floor(u * deg)
    u = torch.rand(n, k, generator=generator, device=device)
    edge = rowptr[:-1].view(-1, 1) + (u * deg.view(-1, 1)).long()
    # without replacement (deg >= k): the k edges of smallest random key
    big = deg >= k
    if bool(big.any()):
        row, order, rank = _shuffled(rowptr, col.numel(), generator)
        take = big[row] & (rank < k)
        edge[row[take], rank[take]] = order[take]
    empty = deg == 0
    edge[empty] = -1
    nbr = col[edge.clamp(min=0)] if col.numel() else torch.zeros_like(edge)
    nbr[empty] = torch.arange(n, device=device)[empty].view(-1, 1)
    return nbr, edge


__all__ = ['fixed_fanout', 'padded_fanout']
