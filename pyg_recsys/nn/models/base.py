r"""Shared surface of the embedding-table BPR recommenders (MF, LightGCN,
NGCF, SimGCL, GraphSAGE, GAT).

They keep one embedding table per node type (users, items and, over a
knowledge graph, entities; :class:`~pyg_recsys.nn.embedding.
HeteroEmbedding`), map them to final embeddings (:meth:`forward`; the
identity for MF, graph propagation for LightGCN) and train with BPR plus
an L2 penalty on the batch's layer-0 embeddings.  Everything but
:meth:`forward` lives here: the loss, scoring, top-K recommendation and
the evaluation-time cache of the final embeddings.  They implement the
pairwise-ranking contract
(:class:`~pyg_recsys.nn.models.contract.PairwiseRanker`).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_recsys.data.loader import PairBatch
from pyg_recsys.loss import bpr_loss, l2_reg, sampled_softmax_loss
from pyg_recsys.nn.embedding import HeteroEmbedding
from pyg_recsys.ops.adj import NormAdj
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.topk import chunked_topk
from pyg_recsys.schema import ITEM, USER


def check_pairs(name: str, edge_index: Tensor, num_users: int,
                num_items: int) -> Tensor:
    """``edge_index`` as ``[2, E]`` long (user, item) pairs on the CPU,
    after checking its shape and that its ids lie in ``[0, num_users)``
    and ``[0, num_items)`` (errors name the model ``name``)."""
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f'{name}: edge_index must have shape [2, E] of '
                         f'(user, item) pairs, got '
                         f'{list(edge_index.shape)}')
    pairs = edge_index.detach().long().cpu()
    for row, kind, size in ((0, 'user', num_users), (1, 'item', num_items)):
        ids = pairs[row]
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
            raise ValueError(f'{name}: {kind} ids must lie in [0, {size}), '
                             f'got [{int(ids.min())}, {int(ids.max())}]')
    return pairs


class EmbeddingRecommender(torch.nn.Module):
    r"""Base class of BPR recommenders over one embedding table per node
    type, :math:`\mathbf{E}^{(0)}_U \in \mathbb{R}^{U \times d}` and
    :math:`\mathbf{E}^{(0)}_I \in \mathbb{R}^{I \times d}` (and, given
    ``extra_nodes``, e.g. entities), held by :attr:`embedding`
    (``model.embedding['item']`` is the item table).

    Subclasses implement :meth:`forward`, the final embeddings of node ids
    numbered across types (users ``0 .. U-1``, items ``U .. U+I-1``, then
    the extra types; :attr:`embedding`'s ``offsets``).

    In evaluation mode (``model.eval()``) :meth:`score` and
    :meth:`recommend` compute the final embeddings once and reuse them
    across calls, so scoring all users in chunks costs one forward pass.
    Every switch of mode (``model.train()``, ``model.eval()``) drops the
    cache, and so does any in-place update seen by the table's version
    counter (``load_state_dict``, :meth:`reset_parameters`) or a device
    move.  Fused optimizers and writes through ``weight.data`` do not bump
    the version counter, which is why the mode switch is the rule: every
    evaluator calls ``model.eval()`` first.  After changing the weights
    in evaluation mode by hand, call ``model.eval()`` (or
    :meth:`clear_cache`) again.

    Args:
        num_users: Number of users :math:`U`.
        num_items: Number of items :math:`I`.
        embedding_dim: Embedding size :math:`d`.
        reg_weight: Weight :math:`\lambda` of the L2 penalty
            (:func:`pyg_recsys.loss.l2_reg`).
        pair_loss: ``'bpr'`` (default) or ``'softmax'``: sampled softmax
            cross-entropy of each positive against its row's negatives
            (:func:`pyg_recsys.loss.sampled_softmax_loss`), the usual
            objective with in-batch negatives.
        temperature: Softmax temperature :math:`\tau` of ``'softmax'``.
        extra_nodes: Node types beyond users and items with their sizes
            (``{'entity': n}``), each with its own table (ids after the
            items').
    """

    PAIR_LOSSES = ('bpr', 'softmax')

    def __init__(self, num_users: int, num_items: int,
                 embedding_dim: int = 64, reg_weight: float = 1e-4, *,
                 pair_loss: str = 'bpr', temperature: float = 1.0,
                 extra_nodes: Mapping[str, int] | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        if num_users <= 0 or num_items <= 0:
            raise ValueError(f'{name}: num_users and num_items must be '
                             f'positive, got {num_users} and {num_items}')
        if embedding_dim <= 0:
            raise ValueError(f'{name}: embedding_dim must be positive, got '
                             f'{embedding_dim}')
        if reg_weight < 0:
            raise ValueError(f'{name}: reg_weight must be >= 0, got '
                             f'{reg_weight}')
        self._check_pair_loss(pair_loss, temperature)
        self.num_users = num_users
        self.num_items = num_items
        self.embedding_dim = embedding_dim
        self.reg_weight = reg_weight
        self.pair_loss = pair_loss
        self.temperature = temperature
        self.embedding = HeteroEmbedding(
            {USER: num_users, ITEM: num_items, **(extra_nodes or {})},
            embedding_dim)
        self._cache: tuple[tuple, Tensor] | None = None

    @property
    def num_nodes(self) -> int:
        """Rows of the stacked table (all node types)."""
        return self.embedding.weight.size(0)

    def reset_parameters(self) -> None:
        r"""Draws the table from :math:`\mathcal{N}(0, 0.1^2)`, the
        initialisation of the LightGCN reference code (He et al., 2020),
        used for MF as well."""
        torch.nn.init.normal_(self.embedding.weight, std=0.1)
        self.clear_cache()

    def forward(self, index: Tensor | None = None) -> Tensor:
        r"""Final embeddings of the node ids ``index`` (any shape; users
        ``0 .. U-1``, items ``U + i``), or of all nodes, users first."""
        raise NotImplementedError(
            f'{type(self).__name__}.forward: a subclass of '
            f'EmbeddingRecommender must implement forward(index) returning '
            f'the final embeddings of node ids')

    # ------------------------------------------------------------------
    def _loss_embeddings(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        """Final and layer-0 embeddings of ``nodes``."""
        return self(nodes), self.embedding(nodes)

    def _check_pair_loss(self, pair_loss: str, temperature: float) -> None:
        if pair_loss not in self.PAIR_LOSSES:
            raise ValueError(f"{type(self).__name__}: unknown pair_loss "
                             f"'{pair_loss}'; choose one of "
                             f'{self.PAIR_LOSSES}')
        if not temperature > 0:
            raise ValueError(f'{type(self).__name__}: temperature must be '
                             f'positive, got {temperature}')

    def _pair_loss(self, pos: Tensor, neg: Tensor,
                   mask: Tensor | None) -> Tensor:
        """BPR or sampled softmax of ``pos`` ``[B]`` against ``neg``
        ``[B]`` / ``[B, N]``, leaving out pairs where ``mask`` is False."""
        if self.pair_loss != 'bpr':
            self._check_pair_loss(self.pair_loss, self.temperature)
            if neg.dim() == 1:
                neg = neg.unsqueeze(-1)
            if mask is not None:
                neg = neg.masked_fill(~mask.view_as(neg), float('-inf'))
            return sampled_softmax_loss(pos, neg,
                                        temperature=self.temperature)
        if mask is None:
            return bpr_loss(pos, neg)
        if neg.dim() == 2:
            pos = pos.unsqueeze(-1)
        loss = -F.logsigmoid(pos - neg).masked_fill(~mask, 0.0)
        return loss.sum() / mask.sum().clamp(min=1)

    def _unpack(self, batch: PairBatch
                ) -> tuple[Tensor, Tensor, Tensor, Tensor | None, bool]:
        """``(user, pos, neg, neg_mask, shared)`` of a pair batch, with the
        shapes checked (see :meth:`loss`)."""
        user, pos, neg = batch.user.view(-1), batch.pos.view(-1), batch.neg
        mask = getattr(batch, 'neg_mask', None)
        shared = bool(getattr(batch, 'shared', False))
        B = user.numel()
        if shared:
            bad_mask = mask is not None and tuple(mask.shape) != (
                B, neg.numel())
            if pos.numel() != B or neg.dim() != 1 or bad_mask:
                raise ValueError(
                    f'{type(self).__name__}.loss: shared negatives need user '
                    f'and pos of shape [B], neg of shape [N] and neg_mask of '
                    f'shape [B, N], got {list(user.shape)}, '
                    f'{list(pos.shape)}, {list(neg.shape)} and '
                    f'{None if mask is None else list(mask.shape)}')
            return user, pos, neg, mask, shared
        if pos.numel() != B or neg.dim() not in (1, 2) or neg.size(0) != B:
            raise ValueError(
                f'{type(self).__name__}.loss: expected user and pos of shape '
                f'[B] and neg of shape [B] or [B, N], got '
                f'{list(batch.user.shape)}, {list(batch.pos.shape)} and '
                f'{list(neg.shape)}')
        if mask is not None and mask.shape != neg.shape:
            raise ValueError(
                f'{type(self).__name__}.loss: neg_mask must have the shape '
                f'of neg, {list(neg.shape)}, got {list(mask.shape)}')
        return user, pos, neg, mask, shared

    def _batch_loss(self, e_u: Tensor, e_p: Tensor, e_n: Tensor,
                    neg: Tensor, mask: Tensor | None,
                    shared: bool = False) -> Tensor:
        """The pair loss (:meth:`_pair_loss`) of final embeddings: ``e_u``
        and ``e_p`` ``[B, d]``; ``e_n`` the rows of ``neg``, ``[N, d]`` when
        ``shared`` (scored by every user), else ``[B, d]`` or, for ``neg``
        of shape ``[B, N]``, ``[B * N, d]`` or ``[B, N, d]``."""
        pos_score = (e_u * e_p).sum(-1)
        if shared:
            neg_score = e_u @ e_n.t()
        elif neg.dim() == 2:
            e_n = e_n.view(e_u.size(0), neg.size(1), -1)
            neg_score = (e_u.unsqueeze(1) * e_n).sum(-1)
        else:
            neg_score = (e_u * e_n).sum(-1)
        if mask is None and self.pair_loss == 'bpr':
            return bpr_loss(pos_score, neg_score)
        return self._pair_loss(pos_score, neg_score, mask)

    def loss(self, batch: PairBatch) -> Tensor:
        r"""BPR loss plus L2 penalty on the batch's layer-0 embeddings:

        .. math::
            \mathcal{L} = -\frac{1}{|B|} \sum_{(u,i,j) \in B}
            \log\sigma(\mathbf{e}_u^\top \mathbf{e}_i - \mathbf{e}_u^\top
            \mathbf{e}_j) + \frac{\lambda}{2|B|} \sum_{(u,i,j) \in B}
            \big(\lVert\mathbf{e}^{(0)}_u\rVert^2 +
            \lVert\mathbf{e}^{(0)}_i\rVert^2 +
            \lVert\mathbf{e}^{(0)}_j\rVert^2\big)

        With ``pair_loss='softmax'`` the BPR term is replaced by sampled
        softmax cross-entropy over each row's positive and negatives.

        Args:
            batch: ``user`` and ``pos`` ``[B]``, ``neg`` ``[B]`` or
                ``[B, N]`` (item ids from 0); the mean runs over all
                (positive, negative) pairs and every negative is penalised.
                With ``batch.neg_mask`` (bool, shaped like ``neg``) the
                mean runs over the pairs where it is ``True`` only.  With
                ``batch.shared`` ``neg`` is ``[N]`` items scored by every
                user (one ``[B, d] x [d, N]`` product; ``neg_mask``
                ``[B, N]``), and the penalty counts each shared negative
                once, not once per user; in-batch negatives
                (``neg`` equal to ``pos``) reuse the positives' embeddings
                and add no penalty of their own.
        """
        user, pos, neg, mask, shared = self._unpack(batch)
        B, U = user.numel(), self.num_users
        # in-batch negatives (shared, equal to the positives) reuse e_p
        # (same storage first: torch.equal reads a value back from the
        # device, and InBatchSampler hands over the positives themselves)
        in_batch = shared and neg.numel() == B and (
            (neg.data_ptr() == pos.data_ptr() and neg.dtype == pos.dtype)
            or torch.equal(neg, pos))
        parts = [user, pos + U] if in_batch else [user, pos + U,
                                                  neg.reshape(-1) + U]
        final, layer0 = self._loss_embeddings(torch.cat(parts))
        e_u, e_p = final[:B], final[B:2 * B]
        e_n = e_p if in_batch else final[2 * B:]
        loss = self._batch_loss(e_u, e_p, e_n, neg, mask, shared)
        if self.reg_weight > 0:
            loss = loss + self.reg_weight * l2_reg(layer0, batch_size=B)
        return loss

    # ------------------------------------------------------------------
    def _cache_key(self) -> tuple:
        w = self.embedding.weight
        return (w._version, w.data_ptr(), w.dtype, w.device)

    def clear_cache(self) -> None:
        """Drops the cached final embeddings of evaluation mode."""
        self._cache = None

    def train(self, mode: bool = True) -> EmbeddingRecommender:
        """Sets the mode (``eval()`` calls it too) and drops the cache."""
        self.clear_cache()
        return super().train(mode)

    def all_embeddings(self) -> Tensor:
        """Final embeddings of every node: users, then items, then any
        other node type of the model's graph (a knowledge graph's
        entities); cached in evaluation mode when gradients are off (see
        the class docstring)."""
        if self.training or torch.is_grad_enabled():
            self._cache = None
            return self()
        key = self._cache_key()
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self())
        return self._cache[1]

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """Final ``(user_emb, item_emb)`` (of :meth:`all_embeddings`)."""
        out = self.all_embeddings()
        num_u, num_i = self.num_users, self.num_items
        return out[:num_u], out[num_u:num_u + num_i]

    @torch.no_grad()
    def score(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        r"""Scores :math:`\mathbf{e}_u^\top \mathbf{e}_i` (no gradient).

        Args:
            users: ``[B]`` user ids.
            items: ``None`` for all items (``[B, num_items]``), ``[n]`` item
                ids shared by all users (``[B, n]``), or ``[B, n]`` item ids
                per user (``[B, n]``).
        """
        user_emb, item_emb = self.embeddings()
        u = user_emb[users.view(-1).to(user_emb.device)]
        if items is None:
            return u @ item_emb.t()
        items = items.to(item_emb.device)
        if items.dim() == 1:
            return u @ item_emb[items].t()
        if items.dim() == 2 and items.size(0) == u.size(0):
            return (u.unsqueeze(1) * item_emb[items]).sum(-1)
        raise ValueError(
            f'{type(self).__name__}.score: items must be None, [n] or '
            f'[len(users), n], got shape {list(items.shape)} for '
            f'{u.size(0)} users')

    @torch.no_grad()
    def item_scores(self, items: Tensor) -> Tensor:
        r"""Item-to-item scores :math:`\mathbf{e}_a^\top \mathbf{e}_i` of
        the query items ``items`` ``[n]`` against all items,
        ``[n, num_items]``, over the final embeddings of
        :meth:`embeddings` (no gradient; the query item itself is scored
        too, callers mask it with the other known items).  The
        item-to-item protocol of PinSage
        (:class:`~pyg_recsys.train.ItemToItemEvaluator`)."""
        if items.dim() != 1:
            raise ValueError(f'{type(self).__name__}.item_scores: items '
                             f'must be [n] item ids, got shape '
                             f'{list(items.shape)}')
        _, item_emb = self.embeddings()
        return item_emb[items.to(item_emb.device)] @ item_emb.t()

    @torch.no_grad()
    def recommend(self, users: Tensor, k: int, exclude: CSR | None = None,
                  batch_size: int = 4096) -> tuple[Tensor, Tensor]:
        """Top-``k`` items per user, never an item of ``exclude`` (e.g. the
        training items); propagates once, then scores users in chunks of
        ``batch_size`` (:func:`pyg_recsys.ops.topk.chunked_topk`).

        Returns:
            ``(scores, items)``, both ``[len(users), k]``, best first;
            item ``-1`` (score ``-inf``) where fewer than ``k`` items are
            left.
        """
        user_emb, item_emb = self.embeddings()
        item_t = item_emb.t()

        def score_fn(chunk: Tensor) -> Tensor:
            return user_emb[chunk.to(user_emb.device)] @ item_t

        return chunked_topk(score_fn, users, k, exclude, batch_size)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.num_users} users, '
                f'{self.num_items} items, '
                f'embedding_dim={self.embedding_dim})')


class GraphEmbeddingRecommender(EmbeddingRecommender):
    r"""An :class:`EmbeddingRecommender` that propagates over the symmetric
    normalised adjacency of its training graph
    (:class:`~pyg_recsys.ops.adj.NormAdj`; LightGCN, NGCF, SimGCL).

    The graph is the user-item training pairs, or a typed
    :class:`~torch_geometric.data.HeteroData` such as
    :meth:`Split.graph() <pyg_recsys.data.split.Split.graph>` of a data
    set with a knowledge graph or trust links: every relation joins the
    propagation (KGAT's collaborative knowledge graph, without a special
    case) and every extra node type gets its own embedding table; scores
    stay user-item.

    The adjacency is built once at construction and kept in
    non-persistent buffers: it follows ``.to()`` / ``.double()`` but stays
    out of the ``state_dict`` (pass the same training graph when loading).

    Args:
        num_users: Number of users :math:`U`.
        num_items: Number of items :math:`I`.
        edge_index: ``[2, E]`` (user, item) training pairs, item ids from 0,
            or a typed training graph with ``'user'`` and ``'item'`` nodes;
            message passing uses these only.
        embedding_dim: Embedding size :math:`d`.
        reg_weight: L2 weight :math:`\lambda`.
        pair_loss: ``'bpr'`` or ``'softmax'`` (see
            :class:`EmbeddingRecommender`).
        temperature: Softmax temperature of ``'softmax'``.
    """

    def __init__(self, num_users: int, num_items: int,
                 edge_index: Tensor | HeteroData,
                 embedding_dim: int = 64, reg_weight: float = 1e-4, *,
                 pair_loss: str = 'bpr', temperature: float = 1.0) -> None:
        if isinstance(edge_index, HeteroData):
            counts, edges = _typed_graph(type(self).__name__, edge_index,
                                         num_users, num_items)
            extra = {t: n for t, n in counts.items() if t not in (USER,
                                                                  ITEM)}
        else:
            extra = None
        super().__init__(num_users, num_items, embedding_dim, reg_weight,
                         pair_loss=pair_loss, temperature=temperature,
                         extra_nodes=extra)
        if isinstance(edge_index, HeteroData):
            adj = NormAdj.from_edges(counts, edges)
        else:
            adj = NormAdj.from_edge_index(edge_index, num_users, num_items)
        self.register_buffer('adj_rowptr', adj.rowptr, persistent=False)
        self.register_buffer('adj_col', adj.col, persistent=False)
        self.register_buffer('adj_value', adj.value, persistent=False)
        self._adj = adj

    @property
    def adj(self) -> NormAdj:
        """The normalised adjacency, rebuilt (without copying) when the
        module moved to another device or dtype."""
        adj = self._adj
        if (adj.value is not self.adj_value or adj.col is not self.adj_col
                or adj.rowptr is not self.adj_rowptr):
            adj = NormAdj(self.adj_rowptr, self.adj_col, self.adj_value,
                          adj.node_counts)
            self._adj = adj
        return adj

    def _cache_key(self) -> tuple:
        return super()._cache_key() + (self.adj_value.data_ptr(), )

    def xavier_tables_(self) -> None:
        """Xavier-uniform tables, each node type's on its own (the
        initialisation of the NGCF and SimGCL reference code)."""
        with torch.no_grad():
            for node_type in self.embedding.node_types:
                torch.nn.init.xavier_uniform_(self.embedding[node_type])
        self.clear_cache()


def _typed_graph(name: str, graph: HeteroData, num_users: int,
                 num_items: int) -> tuple[dict[str, int], dict]:
    """Node counts (users, items, then the others in the graph's order)
    and edges of a typed training graph, checked against the sizes."""
    for node_type, size in ((USER, num_users), (ITEM, num_items)):
        got = graph[node_type].num_nodes if node_type in graph.node_types \
            else None
        if got != size:
            raise ValueError(f'{name}: the graph has {got} {node_type} '
                             f'nodes but the model {size}; build both from '
                             f'the same split')
    counts = {USER: num_users, ITEM: num_items}
    counts.update({t: graph[t].num_nodes for t in graph.node_types
                   if t not in counts})
    return counts, {t: graph[t].edge_index for t in graph.edge_types}
