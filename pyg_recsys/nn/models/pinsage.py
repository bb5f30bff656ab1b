r"""PinSage: graph convolutions over random-walk importance neighbourhoods,
trained item to item with a max-margin loss and curriculum hard
negatives."""
from __future__ import annotations

import copy

import torch
from torch import Tensor

from pyg_recsys.data.loader import (
    Blocks,
    ItemPairBatch,
    ItemPairLoader,
    NeighborhoodSampler,
)
from pyg_recsys.loss import margin_loss
from pyg_recsys.nn.conv.pinsage_conv import PinSageConv
from pyg_recsys.nn.embedding import Embedding
from pyg_recsys.nn.models.base import check_pairs
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.topk import chunked_topk


class PinSage(torch.nn.Module):
    r"""PinSage from Ying et al., `"Graph Convolutional Neural Networks for
    Web-Scale Recommender Systems" <https://arxiv.org/abs/1806.01973>`_
    (KDD 2018).

    An item's input is its id embedding plus a linear projection of its
    features when given (genres and year for MovieLens; an item never seen
    in training still gets the projection of its features):
    :math:`\mathbf{h}^{(0)}_i = \mathbf{e}_i + \mathbf{P}\mathbf{x}_i`.
    ``num_layers`` :class:`~pyg_recsys.nn.conv.PinSageConv` layers then
    pool each item's importance neighbourhood, the ``num_neighbors``
    items most visited by random walks item -> user -> item
    (:class:`~pyg_recsys.data.loader.NeighborhoodSampler`), drawn afresh
    for every mini-batch in training.  The embedding is
    :math:`\mathbf{z}_i = \mathbf{h}^{(0)}_i + \mathbf{h}^{(L)}_i`.

    Training is item to item (:meth:`loss` on
    :class:`~pyg_recsys.data.loader.ItemPairBatch`, from
    :meth:`pair_loader`): a query :math:`q` and a positive :math:`i` that
    a user interacted with together, negatives :math:`n` shared by the
    batch plus hard ones, and the max-margin loss

    .. math::
        \mathcal{L} = \mathbb{E}_{n}\,\max(0, \mathbf{z}_q^\top
        \mathbf{z}_n - \mathbf{z}_q^\top \mathbf{z}_i + \Delta).

    At inference every item is embedded layer by layer (the paper's
    MapReduce inference, :meth:`item_embeddings`): one importance
    neighbourhood per item, drawn once from ``seed``, then each layer for
    all items in chunks, so no item's neighbourhood is computed twice.
    Items are ranked for an item by :math:`\mathbf{z}_q^\top
    \mathbf{z}_j` (:meth:`item_scores`) and for a user by
    :math:`\bar{\mathbf{z}}_u^\top \mathbf{z}_j` with
    :math:`\bar{\mathbf{z}}_u` the mean of the user's training items'
    embeddings (:meth:`score`).

    Deviations from the paper, as the DGL example does: the final dense
    network :math:`G_2\,\mathrm{ReLU}(G_1 \cdot)` is replaced by the
    residual :math:`\mathbf{h}^{(0)} + \mathbf{h}^{(L)}`; positives come
    from co-interaction rather than from a separate engagement log.

    Args:
        num_users: Number of users.
        num_items: Number of items.
        edge_index: ``[2, E]`` (user, item) training pairs (the graph the
            walks run on).
        item_x: Optional ``[num_items, F]`` item features.
        embedding_dim: :math:`d`.
        num_layers: :math:`L`.
        num_neighbors: :math:`T`, neighbours per item.
        num_walks: Walks per item and hop.
        restart_prob: Probability that a walk stops on an item.
        margin: :math:`\Delta`.
        dropout: Dropout of the convolutions' inputs in training.
        seed: Seed of the inference neighbourhoods.
    """

    def __init__(self, num_users: int, num_items: int, edge_index: Tensor,
                 item_x: Tensor | None = None, embedding_dim: int = 64,
                 num_layers: int = 2, num_neighbors: int = 10,
                 num_walks: int = 50, restart_prob: float = 0.5,
                 margin: float = 1.0, dropout: float = 0.0,
                 seed: int = 0) -> None:
        super().__init__()
        name = 'PinSage'
        ei = check_pairs(name, edge_index, num_users, num_items)
        if embedding_dim < 1:
            raise ValueError(f'{name}: embedding_dim must be >= 1, got '
                             f'{embedding_dim}')
        if margin <= 0:
            raise ValueError(f'{name}: margin must be positive, got '
                             f'{margin}')
        if item_x is not None and (item_x.dim() != 2 or
                                   item_x.size(0) != num_items):
            raise ValueError(f'{name}: item_x must be [num_items={num_items}'
                             f', F], got {list(item_x.shape)}')
        self.num_users, self.num_items = num_users, num_items
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.margin = margin
        self.seed = seed
        self.num_pairs = ei.size(1)
        self.sampler = NeighborhoodSampler(ei, num_users, num_items,
                                           num_layers, num_neighbors,
                                           num_walks, restart_prob)
        rowptr, col = self.sampler.user_items()
        self.register_buffer('user_rowptr', rowptr, persistent=False)
        self.register_buffer('user_col', col, persistent=False)
        self.embedding = Embedding(num_items, embedding_dim)
        if item_x is not None:
            self.register_buffer('item_x', item_x.float(), persistent=False)
            self.proj = torch.nn.Linear(item_x.size(1), embedding_dim)
        else:
            self.item_x = None
            self.proj = None
        self.convs = torch.nn.ModuleList(
            PinSageConv(embedding_dim, embedding_dim, embedding_dim,
                        dropout=dropout) for _ in range(num_layers))
        self._cache: tuple[tuple, Tensor, Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        torch.nn.init.normal_(self.embedding.weight, std=0.1)
        if self.proj is not None:
            self.proj.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        self._cache = None

    def _apply(self, fn, recurse=True):  # noqa: ANN001 (torch signature)
        out = super()._apply(fn, recurse)
        self.sampler.to(self.user_rowptr.device)
        self._cache = None
        return out

    def train(self, mode: bool = True) -> PinSage:
        self._cache = None
        return super().train(mode)

    # ------------------------------------------------------------------
    def inputs(self, items: Tensor) -> Tensor:
        r""":math:`\mathbf{h}^{(0)}` of ``items``."""
        h = self.embedding(items)
        if self.proj is not None:
            h = h + self.proj(self.item_x[items])
        return h

    def forward(self, blocks: Blocks) -> Tensor:
        """Embeddings ``[len(blocks.nodes[-1]), d]`` of the seeds of
        ``blocks``."""
        h = self.inputs(blocks.nodes[0])
        for conv, nodes, ei, w in zip(self.convs, blocks.nodes[1:],
                                      blocks.edges, blocks.weights):
            h = conv((h, h[:nodes.numel()]), ei, w)
        return self.inputs(blocks.nodes[-1]) + h

    def loss(self, batch: ItemPairBatch) -> Tensor:
        """Max-margin loss of a batch of :meth:`pair_loader`."""
        z = self(batch.blocks)
        q = z[batch.query]
        pos = (q * z[batch.pos]).sum(-1)
        neg = q @ z[batch.neg].t()
        if batch.hard.size(1) > 0:
            neg = torch.cat([neg, (q.unsqueeze(1) * z[batch.hard]).sum(-1)],
                            dim=1)
        mask = batch.valid.view(-1, 1).expand_as(neg)
        return margin_loss(pos, neg, self.margin, mask)

    def pair_loader(self, pairs: Tensor, batch_size: int = 512,
                    num_neg: int = 500, hard: object | None = None,
                    max_hard: int = 4, num_workers: int = 0, seed: int = 0,
                    max_batches: int | None = None) -> ItemPairLoader:
        """Training batches for this model's neighbourhoods
        (:class:`~pyg_recsys.data.loader.ItemPairLoader`)."""
        if pairs.dim() != 2 or pairs.size(1) != self.num_pairs:
            raise ValueError(f'PinSage.pair_loader: pairs must be the '
                             f'{self.num_pairs} training pairs the model '
                             f'was built on (its walks run over them), got '
                             f'shape {list(pairs.shape)}')
        # batches are made on the CPU (in worker processes); the model's
        # own sampler follows the model to its device
        sampler = copy.copy(self.sampler).to('cpu')
        return ItemPairLoader(pairs, sampler, batch_size, num_neg, hard,
                              max_hard, num_workers, seed, max_batches)

    # ------------------------------------------------------------------
    @torch.no_grad()
    def item_embeddings(self, batch_size: int = 4096) -> Tensor:
        """Every item's embedding ``[num_items, d]``, layer by layer over
        one importance neighbourhood per item drawn from ``seed``, in
        chunks of ``batch_size`` items (cached in evaluation mode until
        the weights change)."""
        key = (self.embedding.weight._version,
               self.embedding.weight.data_ptr())
        if not self.training and self._cache is not None and \
                self._cache[0] == key:
            return self._cache[1]
        device = self.embedding.weight.device
        gen = torch.Generator(device=device).manual_seed(self.seed)
        items = torch.arange(self.num_items, device=device)
        nbr, w = [], []
        for chunk in items.split(batch_size):
            n, c = self.sampler.hop(chunk, gen)
            nbr.append(n)
            w.append(c)
        nbr, w = torch.cat(nbr), torch.cat(w)
        ok = nbr >= 0
        dst = items.view(-1, 1).expand_as(nbr)
        h0 = torch.cat([self.inputs(c) for c in items.split(batch_size)])
        h = h0
        for conv in self.convs:
            out = []
            for chunk in items.split(batch_size):
                sel = ok[chunk]
                src = nbr[chunk][sel]
                rows = (dst[chunk] - chunk[0])[sel]
                # the chunk's neighbours, locally numbered after the chunk
                uniq, inv = torch.unique(src, return_inverse=True)
                x_src = h.index_select(0, uniq)
                out.append(conv((x_src, h[chunk]), torch.stack([inv, rows]),
                                w[chunk][sel]))
            h = torch.cat(out)
        z = h0 + h
        if not self.training:
            self._cache = (key, z, self._user_means(z))
        return z

    def _user_means(self, z: Tensor) -> Tensor:
        deg = (self.user_rowptr[1:] - self.user_rowptr[:-1])
        rows = torch.repeat_interleave(
            torch.arange(self.num_users, device=z.device), deg)
        out = torch.zeros(self.num_users, z.size(1), device=z.device,
                          dtype=z.dtype)
        out.index_add_(0, rows, z.index_select(0, self.user_col))
        return out / deg.clamp(min=1).view(-1, 1).to(z.dtype)

    @torch.no_grad()
    def embeddings(self) -> tuple[Tensor, Tensor]:
        """``(user_emb, item_emb)``: each user's mean over their training
        items and every item's vector (:meth:`item_embeddings`), the
        tables :meth:`score` ranks by; an export of the model writes
        them."""
        z = self.item_embeddings()
        if self._cache is not None and self._cache[1] is z:
            return self._cache[2], z
        return self._user_means(z), z

    @torch.no_grad()
    def item_scores(self, items: Tensor) -> Tensor:
        r""":math:`\mathbf{z}_q^\top \mathbf{z}_j` of the query items
        against every item, ``[len(items), num_items]``."""
        z = self.item_embeddings()
        return z[items.to(z.device)] @ z.t()

    @torch.no_grad()
    def score(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        r""":math:`\bar{\mathbf{z}}_u^\top \mathbf{z}_j` (mean of the
        user's training items against every item, or against ``items``
        ``[n]`` / ``[len(users), n]``)."""
        zu, zi = self.embeddings()
        u = zu[users.to(zi.device)]
        if items is None:
            return u @ zi.t()
        items = items.to(zi.device)
        if items.dim() == 1:
            return u @ zi[items].t()
        return (u.unsqueeze(1) * zi[items]).sum(-1)

    @torch.no_grad()
    def recommend(self, users: Tensor, k: int, exclude: CSR | None = None,
                  batch_size: int = 4096) -> tuple[Tensor, Tensor]:
        """Top-``k`` items per user, never an ``exclude`` item."""
        return chunked_topk(self.score, users, k, exclude, batch_size)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.num_users} users, '
                f'{self.num_items} items, dim={self.embedding_dim}, '
                f'{self.sampler!r})')
