r"""NGCF (Wang et al., SIGIR 2019) over the cached normalised adjacency."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_recsys.nn.conv.ngcf_conv import NGCFConv
from pyg_recsys.nn.models.base import GraphEmbeddingRecommender
from pyg_recsys.ops import device as ops_device
from pyg_recsys.ops.adj import NormAdj


class NGCF(GraphEmbeddingRecommender):
    r"""The NGCF recommender from `"Neural Graph Collaborative Filtering"
    <https://arxiv.org/abs/1905.08108>`_ (Wang et al., SIGIR 2019).

    :math:`K` embedding propagation layers
    (:class:`~pyg_recsys.nn.conv.NGCFConv`, paper Eq. 7) refine the
    layer-0 table :math:`\mathbf{E}^{(0)}` over the symmetric normalised
    user-item Laplacian :math:`\mathbf{L}`
    (:class:`~pyg_recsys.ops.adj.NormAdj`, built once),

    .. math::
        \mathbf{H}^{(l)} = \mathrm{dropout}\Big(\mathrm{LeakyReLU}\big(
        (\mathbf{L} + \mathbf{I}) \mathbf{H}^{(l-1)} \mathbf{W}_1^{(l)}
        + (\mathbf{L} \mathbf{H}^{(l-1)} \odot \mathbf{H}^{(l-1)})
        \mathbf{W}_2^{(l)} + \mathbf{b}^{(l)}\big)\Big),
        \qquad \mathbf{H}^{(0)} = \mathbf{E}^{(0)},

    and the final representation concatenates all layers (Eq. 9), each
    propagated layer L2-normalised per row as in the reference code,

    .. math::
        \mathbf{e}_v = \mathbf{e}^{(0)}_v \,\Vert\,
        \frac{\mathbf{h}^{(1)}_v}{\lVert \mathbf{h}^{(1)}_v \rVert}
        \,\Vert\, \cdots \,\Vert\,
        \frac{\mathbf{h}^{(K)}_v}{\lVert \mathbf{h}^{(K)}_v \rVert},
        \qquad \hat{y}_{ui} = \mathbf{e}_u^\top \mathbf{e}_i,

    trained with BPR plus :math:`\frac{\lambda}{2|B|}` times the squared
    norms of the batch's layer-0 embeddings (:meth:`loss`).

    Regularisation (paper §2.4.2), active in training mode only:
    *message dropout* zeroes entries of every :math:`\mathbf{H}^{(l)}`
    with probability ``message_dropout`` (the dropped output also feeds the
    next layer, as in the reference code); *node dropout* removes each
    edge of :math:`\mathbf{L}` (user-item, and on a typed training graph
    every relation's) with probability ``node_dropout`` once per training
    step (shared by all layers) and rescales the kept entries by
    :math:`1/(1-p)`.

    Speed: the model runs its layer, :class:`~pyg_recsys.nn.conv.NGCFConv`,
    with one fused sparse-dense product (SpMM) per layer over the
    :class:`NormAdj` and its transpose-free backward pass.  When a batch
    touches fewer than half of the nodes, :meth:`loss` (and :meth:`forward`
    with ``index``) computes the last layer only for the batch's rows (a
    CSR row slice of :math:`\mathbf{L}`): :math:`K - 1` full SpMMs forward
    and backward plus two small ones instead of :math:`K` each
    (``benchmarks/cf_speed_gowalla.py`` times it).  Node dropout rescales a
    copy of the non-zero values (no re-normalisation, no index rebuild).

    Deviations from the paper and its reference code
    (``xiangwang1223/neural_graph_collaborative_filtering``):

    * :math:`\mathbf{L}` is the symmetric
      :math:`\mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}` of the paper
      (Eq. 7-8) with the self-connection in the first term only; the
      reference's default ``adj_type='norm'`` uses the row-normalised
      :math:`\tilde{\mathbf{D}}^{-1}(\mathbf{A}+\mathbf{I})` in both terms
      (see :class:`~pyg_recsys.nn.conv.NGCFConv`).
    * Node dropout drops each undirected user-item edge (both of its
      entries, so :math:`\mathbf{L}` stays symmetric and its gradient needs
      no transpose); the reference drops every stored entry of its
      (self-looped) matrix independently; the paper describes dropping
      whole nodes' outgoing messages.
    * The L2 penalty acts on the layer-0 rows of the batch (as LightGCN's
      code and :class:`EmbeddingRecommender`); the NGCF code penalises the
      final (concatenated) embeddings.  ``reg_weight`` defaults to the
      reference's ``decay = 1e-5``.
    * ``normalize_layers=False`` concatenates the raw layer outputs (the
      paper's Eq. 9 read literally).

    Initialisation follows the reference: Xavier-uniform user and item
    tables (each with its own fan) and layer weights and biases.  The
    adjacency is rebuilt from ``edge_index`` at construction and is not part
    of ``state_dict`` (pass the same training pairs when loading).

    Args:
        num_users: Number of users :math:`U`.
        num_items: Number of items :math:`I`.
        edge_index: ``[2, E]`` (user, item) training pairs, item ids from 0;
            message passing uses these only.
        embedding_dim: Size :math:`d_0` of the layer-0 embeddings.
        num_layers: Number of propagation layers :math:`K`.
        reg_weight: L2 weight :math:`\lambda`.
        hidden_channels: Output size :math:`d_l` of every layer: one int
            for all, or :math:`K` ints.
        message_dropout: Message dropout rate: one float for all layers, or
            :math:`K` floats.
        node_dropout: Edge drop rate of :math:`\mathbf{L}` per step (the
            reference's ``node_dropout``; off by default there too).
        normalize_layers: L2-normalise each propagated layer's rows before
            concatenation (reference code).
        negative_slope: LeakyReLU slope.
        pair_loss: ``'bpr'`` or ``'softmax'`` (see
            :class:`~pyg_recsys.nn.models.EmbeddingRecommender`).
        temperature: Softmax temperature of ``'softmax'``.
    """

    def __init__(self, num_users: int, num_items: int, edge_index: Tensor,
                 embedding_dim: int = 64, num_layers: int = 3,
                 reg_weight: float = 1e-5,
                 hidden_channels: int | Sequence[int] = 64,
                 message_dropout: float | Sequence[float] = 0.1,
                 node_dropout: float = 0.0, normalize_layers: bool = True,
                 negative_slope: float = 0.2, *, pair_loss: str = 'bpr',
                 temperature: float = 1.0) -> None:
        super().__init__(num_users, num_items, edge_index, embedding_dim,
                         reg_weight, pair_loss=pair_loss,
                         temperature=temperature)
        if num_layers < 0:
            raise ValueError(f'NGCF: num_layers must be >= 0, got '
                             f'{num_layers}')
        self.num_layers = num_layers
        hidden = _per_layer('hidden_channels', hidden_channels, num_layers)
        if any(int(h) != h or h <= 0 for h in hidden):
            raise ValueError(f'NGCF: hidden_channels must be positive '
                             f'integers, got {hidden_channels}')
        self.hidden_channels = tuple(int(h) for h in hidden)
        drop = _per_layer('message_dropout', message_dropout, num_layers)
        if any(not 0.0 <= p < 1.0 for p in drop):
            raise ValueError(f'NGCF: message_dropout must lie in [0, 1), '
                             f'got {message_dropout}')
        if not 0.0 <= node_dropout < 1.0:
            raise ValueError(f'NGCF: node_dropout must lie in [0, 1), got '
                             f'{node_dropout}')
        self.message_dropout = tuple(float(p) for p in drop)
        self.node_dropout = float(node_dropout)
        self.normalize_layers = normalize_layers
        dims = (embedding_dim, ) + self.hidden_channels
        self.convs = torch.nn.ModuleList(
            NGCFConv(dims[k], dims[k + 1], negative_slope=negative_slope)
            for k in range(num_layers))

        self.register_buffer('adj_edge', _edge_id(self.adj),
                             persistent=False)
        self.reset_parameters()

    @property
    def out_channels(self) -> int:
        """Size of the final (concatenated) embeddings."""
        return self.embedding_dim + sum(self.hidden_channels)

    def reset_parameters(self) -> None:
        r"""Xavier-uniform user and item tables and layer parameters, as the
        reference code."""
        self.xavier_tables_()
        for conv in self.convs:
            conv.reset_parameters()
        self.clear_cache()

    def dropped_adj(self) -> NormAdj:
        r""":math:`\mathbf{L}` with each user-item edge dropped with
        probability ``node_dropout`` and the kept ones scaled by
        :math:`1/(1-p)` (a fresh draw per call)."""
        p = self.node_dropout
        value = self.adj_value
        if p == 0.0:
            return self.adj
        draw = torch.rand(value.numel(), device=value.device)
        keep = draw.index_select(0, self.adj_edge) >= p
        value = value * keep.to(value.dtype) * (1.0 / (1.0 - p))
        return NormAdj(self.adj_rowptr, self.adj_col, value,
                       self.adj.node_counts)

    def _cache_key(self) -> tuple:
        params = tuple((p._version, p.data_ptr())
                       for p in self.convs.parameters())
        return super()._cache_key() + params

    def forward(self, index: Tensor | None = None) -> Tensor:
        r"""Final embeddings ``[*, out_channels]`` of node ids ``index``
        (users ``0 .. U-1``, items ``U + i``; any shape, repeats allowed),
        or of all nodes.  With ``index`` the last layer is computed only for
        those rows.  Dropout is active in training mode."""
        adj = self.dropped_adj() if self.training else self.adj
        h = self.embedding.weight
        if index is None:
            outs = [h]
            for k in range(self.num_layers):
                h = self._layer(k, h, adj)
                outs.append(self._readout(h))
            return torch.cat(outs, dim=-1)

        shape = (*index.shape, self.out_channels)
        if ops_device.sync_free(h.device):
            # no wait on the device: full layers, rows gathered as given
            uniq, inv, rows = index.reshape(-1), None, False
        else:
            uniq, inv = torch.unique(index.reshape(-1), return_inverse=True)
            # The row slice pays off when the batch touches few nodes
            # (Gowalla: 1.5-2x per step); on small graphs the full product
            # is cheaper.
            rows = 2 * uniq.numel() < self.num_nodes
        outs = [h.index_select(0, uniq)]
        for k in range(self.num_layers):
            if k < self.num_layers - 1 or not rows:
                h = self._layer(k, h, adj)
                outs.append(self._readout(h.index_select(0, uniq)))
            else:  # only the rows needed
                h_last = self._layer(k, (h, h.index_select(0, uniq)),
                                     adj.rows(uniq))
                outs.append(self._readout(h_last))
        out = torch.cat(outs, dim=-1)
        if inv is not None:
            out = out.index_select(0, inv)
        return out.view(shape)

    def _layer(self, k: int, h, adj) -> Tensor:
        out = self.convs[k](h, adj)
        return F.dropout(out, self.message_dropout[k], self.training)

    def _readout(self, h: Tensor) -> Tensor:
        return F.normalize(h, dim=-1) if self.normalize_layers else h

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.num_users} users, '
                f'{self.num_items} items, '
                f'embedding_dim={self.embedding_dim}, '
                f'num_layers={self.num_layers})')


def _per_layer(name: str, value, num_layers: int) -> tuple:
    if isinstance(value, (int, float)):
        return (value, ) * num_layers
    value = tuple(value)
    if len(value) != num_layers:
        raise ValueError(f'NGCF: {name} needs one value per layer '
                         f'(num_layers={num_layers}), got {len(value)}')
    return value


def _edge_id(adj: NormAdj) -> Tensor:
    """For every stored entry ``(r, c)`` of the symmetric ``adj``, one id
    shared with its mirror entry ``(c, r)``: the smaller of the two
    positions."""
    n = adj.num_nodes
    row, col = adj.row().long(), adj.col.long()
    key = row * n + col
    order = torch.argsort(key)
    mirror = order[torch.searchsorted(key[order], col * n + row)]
    pos = torch.arange(key.numel(), device=key.device)
    return torch.minimum(pos, mirror)
