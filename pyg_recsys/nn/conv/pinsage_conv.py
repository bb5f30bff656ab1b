r"""PinSage's importance-pooling convolution (Ying et al., KDD 2018)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.typing import Adj, OptTensor, PairTensor, SparseTensor
from torch_geometric.utils import scatter

from pyg_recsys.nn.conv.graphrec_conv import he_init


class PinSageConv(MessagePassing):
    r"""The CONVOLVE operator of Ying et al., `"Graph Convolutional Neural
    Networks for Web-Scale Recommender Systems"
    <https://arxiv.org/abs/1806.01973>`_ (KDD 2018), Algorithm 1.

    Each neighbour :math:`v \in \mathcal{N}(u)` of a node :math:`u` carries
    an importance :math:`\alpha_{uv} > 0` (its visit count by random walks
    from :math:`u`, :func:`~pyg_recsys.ops.random_walk.importance_neighbors`).
    The neighbourhood vector is the importance-weighted mean of the
    transformed neighbours, concatenated with the node's own vector, then
    a dense layer and L2 normalisation:

    .. math::
        \mathbf{n}_u = \frac{\sum_{v \in \mathcal{N}(u)} \alpha_{uv}\,
        \mathrm{ReLU}(\mathbf{Q}\mathbf{h}_v + \mathbf{q})}
        {\max\big(1, \sum_{v \in \mathcal{N}(u)} \alpha_{uv}\big)},
        \qquad
        \mathbf{z}_u = \mathrm{ReLU}\big(\mathbf{W}[\mathbf{h}_u \oplus
        \mathbf{n}_u] + \mathbf{w}\big), \qquad
        \mathbf{h}'_u = \mathbf{z}_u / \lVert \mathbf{z}_u \rVert_2.

    In matrix form, with :math:`\mathbf{A}` the ``[N_dst, N_src]`` matrix
    of importances and :math:`\mathbf{D} = \mathrm{diag}(\max(1,
    \mathbf{A}\mathbf{1}))`: :math:`\mathbf{N} = \mathbf{D}^{-1}\mathbf{A}\,
    \mathrm{ReLU}(\mathbf{H}_{src}\mathbf{Q}^\top + \mathbf{q})`.
    A node without neighbours gets :math:`\mathbf{n}_u = \mathbf{0}`; a
    zero :math:`\mathbf{z}_u` is left unnormalised.  The denominator's
    floor of 1 is the DGL example's (importances are visit counts, at
    least 1); the paper normalises by the sum alone.

    The input is bipartite, ``(x_src, x_dst)`` with ``edge_index`` from
    source (neighbour) to destination rows, so the layer composes with
    :class:`~torch_geometric.nn.HeteroConv` and mini-batch blocks whose
    destination nodes come first among the sources.  Besides the
    edge-list path (:meth:`message`), a ``SparseTensor`` adjacency (values:
    the importances) takes one sparse-dense product
    (:meth:`message_and_aggregate`); the two are tested equal.

    Args:
        in_channels: Size of :math:`\mathbf{h}` (or ``(src, dst)`` sizes).
        hidden_channels: Rows of :math:`\mathbf{Q}`.
        out_channels: Rows of :math:`\mathbf{W}`.
        normalize: L2-normalise the output (the paper's line 3).
        dropout: Dropout on both inputs in training (the DGL example uses
            0.5).
        **kwargs: Arguments of
            :class:`~torch_geometric.nn.conv.MessagePassing`.
    """

    def __init__(self, in_channels: int | tuple[int, int],
                 hidden_channels: int, out_channels: int,
                 normalize: bool = True, dropout: float = 0.0,
                 **kwargs) -> None:
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        if isinstance(in_channels, int):
            in_channels = (in_channels, in_channels)
        if min(*in_channels, hidden_channels, out_channels) < 1:
            raise ValueError(f'PinSageConv: channel sizes must be >= 1, got '
                             f'in={in_channels}, hidden={hidden_channels}, '
                             f'out={out_channels}')
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'PinSageConv: dropout must lie in [0, 1), '
                             f'got {dropout}')
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.normalize = normalize
        self.dropout = dropout
        self.lin_q = torch.nn.Linear(in_channels[0], hidden_channels)
        self.lin_w = torch.nn.Linear(in_channels[1] + hidden_channels,
                                     out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        # both layers feed a ReLU
        he_init(self.lin_q)
        he_init(self.lin_w)

    def forward(self, x: Tensor | PairTensor, edge_index: Adj,
                edge_weight: OptTensor = None) -> Tensor:
        """Args:
            x: ``[N, C]`` or ``(x_src [N_src, C_src], x_dst [N_dst,
                C_dst])``.
            edge_index: ``[2, E]`` (neighbour, node) pairs, or a
                ``SparseTensor`` ``[N_dst, N_src]`` whose values are the
                importances.
            edge_weight: ``[E]`` importances :math:`\\alpha` (default: 1).

        Returns:
            ``[N_dst, out_channels]``.
        """
        if isinstance(x, Tensor):
            x = (x, x)
        x_src, x_dst = x
        x_src = F.dropout(x_src, self.dropout, self.training)
        x_dst = F.dropout(x_dst, self.dropout, self.training)
        h_src = F.relu(self.lin_q(x_src))
        n_dst = x_dst.size(0)
        if isinstance(edge_index, SparseTensor):
            total = edge_index.sum(dim=1)
        else:
            if edge_weight is None:
                edge_weight = torch.ones(edge_index.size(1),
                                         dtype=h_src.dtype,
                                         device=h_src.device)
            total = scatter(edge_weight, edge_index[1], 0, dim_size=n_dst,
                            reduce='sum')
        agg = self.propagate(edge_index, x=(h_src, None),
                             edge_weight=edge_weight, size=(x_src.size(0),
                                                            n_dst))
        n = agg / total.clamp(min=1.0).view(-1, 1).to(agg.dtype)
        z = F.relu(self.lin_w(torch.cat([x_dst, n], dim=-1)))
        if self.normalize:
            norm = z.norm(dim=-1, keepdim=True)
            z = z / torch.where(norm > 0, norm, torch.ones_like(norm))
        return z

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        return x_j if edge_weight is None else \
            x_j * edge_weight.view(-1, 1)

    def message_and_aggregate(self, adj_t: SparseTensor,
                              x: PairTensor) -> Tensor:
        from torch_sparse import matmul
        return matmul(adj_t, x[0], reduce='sum')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.in_channels}, '
                f'{self.hidden_channels}, {self.out_channels}, '
                f'normalize={self.normalize})')
