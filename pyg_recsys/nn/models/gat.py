r"""Graph attention (Velickovic et al., ICLR 2018) as a user-item
recommender."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import GATConv, MessagePassing

from pyg_recsys.nn.models.gnn_rec import BipartiteGNNRecommender


class GATRecommender(BipartiteGNNRecommender):
    r"""A graph attention recommender from `"Graph Attention Networks"
    <https://arxiv.org/abs/1710.10903>`_ (Velickovic et al., ICLR 2018),
    over the bipartite user-item graph with PyG's own
    :class:`~torch_geometric.nn.conv.GATConv` (one per edge direction and
    layer, see :class:`BipartiteGNNRecommender`).  For an item :math:`i`
    and each head :math:`k` (users likewise, with their own weights):

    .. math::
        \alpha^{k}_{iu} = \mathrm{softmax}_{u \in \mathcal{N}(i)}
        \Big(\mathrm{LeakyReLU}_{0.2}\big(
        \mathbf{a}^{k\top}_{s} \mathbf{W}^{k}_{s} \mathbf{h}_u +
        \mathbf{a}^{k\top}_{d} \mathbf{W}^{k}_{d} \mathbf{h}_i\big)\Big),
        \qquad
        \mathbf{h}'_i = \big\Vert_{k=1}^{K} \sum_{u \in \mathcal{N}(i)}
        \alpha^{k}_{iu} \mathbf{W}^{k}_{s} \mathbf{h}_u +
        \mathbf{W}_{r} \mathbf{h}_i + \mathbf{b}.

    Hidden layers concatenate :math:`K` heads of size :math:`d / K`; the
    last layer averages :math:`K` heads of size :math:`d` (as PyG's
    :class:`~torch_geometric.nn.models.GAT`).  ReLU (the paper: ELU; pass
    ``act='elu'``) and dropout between layers, dot-product scores, BPR plus
    L2 on the embedding rows.

    Deviations from the paper: the graph is bipartite, so there are no
    self-loops; instead the node's own state enters through GATConv's
    ``residual`` projection :math:`\mathbf{W}_r \mathbf{h}_i` (on by
    default; without it a node's own embedding would reach its output only
    over two hops).  Source and destination have separate projections
    :math:`\mathbf{W}_s, \mathbf{W}_d` (PyG's bipartite GATConv).  The
    loss is BPR for ranking instead of node classification.

    Cost: attention needs per-edge messages (no fused sparse product), so
    a full-graph step costs several times a
    :class:`~pyg_recsys.nn.models.SAGERecommender` step of the same size
    (``benchmarks/cf_speed_gowalla.py``); train large graphs on sampled
    subgraphs
    (:class:`~pyg_recsys.data.loader.LinkNeighborPairLoader`).

    Args:
        num_users: Number of users :math:`U`.
        num_items: Number of items :math:`I`.
        edge_index: ``[2, E]`` (user, item) training pairs, item ids from 0.
        embedding_dim: Embedding and hidden size :math:`d` (divisible by
            ``heads`` when ``num_layers > 1``).
        num_layers: Number of layers :math:`L`.
        reg_weight: L2 weight :math:`\lambda`.
        user_x: Optional ``[U, F_U]`` user features.
        item_x: Optional ``[I, F_I]`` item features.
        dropout: Dropout probability between layers.
        act: Activation between layers.
        heads: Number of attention heads :math:`K`.
        attention_dropout: Dropout on the attention coefficients.
        residual: Add the projected own state :math:`\mathbf{W}_r
            \mathbf{h}_i`.
        pair_loss: ``'bpr'`` or ``'softmax'`` (see
            :class:`~pyg_recsys.nn.models.EmbeddingRecommender`).
        temperature: Softmax temperature of ``'softmax'``.
    """

    def __init__(self, num_users: int, num_items: int, edge_index: Tensor,
                 embedding_dim: int = 64, num_layers: int = 2,
                 reg_weight: float = 1e-4, user_x: Tensor | None = None,
                 item_x: Tensor | None = None, dropout: float = 0.0,
                 act: str | torch.nn.Module = 'relu', heads: int = 2,
                 attention_dropout: float = 0.0,
                 residual: bool = True, *, pair_loss: str = 'bpr',
                 temperature: float = 1.0) -> None:
        super().__init__(num_users, num_items, edge_index, embedding_dim,
                         num_layers, reg_weight, user_x, item_x, dropout,
                         act, pair_loss=pair_loss, temperature=temperature)
        if heads < 1:
            raise ValueError(f'GATRecommender: heads must be >= 1, got '
                             f'{heads}')
        if num_layers > 1 and embedding_dim % heads != 0:
            raise ValueError(f'GATRecommender: embedding_dim '
                             f'({embedding_dim}) must be divisible by heads '
                             f'({heads}), the hidden layers concatenate '
                             f'heads of size embedding_dim / heads')
        self.heads = heads
        self.attention_dropout = attention_dropout
        self.residual = residual
        self._init_layers()

    def init_conv(self, in_channels: int, out_channels: int,
                  last: bool) -> MessagePassing:
        per_head = out_channels if last else out_channels // self.heads
        return GATConv((in_channels, in_channels), per_head,
                       heads=self.heads, concat=not last,
                       dropout=self.attention_dropout, add_self_loops=False,
                       residual=self.residual)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', heads={self.heads})'
