r"""Random walks and random walks with restart over a CSR graph.

Both operators move every walker at once: one step is a handful of tensor
operations over all walkers, never a Python loop over nodes or walkers.
They take any CSR adjacency (``rowptr``, ``col``), e.g. the bipartite
user-item graph of :class:`~pyg_recsys.ops.adj.NormAdj` (users
``0 .. U-1``, then items ``U .. U+I-1``).  ``torch_cluster.random_walk``
is not a dependency: it has no restarts and no visit counting.

A walker at a node without neighbours jumps back to its start node (for an
isolated start node: it stays).  This is the usual treatment of dangling
nodes in personalised PageRank, where their mass returns to the source, so
:func:`ppr_scores` estimates

.. math::
    \boldsymbol{\pi}_s = \alpha\, \mathbf{e}_s + (1 - \alpha)\,
    \big(\boldsymbol{\pi}_s \mathbf{P}
    + (\boldsymbol{\pi}_s \mathbf{d})\, \mathbf{e}_s\big),

with :math:`\mathbf{P} = \mathbf{D}^{-1}\mathbf{A}` the random-walk
transition matrix (rows of dangling nodes zero), :math:`\mathbf{d}` the
indicator of dangling nodes and :math:`\alpha` the restart probability.
"""
from __future__ import annotations

import torch
from torch import Tensor


def _check(where: str, rowptr: Tensor, col: Tensor, start: Tensor,
           restart_prob: float, positive: bool) -> tuple[Tensor, Tensor]:
    if rowptr.dim() != 1 or rowptr.numel() < 1:
        raise ValueError(f'{where}: rowptr must be a 1-D CSR row pointer of '
                         f'num_nodes + 1 entries, got shape '
                         f'{list(rowptr.shape)}')
    if not (0 <= restart_prob < 1) or (positive and restart_prob == 0):
        bound = ('0 < restart_prob < 1' if positive else
                 '0 <= restart_prob < 1')
        raise ValueError(f'{where}: need {bound}, got {restart_prob}')
    num_nodes = rowptr.numel() - 1
    if start.numel() > 0 and (int(start.min()) < 0 or
                              int(start.max()) >= num_nodes):
        raise ValueError(f'{where}: start nodes must lie in [0, '
                         f'{num_nodes}), got [{int(start.min())}, '
                         f'{int(start.max())}]')
    return rowptr.long(), col.long()


