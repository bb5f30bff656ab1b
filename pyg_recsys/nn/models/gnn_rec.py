r"""Shared base of the message-passing recommenders built from PyG's own
bipartite layers (GraphSAGE, GAT).

The user-item graph of :meth:`pyg_recsys.data.split.Split.graph` has two
edge types, ``('user', 'interacts', 'item')`` and its reverse
``('item', 'rev_interacts', 'user')``.  Every layer holds one PyG
convolution per edge type, called on bipartite ``(x_src, x_dst)`` input
through :class:`torch_geometric.nn.HeteroConv` (each node type receives
from exactly one edge type, so its ``aggr`` never combines anything).
:class:`~torch_geometric.nn.HeteroConv` was chosen over
:func:`~torch_geometric.nn.to_hetero` because it needs no
``torch.fx`` tracing, accepts a sampled
:class:`~torch_geometric.data.HeteroData` mini-batch as is, and costs one
dictionary look-up per edge type over calling the two layers by hand.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, ModuleList
from torch_geometric.data import HeteroData
from torch_geometric.nn import HeteroConv, MessagePassing
from torch_geometric.nn.resolver import activation_resolver

from pyg_recsys.data.loader import PairBatch
from pyg_recsys.loss import l2_reg
from pyg_recsys.nn.models.base import EmbeddingRecommender
from pyg_recsys.schema import ITEM, ITEM_USER, USER, USER_ITEM


class BipartiteGNNRecommender(EmbeddingRecommender):
    r"""Base class of BPR recommenders whose final embeddings come from a
    stack of PyG convolutions over the bipartite user-item graph.

    Layer-0 input of a node is its learnable embedding plus, where node
    features are given, a linear projection of them,

    .. math::
        \mathbf{h}^{(0)}_u = \mathbf{e}^{(0)}_u + \mathbf{W}_U
        \mathbf{x}_u, \qquad
        \mathbf{h}^{(0)}_i = \mathbf{e}^{(0)}_i + \mathbf{W}_I
        \mathbf{x}_i,

    then each of the :math:`L` layers updates items from their users and
    users from their items with one convolution per direction,

    .. math::
        \mathbf{h}^{(l+1)}_i = \mathrm{conv}^{(l)}_{U \to I}\big(
        \mathbf{h}^{(l)}_i, \{\mathbf{h}^{(l)}_u : u \in
        \mathcal{N}(i)\}\big), \qquad
        \mathbf{h}^{(l+1)}_u = \mathrm{conv}^{(l)}_{I \to U}\big(
        \mathbf{h}^{(l)}_u, \{\mathbf{h}^{(l)}_i : i \in
        \mathcal{N}(u)\}\big),

    with an activation :math:`\sigma` and dropout between layers (not after
    the last).  Scores are dot products of the last layer,
    :math:`\hat{y}_{ui} = \mathbf{h}^{(L)\top}_u \mathbf{h}^{(L)}_i`,
    trained with BPR plus :math:`\frac{\lambda}{2|B|}` times the squared
    norms of the batch's embedding rows :math:`\mathbf{e}^{(0)}` (the
    layers' weights are not penalised; add ``weight_decay`` to the
    optimizer for that).

    Training, either way through :meth:`loss`:

    * full graph: a :class:`~pyg_recsys.data.loader.PairBatch` (e.g. from
      :class:`~pyg_recsys.data.loader.PairLoader`); every step runs the
      layers over the whole training graph;
    * mini-batch: a sampled :class:`~torch_geometric.data.HeteroData`
      from :class:`~pyg_recsys.data.loader.LinkNeighborPairLoader` (PyG's
      :class:`~torch_geometric.loader.LinkNeighborLoader` in ``'triplet'``
      mode); the layers run on the sampled subgraph only, whose global
      node ids ``n_id`` pick the embedding rows and features, so memory
      does not grow with the graph.

    :meth:`score` and :meth:`recommend` run one full-graph pass in
    evaluation mode and cache it (see :class:`EmbeddingRecommender`; the
    cache key covers every parameter).

    Subclasses implement :meth:`init_conv` and call :meth:`_init_layers`
    at the end of their constructor; they may override
    :meth:`_full_graph_edges` to hand their layers sparse matrices
    (:class:`~pyg_recsys.nn.models.SAGERecommender` does).

    Args:
        num_users: Number of users :math:`U`.
        num_items: Number of items :math:`I`.
        edge_index: ``[2, E]`` (user, item) training pairs, item ids from
            0; message passing uses these only.
        embedding_dim: Embedding and hidden size :math:`d`.
        num_layers: Number of layers :math:`L \ge 1`.
        reg_weight: L2 weight :math:`\lambda`.
        user_x: Optional ``[U, F_U]`` user features.
        item_x: Optional ``[I, F_I]`` item features.
        dropout: Dropout probability between layers.
        act: Activation between layers (a name for
            :func:`torch_geometric.nn.resolver.activation_resolver` or a
            module).
        pair_loss: ``'bpr'`` or ``'softmax'`` (see
            :class:`EmbeddingRecommender`).
        temperature: Softmax temperature of ``'softmax'``.
    """

    def __init__(self, num_users: int, num_items: int, edge_index: Tensor,
                 embedding_dim: int = 64, num_layers: int = 2,
                 reg_weight: float = 1e-4, user_x: Tensor | None = None,
                 item_x: Tensor | None = None, dropout: float = 0.0,
                 act: str | torch.nn.Module = 'relu', *,
                 pair_loss: str = 'bpr', temperature: float = 1.0) -> None:
        super().__init__(num_users, num_items, embedding_dim, reg_weight,
                         pair_loss=pair_loss, temperature=temperature)
        name = type(self).__name__
        if num_layers < 1:
            raise ValueError(f'{name}: num_layers must be >= 1, got '
                             f'{num_layers}')
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'{name}: dropout must lie in [0, 1), got '
                             f'{dropout}')
        self.num_layers = num_layers
        self.dropout = dropout
        self.act = activation_resolver(act)
        edge_index = self._check_edges(edge_index)
        # Non-persistent buffers: they follow .to() but stay out of the
        # state_dict (pass the same training pairs when loading).
        self.register_buffer('edge_index_ui', edge_index, persistent=False)
        self.register_buffer('edge_index_iu', edge_index.flip(0),
                             persistent=False)
        self.user_lin = self._features('user_x', user_x, num_users)
        self.item_lin = self._features('item_x', item_x, num_items)
        self.convs = ModuleList()

    # ------------------------------------------------------------------
    def _check_edges(self, edge_index: Tensor) -> Tensor:
        name = type(self).__name__
        edge_index = torch.as_tensor(edge_index)
        if (edge_index.dim() != 2 or edge_index.size(0) != 2
                or edge_index.is_floating_point()):
            raise ValueError(f'{name}: edge_index must be a [2, E] integer '
                             f'tensor of (user, item) pairs, got shape '
                             f'{list(edge_index.shape)} and dtype '
                             f'{edge_index.dtype}')
        edge_index = edge_index.long()
        for row, kind, size in ((0, USER, self.num_users),
                                (1, ITEM, self.num_items)):
            ids = edge_index[row]
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
                raise ValueError(f'{name}: edge_index {kind} ids must lie in '
                                 f'[0, {size}), got [{int(ids.min())}, '
                                 f'{int(ids.max())}]')
        return edge_index

    def _features(self, attr: str, x: Tensor | None,
                  rows: int) -> Linear | None:
        if x is None:
            self.register_buffer(attr, None, persistent=False)
            return None
        if x.dim() != 2 or x.size(0) != rows:
            raise ValueError(f'{type(self).__name__}: {attr} must have shape '
                             f'[{rows}, F] (one row per node), got '
                             f'{list(x.shape)}')
        self.register_buffer(attr, x.float(), persistent=False)
        return Linear(x.size(1), self.embedding_dim)

    def init_conv(self, in_channels: int, out_channels: int,
                  last: bool) -> MessagePassing:
        """A bipartite convolution ``(x_src, x_dst) -> x_dst`` from
        ``in_channels`` to ``out_channels``; ``last`` marks the final
        layer."""
        raise NotImplementedError(
            f'{type(self).__name__}.init_conv: a subclass of '
            f'BipartiteGNNRecommender must return a MessagePassing layer')

    def _init_layers(self) -> None:
        """Builds the :attr:`convs` (one :class:`HeteroConv` per layer)
        and resets every parameter; subclasses call it last."""
        d = self.embedding_dim
        self.convs = ModuleList()
        for layer in range(self.num_layers):
            last = layer == self.num_layers - 1
            self.convs.append(HeteroConv({
                USER_ITEM: self.init_conv(d, d, last),
                ITEM_USER: self.init_conv(d, d, last),
            }, aggr='sum'))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Draws the embedding table from :math:`\mathcal{N}(0, 0.1^2)`
        and resets the projections and layers to their PyG defaults."""
        super().reset_parameters()
        for lin in (self.user_lin, self.item_lin):
            if lin is not None:
                lin.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    # ------------------------------------------------------------------
    def layer0(self, node_type: str, n_id: Tensor | None = None) -> Tensor:
        r"""Layer-0 input :math:`\mathbf{h}^{(0)}` of ``node_type``
        (``'user'`` or ``'item'``) for its local ids ``n_id`` (all nodes of
        that type if ``None``)."""
        if node_type == USER:
            x, lin = self.user_x, self.user_lin
        else:
            x, lin = self.item_x, self.item_lin
        if n_id is None:
            h = self.embedding[node_type]
        else:
            h = self.embedding(n_id, node_type)
        if lin is not None:
            h = h + lin(x if n_id is None else x[n_id])
        return h

    def encode(self, x_dict: dict[str, Tensor],
               edge_index_dict: dict[Any, Tensor]) -> dict[str, Tensor]:
        """Runs the layers: ``{'user': h, 'item': h}`` in, the last layer's
        ``{'user': ..., 'item': ...}`` out (whole graph or a sampled
        subgraph)."""
        for layer, conv in enumerate(self.convs):
            x_dict = conv(x_dict, edge_index_dict)
            if layer < self.num_layers - 1:
                x_dict = {
                    key: F.dropout(self.act(h), p=self.dropout,
                                   training=self.training)
                    for key, h in x_dict.items()
                }
        return x_dict

    def _full_graph_edges(self) -> dict[Any, Tensor]:
        """The training graph handed to the layers in full-graph passes:
        ``edge_index`` per edge type (subclasses may return sparse
        ``adj_t`` matrices their layers aggregate faster)."""
        return {USER_ITEM: self.edge_index_ui, ITEM_USER: self.edge_index_iu}

    def forward(self, index: Tensor | None = None) -> Tensor:
        r"""Final embeddings of node ids ``index`` (users ``0 .. U-1``, items
        ``U + i``; any shape), or of all nodes, users first; one pass over
        the whole training graph."""
        x_dict = {USER: self.layer0(USER), ITEM: self.layer0(ITEM)}
        out = self.encode(x_dict, self._full_graph_edges())
        out = torch.cat([out[USER], out[ITEM]])
        return out if index is None else out[index]

    # ------------------------------------------------------------------
    def loss(self, batch: PairBatch | HeteroData) -> Tensor:
        r"""BPR plus L2 on the batch's embedding rows (see
        :meth:`EmbeddingRecommender.loss`).

        Args:
            batch: A :class:`~pyg_recsys.data.loader.PairBatch` (full-graph
                pass) or a sampled :class:`HeteroData` with
                ``batch['user'].src_index``, ``batch['item'].dst_pos_index``
                ``[B]`` and ``batch['item'].dst_neg_index`` ``[B]`` or
                ``[B, N]`` (PyG's ``'triplet'`` link sampling, e.g.
                :class:`~pyg_recsys.data.loader.LinkNeighborPairLoader`).
        """
        if isinstance(batch, HeteroData):
            return self._subgraph_loss(batch)
        return super().loss(batch)

    def _subgraph_loss(self, batch: HeteroData) -> Tensor:
        user, item = batch[USER], batch[ITEM]
        need = ((USER, 'n_id'), (USER, 'src_index'), (ITEM, 'n_id'),
                (ITEM, 'dst_pos_index'), (ITEM, 'dst_neg_index'))
        missing = [f"batch['{t}'].{a}" for t, a in need
                   if a not in batch[t]]
        if missing:
            raise ValueError(
                f'{type(self).__name__}.loss: the HeteroData batch lacks '
                f'{missing}; sample it with LinkNeighborPairLoader (or '
                f"LinkNeighborLoader with neg_sampling='triplet' on "
                f'{USER_ITEM})')
        src, pos = user.src_index.view(-1), item.dst_pos_index.view(-1)
        neg = item.dst_neg_index
        if neg.dim() == 2 and neg.size(1) == 1:
            neg = neg.view(-1)
        x_dict = {USER: self.layer0(USER, user.n_id),
                  ITEM: self.layer0(ITEM, item.n_id)}
        out = self.encode(x_dict, batch.edge_index_dict)
        B = src.numel()
        e_u, e_p = out[USER][src], out[ITEM][pos]
        loss = self._batch_loss(e_u, e_p, out[ITEM][neg], neg, None)
        if self.reg_weight > 0:
            U = self.num_users
            rows = torch.cat([user.n_id[src], item.n_id[pos] + U,
                              item.n_id[neg.reshape(-1)] + U])
            loss = loss + self.reg_weight * l2_reg(self.embedding(rows),
                                                   batch_size=B)
        return loss

    # ------------------------------------------------------------------
    def _cache_key(self) -> tuple:
        params = tuple((p._version, p.data_ptr()) for p in self.parameters())
        buffers = tuple((b.values() if b.is_sparse_csr else b).data_ptr()
                        for b in self.buffers())
        return super()._cache_key() + params + buffers

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.num_users} users, '
                f'{self.num_items} items, '
                f'embedding_dim={self.embedding_dim}, '
                f'num_layers={self.num_layers})')
