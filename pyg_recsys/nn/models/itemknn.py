r"""Item-based nearest neighbours (ItemKNN): items are recommended for
their cosine similarity to the items a user already has."""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_recsys.data.split import co_interactions
from pyg_recsys.nn.models.base import check_pairs
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.topk import chunked_topk


class ItemKNN(torch.nn.Module):
    r"""The item-based top-:math:`N` recommender of Deshpande and Karypis,
    `"Item-Based Top-N Recommendation Algorithms"
    <https://doi.org/10.1145/963770.963776>`_ (TOIS 2004), with the
    cosine similarity of Sarwar et al. (WWW 2001).  Like
    :class:`~pyg_recsys.nn.models.Popularity` it has no parameters and
    needs no training: it is a baseline for graph recommenders and for
    the item-to-item protocol
    (:class:`~pyg_recsys.train.ItemToItemEvaluator`).

    Over the binary training matrix :math:`\mathbf{R} \in \{0, 1\}^{U
    \times I}` (repeated pairs count once), with :math:`\mathcal{U}_a` the
    users of item :math:`a`, the similarity of two items
    :math:`a \ne b` is

    .. math::
        \mathrm{sim}(a, b) = \frac{|\mathcal{U}_a \cap \mathcal{U}_b|}
        {\sqrt{|\mathcal{U}_a| \, |\mathcal{U}_b|} + \lambda}
        = \frac{(\mathbf{R}^\top \mathbf{R})_{ab}}
        {\sqrt{d_a d_b} + \lambda},

    with :math:`\lambda` the shrinkage (``shrink``; :math:`\lambda = 0`
    is plain cosine), and :math:`\mathrm{sim}(a, a) = 0`.  Every item
    keeps its :math:`k` most similar items :math:`\mathcal{N}_k(a)` (ties:
    lower item id first), a sparse matrix :math:`\mathbf{S}` with
    :math:`S_{ab} = \mathrm{sim}(a, b)` for :math:`b \in \mathcal{N}_k(a)`
    and 0 elsewhere (not symmetric).  A user :math:`u` with training
    items :math:`\mathcal{I}_u` scores item :math:`i` by

    .. math::
        \hat{y}_{ui} = \sum_{j \in \mathcal{I}_u} S_{ji}
        = (\mathbf{R} \mathbf{S})_{ui},

    the sum of the similarities of :math:`i` to the user's items of which
    it is a neighbour (the paper's :math:`\mathbf{M} \mathbf{u}`, without
    its optional normalisation of each item's :math:`k` similarities to
    sum to one).

    The co-interaction counts come from
    :func:`~pyg_recsys.data.split.co_interactions` (the graph PinSage's
    walks run on), asked for one block of items at a time (about
    ``max_pairs`` item-user-item paths each), each block normalised and
    cut to its top :math:`k` before the next: memory stays
    :math:`O(\text{max\_pairs} + I k)` however dense
    :math:`\mathbf{R}^\top \mathbf{R}` is.  The table is built on the CPU
    and its buffers put on the device of ``edge_index``; ``.to(device)``
    moves it.

    Attributes:
        neighbors: ``[I, w]`` item ids, ``neighbors[a]`` the most similar
            items of ``a``, best first, padded with ``-1``
            (:math:`w \le k` is the longest row).
        similarity: ``[I, w]`` their similarities, padded with 0.

    Args:
        num_users: Number of users :math:`U`.
        num_items: Number of items :math:`I`.
        edge_index: ``[2, E]`` (user, item) training pairs.
        k: Neighbours kept per item.
        shrink: Shrinkage :math:`\lambda \ge 0` of the denominator, which
            lowers the similarity of pairs with few users.
        max_pairs: Item-user-item paths per block while building (memory
            bound).
    """

    def __init__(self, num_users: int, num_items: int, edge_index: Tensor,
                 k: int = 100, shrink: float = 0.0,
                 max_pairs: int = 1 << 22) -> None:
        super().__init__()
        name = type(self).__name__
        if num_users <= 0 or num_items <= 0:
            raise ValueError(f'{name}: num_users and num_items must be '
                             f'positive, got {num_users} and {num_items}')
        if k < 1:
            raise ValueError(f'{name}: k must be >= 1 (neighbours per '
                             f'item), got {k}')
        if not shrink >= 0:
            raise ValueError(f'{name}: shrink must be >= 0, got {shrink}')
        if max_pairs < 1:
            raise ValueError(f'{name}: max_pairs must be >= 1, got '
                             f'{max_pairs}')
        pairs = check_pairs(name, edge_index, num_users, num_items)
        self.num_users = num_users
        self.num_items = num_items
        self.k = k
        self.shrink = float(shrink)
        R = CSR.from_pairs(pairs[0], pairs[1], num_users, num_items)
        neighbors, similarity = self._build(R, max_pairs)
        device = edge_index.device
        self.register_buffer('neighbors', neighbors.to(device))
        self.register_buffer('similarity', similarity.to(device))
        self.register_buffer('user_rowptr', R.rowptr.to(device))
        self.register_buffer('user_col', R.col.to(device))

    def _build(self, R: CSR, max_pairs: int) -> tuple[Tensor, Tensor]:
        """The padded top-``k`` table ``(neighbors, similarity)`` of the
        binary matrix ``R``, block by block of items."""
        num_items, k = self.num_items, self.k
        pairs = torch.stack([R.rows(), R.col])
        item_deg = torch.bincount(R.col, minlength=num_items).double()
        # paths a -> u -> b leaving each item a: co_interactions' cost
        paths = torch.zeros(num_items, dtype=torch.long)
        paths.index_add_(0, R.col, R.degree()[pairs[0]])
        csum = torch.cumsum(paths, 0)
        rows, cols, vals = [], [], []
        start = 0
        while start < num_items:
            stop = max(start + 1, int(torch.searchsorted(
                csum, csum[start] - paths[start] + max_pairs, right=True)))
            edges, count = co_interactions(
                pairs, self.num_users, num_items, max_pairs=max_pairs,
                sources=torch.arange(start, stop))
            src, dst = edges  # sorted by (source, target)
            sim = count.double() / (
                torch.sqrt(item_deg[src] * item_deg[dst]) + self.shrink)
            # most similar first within each source, ties: lower target
            order = torch.argsort(-sim, stable=True)
            order = order[torch.argsort(src[order], stable=True)]
            deg = torch.bincount(src - start, minlength=stop - start)
            first = torch.cumsum(deg, 0) - deg
            rank = torch.arange(src.numel()) - first[src[order] - start]
            keep = order[rank < k]  # still (source, best first)
            rows.append(src[keep])
            cols.append(dst[keep])
            vals.append(sim[keep])
            start = stop
        src, dst, sim = torch.cat(rows), torch.cat(cols), torch.cat(vals)
        deg = torch.bincount(src, minlength=num_items)
        width = int(deg.max()) if src.numel() else 0
        first = torch.cumsum(deg, 0) - deg
        slot = torch.arange(src.numel()) - first[src]
        neighbors = torch.full((num_items, width), -1, dtype=torch.long)
        similarity = torch.zeros(num_items, width)
        neighbors[src, slot] = dst
        similarity[src, slot] = sim.float()
        return neighbors, similarity

    def _scatter(self, num_rows: int, row: Tensor, items: Tensor) -> Tensor:
        """``[num_rows, num_items]`` with the similarity rows of
        ``items[n]`` added to row ``row[n]`` (one flat
        :meth:`~torch.Tensor.index_add_`; padding adds 0 to item 0)."""
        num_items = self.num_items
        nbr = self.neighbors[items].clamp(min=0)
        flat = (row.unsqueeze(1) * num_items + nbr).view(-1)
        out = torch.zeros(num_rows * num_items, dtype=self.similarity.dtype,
                          device=self.similarity.device)
        out.index_add_(0, flat, self.similarity[items].view(-1))
        return out.view(num_rows, num_items)

    @torch.no_grad()
    def score(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        r"""Scores :math:`\hat{y}_{ui} = \sum_{j \in \mathcal{I}_u}
        S_{ji}` of users against all items (``[len(users), num_items]``),
        or against ``items`` of shape ``[n]`` (shared) or
        ``[len(users), n]`` (per user), ``[len(users), n]``; every user of
        a call at once, no loop over users."""
        users = users.view(-1).to(self.user_col.device)
        B = users.numel()
        if items is not None and not (items.dim() == 1 or (
                items.dim() == 2 and items.size(0) == B)):
            raise ValueError(
                f'{type(self).__name__}.score: items must be None, [n] or '
                f'[len(users), n], got shape {list(items.shape)} for {B} '
                f'users')
        user_items = CSR(self.user_rowptr, self.user_col, self.num_items)
        pos, train_items = user_items.select(users)
        out = self._scatter(B, pos, train_items)
        if items is None:
            return out
        items = items.to(out.device)
        if items.dim() == 1:
            return out[:, items]
        return out.gather(1, items)

    @torch.no_grad()
    def item_scores(self, items: Tensor) -> Tensor:
        r"""The similarity rows :math:`\mathbf{S}_{a \cdot}` of the query
        items ``items`` ``[n]``: ``[n, num_items]``, 0 off the neighbours
        (the query item itself included)."""
        if items.dim() != 1:
            raise ValueError(f'{type(self).__name__}.item_scores: items '
                             f'must be [n] item ids, got shape '
                             f'{list(items.shape)}')
        items = items.to(self.neighbors.device)
        row = torch.arange(items.numel(), device=items.device)
        return self._scatter(items.numel(), row, items)

    @torch.no_grad()
    def recommend(self, users: Tensor, k: int, exclude: CSR | None = None,
                  batch_size: int = 4096) -> tuple[Tensor, Tensor]:
        """Top-``k`` items per user, never an item of ``exclude`` (e.g. the
        training items), scored in chunks of ``batch_size`` users
        (:func:`pyg_recsys.ops.topk.chunked_topk`)."""
        return chunked_topk(self.score, users, k, exclude, batch_size)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.num_users} users, '
                f'{self.num_items} items, k={self.k}, '
                f'shrink={self.shrink})')