def _step(rowptr: Tensor, col: Tensor, deg: Tensor, cur: Tensor,
          home: Tensor, u: Tensor, restart_prob: float,
          stop_at: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One step of every walker from one uniform ``u`` each: whether it
    restarts (``u < restart_prob``, only on nodes of ``stop_at`` when
    given), and otherwise its next node, a uniform neighbour (``(u - p) /
    (1 - p)`` is uniform given no restart) or, from a node without
    neighbours, its start node ``home``."""
    d = deg.index_select(0, cur)
    if stop_at is None:
        restart = u < restart_prob
        if restart_prob > 0:
            u = (u - restart_prob) / (1 - restart_prob)
    else:
        coin = stop_at.index_select(0, cur)
        restart = coin & (u < restart_prob)
        u = torch.where(coin, (u - restart_prob) / (1 - restart_prob), u)
    off = torch.minimum((u * d).long(), (d - 1).clamp_(min=0))
    if col.numel() == 0:
        return home, restart
    idx = (rowptr.index_select(0, cur) + off).clamp_(0, col.numel() - 1)
    nxt = torch.where(d > 0, col.index_select(0, idx), home)
    return nxt, restart


def random_walk(rowptr: Tensor, col: Tensor, start: Tensor,
                walk_length: int, restart_prob: float = 0.0,
                generator: torch.Generator | None = None) -> Tensor:
    r"""Random walks (with restart) from ``start``, all walkers at once.

    At each step a walker jumps back to its start node with probability
    ``restart_prob`` and otherwise moves to a neighbour drawn uniformly; a
    walker on a node without neighbours jumps back to its start node (so an
    isolated start node stays put).

    Args:
        rowptr: ``[num_nodes + 1]`` CSR row pointer (any integer dtype).
        col: ``[nnz]`` neighbours of each row.
        start: ``[W]`` start node of each walker.
        walk_length: Steps per walk.
        restart_prob: Restart probability :math:`\alpha \in [0, 1)`.
        generator: Random generator (on the graph's device).

    Returns:
        ``[W, walk_length + 1]`` node ids, ``start`` in the first column.
    """
    start = start.long().view(-1)
    rowptr, col = _check('random_walk', rowptr, col, start, restart_prob,
                         positive=False)
    if walk_length < 0:
        raise ValueError(f'random_walk: walk_length must be >= 0, got '
                         f'{walk_length}')
    deg = rowptr[1:] - rowptr[:-1]
    out = torch.empty(start.numel(), walk_length + 1, dtype=torch.long,
                      device=start.device)
    out[:, 0] = start
    cur = start
    for t in range(1, walk_length + 1):
        u = torch.rand(start.numel(), generator=generator,
                       dtype=torch.float64, device=start.device)
        nxt, restart = _step(rowptr, col, deg, cur, start, u, restart_prob)
        cur = torch.where(restart, start, nxt)
        out[:, t] = cur
    return out


def rwr_visits(rowptr: Tensor, col: Tensor, sources: Tensor,
               num_walks: int, restart_prob: float = 0.15,
               generator: torch.Generator | None = None,
               count: Tensor | None = None,
               stop_at: Tensor | None = None) -> tuple[Tensor, Tensor]:
    r"""Visit counts of random walks with restart from every source node.

    ``num_walks`` walkers start at each source; a walker counts the node
    it stands on, then stops with probability ``restart_prob``, otherwise
    moves to a uniform neighbour (from a node without neighbours: back to
    its source).
    Each walk is one segment between two restarts of a walk with restart,
    so (the "complete path" Monte Carlo estimator of Avrachenkov et al.,
    SIAM J. Numer. Anal. 2007) the expected visits per walk are exactly

    .. math::
        \mathbb{E}[\text{visits}_s(v)] = \sum_{t \ge 0} (1-\alpha)^t
        \tilde{\mathbf{P}}^t_{sv} = \pi_s(v) / \alpha,

    the personalised PageRank :math:`\pi_s` of the module docstring over
    :math:`\alpha`; :func:`ppr_scores` rescales them.  All walkers of all
    sources move together; finished walkers are dropped each step.  Memory
    is about ``len(sources) * num_walks / restart_prob`` visits: call it
    on chunks of sources for big graphs.

    Args:
        rowptr: ``[num_nodes + 1]`` CSR row pointer.
        col: ``[nnz]`` neighbours of each row.
        sources: ``[S]`` source nodes.
        num_walks: Walks per source.
        restart_prob: Restart probability :math:`\alpha \in (0, 1)`.
        generator: Random generator (on the graph's device).
        count: Optional ``[num_nodes]`` bool mask of the nodes to count
            (e.g. items only); others are walked through but not counted.
        stop_at: Optional ``[num_nodes]`` bool mask of the nodes where a
            walker may stop; elsewhere it always moves on.  With
            ``count = stop_at =`` the items of a bipartite user-item graph,
            a walk moves item -> user -> item and stops with probability
            :math:`\alpha` on each item, so :math:`\tilde{\mathbf{P}}`
            above becomes the two-step item-to-item transition (PinSage's
            walks).

    Returns:
        ``(index, counts)``: ``index`` ``[2, nnz]`` holds (position in
        ``sources``, node) sorted by both, ``counts`` ``[nnz]`` the visits.
    """
    sources = sources.long().view(-1)
    rowptr, col = _check('rwr_visits', rowptr, col, sources, restart_prob,
                         positive=True)
    if num_walks <= 0:
        raise ValueError(f'rwr_visits: num_walks must be positive, got '
                         f'{num_walks}')
    num_nodes = rowptr.numel() - 1
    device = sources.device
    deg = rowptr[1:] - rowptr[:-1]
    walker = torch.arange(sources.numel(), device=device).repeat_interleave(
        num_walks)
    cur = home = sources.index_select(0, walker)
    keys = []
    while cur.numel() > 0:
        key = walker * num_nodes + cur
        keys.append(key if count is None else key[count.index_select(0, cur)])
        u = torch.rand(cur.numel(), generator=generator, dtype=torch.float64,
                       device=device)
        nxt, restart = _step(rowptr, col, deg, cur, home, u, restart_prob,
                             stop_at)
        go = (~restart).nonzero().view(-1)
        walker, cur = walker.index_select(0, go), nxt.index_select(0, go)
        home = home.index_select(0, go)
    key, counts = torch.unique(torch.cat(keys), return_counts=True)
    return torch.stack([key // num_nodes, key % num_nodes]), counts


def rank_visits(pos: Tensor, counts: Tensor, num_sources: int,
                random_ties: bool = False,
                generator: torch.Generator | None = None
                ) -> tuple[Tensor, Tensor]:
    """Ranks the visited nodes of every source by visit count.

    Args:
        pos: ``[nnz]`` source of each entry (sorted, as :func:`rwr_visits`
            returns it).
        counts: ``[nnz]`` visits.
        num_sources: Number of sources.
        random_ties: Break ties at random (from ``generator``); otherwise
            ties keep their order in the input (lower node id first for
            the output of :func:`rwr_visits`).
        generator: Random generator of the ties.

    Returns:
        ``(order, rank)``: ``order`` ``[nnz]`` the entries sorted by
        source, then visits descending; ``rank`` ``[nnz]`` the rank of
        ``order[j]`` within its source (0 = most visited).
    """
    perm = (torch.randperm(pos.numel(), generator=generator,
                           device=pos.device)
            if random_ties else
            torch.arange(pos.numel(), device=pos.device))
    top = counts.max() + 1 if counts.numel() else 1
    order = perm[torch.sort((pos * top + top - 1 - counts)[perm],
                            stable=True)[1]]
    first = torch.zeros(num_sources + 1, dtype=torch.long, device=pos.device)
    torch.cumsum(torch.bincount(pos, minlength=num_sources), 0,
                 out=first[1:])
    rank = torch.arange(order.numel(), device=pos.device) - first[pos[order]]
    return order, rank


def importance_neighbors(rowptr: Tensor, col: Tensor, sources: Tensor,
                         num_neighbors: int, num_walks: int = 100,
                         restart_prob: float = 0.5,
                         generator: torch.Generator | None = None,
                         count: Tensor | None = None,
                         stop_at: Tensor | None = None
                         ) -> tuple[Tensor, Tensor]:
    r"""Importance-based neighbourhoods (PinSage, Ying et al., KDD 2018,
    Sec. 3.1): the ``num_neighbors`` nodes most visited by random walks
    with restart from each source, with their visit counts as weights.

    The walks are those of :func:`rwr_visits` (``count`` and ``stop_at``
    as there; for PinSage both are the items of the bipartite user-item
    graph, so walks run item -> user -> item); the source itself is never
    its own neighbour.  Ties in the counts go to the lower node id.  The
    expected visits of :math:`v` from :math:`s` are :math:`	ext{num\_walks}
    \cdot \pi_s(v) / lpha` (:func:`rwr_visits`), so the neighbours are
    the top of :math:`s`'s personalised PageRank, and memory is about
    ``len(sources) * num_walks / restart_prob`` visits whatever the size of
    the graph.

    Args:
        rowptr: ``[num_nodes + 1]`` CSR row pointer.
        col: ``[nnz]`` neighbours of each row.
        sources: ``[S]`` source nodes.
        num_neighbors: :math:`T`, neighbours kept per source.
        num_walks: Walks per source.
        restart_prob: :math:`lpha`.
        generator: Random generator of the walks.
        count: Nodes to count (default: all).
        stop_at: Nodes where a walk may stop (default: all).

    Returns:
        ``(neighbors, weight)``, both ``[S, T]``: node ids (``-1`` where a
        source has fewer than ``T`` visited nodes) and visit counts (float,
        0 at the padding), most visited first.
    """
    if num_neighbors < 1:
        raise ValueError(f'importance_neighbors: num_neighbors must be '
                         f'>= 1, got {num_neighbors}')
    sources = sources.long().view(-1)
    (pos, node), cnt = rwr_visits(rowptr, col, sources, num_walks,
                                  restart_prob, generator, count, stop_at)
    other = node != sources.index_select(0, pos)
    pos, node, cnt = pos[other], node[other], cnt[other]
    order, rank = rank_visits(pos, cnt, sources.numel())
    keep = order[rank < num_neighbors]
    slot = rank[rank < num_neighbors]
    nbr = torch.full((sources.numel(), num_neighbors), -1, dtype=torch.long,
                     device=sources.device)
    weight = torch.zeros(sources.numel(), num_neighbors,
                         device=sources.device)
    nbr[pos[keep], slot] = node[keep]
    weight[pos[keep], slot] = cnt[keep].float()
    return nbr, weight


def ppr_scores(rowptr: Tensor, col: Tensor, sources: Tensor,
               num_walks: int = 1000, restart_prob: float = 0.15,
               generator: torch.Generator | None = None) -> Tensor:
    r"""Monte Carlo personalised PageRank of every source, dense.

    :math:`\hat{\pi}_s(v) = \alpha \cdot \text{visits}_s(v) /
    \text{num\_walks}` from :func:`rwr_visits`: unbiased, with standard
    error about :math:`\sqrt{\alpha\, \pi_s(v) / \text{num\_walks}}`.
    Rows sum to 1 in expectation.

    Returns:
        ``[len(sources), num_nodes]`` float estimates (small graphs or
        small batches of sources only).
    """
    (pos, node), counts = rwr_visits(rowptr, col, sources, num_walks,
                                     restart_prob, generator)
    out = torch.zeros(sources.numel(), rowptr.numel() - 1,
                      device=counts.device)
    out[pos, node] = counts.float() * (restart_prob / num_walks)
    return out
