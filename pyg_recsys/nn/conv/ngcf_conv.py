from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.typing import (
    Adj,
    OptPairTensor,
    OptTensor,
    PairTensor,
    Size,
    SparseTensor,
)
from torch_geometric.utils import (
    spmm,
)

from pyg_recsys.ops.adj import NormAdj, RowSlice
from pyg_recsys.ops.norm import bipartite_norm


class NGCFConv(MessagePassing):
    r"""The graph convolution of `"Neural Graph Collaborative Filtering"
    <https://arxiv.org/abs/1905.08108>`_ (Wang et al., SIGIR 2019, Eq. 3-7):
    normalised neighbour sums plus a self-connection, transformed by
    :math:`\mathbf{W}_1`, and a bi-interaction term (neighbour sum times the
    node's own embedding, element-wise) transformed by
    :math:`\mathbf{W}_2`, followed by LeakyReLU.

    In matrix form (paper Eq. 7, with the reference code's biases),

    .. math::
        \mathbf{E}^{(l)} = \mathrm{LeakyReLU}\Big(
        (\mathbf{L} + \mathbf{I}) \mathbf{E}^{(l-1)} \mathbf{W}_1
        + \big(\mathbf{L} \mathbf{E}^{(l-1)} \odot \mathbf{E}^{(l-1)}\big)
        \mathbf{W}_2 + \mathbf{b}_1 + \mathbf{b}_2 \Big),
        \qquad
        \mathbf{L} = \mathbf{D}^{-1/2} \mathbf{A} \mathbf{D}^{-1/2},

    where :math:`\mathbf{E}^{(l)}` stacks the node embeddings after
    :math:`l` layers (users above items on the user-item graph),
    :math:`\mathbf{A}` is the adjacency matrix (on the user-item graph
    :math:`[[\mathbf{0}, \mathbf{R}], [\mathbf{R}^\top, \mathbf{0}]]`
    with :math:`\mathbf{R}` the interaction matrix), :math:`\mathbf{D}` its
    diagonal degree matrix, :math:`\mathbf{W}_1, \mathbf{W}_2 \in
    \mathbb{R}^{d_{l-1} \times d_l}` and :math:`\mathbf{b}_1, \mathbf{b}_2
    \in \mathbb{R}^{d_l}` the learned weights and biases, :math:`\odot` the
    element-wise product and the LeakyReLU slope 0.2.  Node-wise (Eq. 3-5),
    with messages :math:`\mathbf{m}_{u \leftarrow i} = p_{ui}
    (\mathbf{W}_1 \mathbf{e}_i + \mathbf{W}_2 (\mathbf{e}_i \odot
    \mathbf{e}_u))` from the neighbours :math:`i \in \mathcal{N}_u` and the
    self-connection :math:`\mathbf{m}_{u \leftarrow u} = \mathbf{W}_1
    \mathbf{e}_u`,

    .. math::
        \mathbf{e}^{\prime}_u = \mathrm{LeakyReLU}\Big(
        \mathbf{m}_{u \leftarrow u} + \sum_{i \in \mathcal{N}_u}
        \mathbf{m}_{u \leftarrow i} + \mathbf{b}_1 + \mathbf{b}_2\Big),
        \qquad p_{ui} = \frac{e_{i,u}}{\sqrt{\deg(i)} \sqrt{\deg(u)}},

    with :math:`e_{i,u}` the edge weight (default 1) and :math:`\deg` the
    weighted degree: on homogeneous input the in-degree of both nodes
    (:func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm` without
    self-loops), on bipartite input the out-degree of source :math:`i` and
    the in-degree of target :math:`u`; on the undirected user-item graph
    both give the paper's
    :math:`1/\sqrt{|\mathcal{N}_u||\mathcal{N}_i|}`.  :math:`\mathbf{W}_1`
    and :math:`\mathbf{W}_2` are linear, so the layer aggregates the raw
    neighbour embeddings :math:`\mathbf{s}_u = \sum_i p_{ui} \mathbf{e}_i`
    once (one sparse-dense product) and transforms afterwards:
    :math:`\mathbf{W}_1(\mathbf{s}_u + \mathbf{e}_u) + \mathbf{W}_2
    (\mathbf{s}_u \odot \mathbf{e}_u)`.

    Relation to the reference code (``xiangwang1223/
    neural_graph_collaborative_filtering``, ``NGCF.py``,
    ``_create_ngcf_embed``) and its PyTorch port (``huangtinglin/
    NGCF-PyTorch``): they compute ``side = A_hat @ ego``, ``sum = side @ W_gc
    + b_gc`` and ``bi = (ego * side) @ W_bi + b_bi`` with the default
    ``adj_type='norm'``, for which ``A_hat`` is the *row*-normalised
    :math:`\tilde{\mathbf{D}}^{-1}(\mathbf{A} + \mathbf{I})`, so the
    self-loop enters both terms and the bi-interaction term includes
    :math:`\mathbf{e}_u \odot \mathbf{e}_u`; the TF code also applies
    LeakyReLU to each term separately (the port to their sum, as here).
    This layer follows the paper's Eq. 7 instead: symmetric
    :math:`\mathbf{L}`, self-connection through :math:`+\mathbf{I}` in the
    first term only, one LeakyReLU.  Parameters map one-to-one:
    ``W_gc = lin_gc.weight.T``, ``b_gc = lin_gc.bias``, ``W_bi =
    lin_bi.weight.T``, ``b_bi = lin_bi.bias``, all Xavier-uniform
    initialised as in the reference (biases as ``[1, out]`` matrices).
    Message dropout acts on the layer's output and belongs to the model
    (:class:`~pyg_recsys.nn.models.NGCF`).  PyG has no NGCF layer.

    Inputs: ``edge_index`` may be ``[2, E]`` indices (with optional
    ``edge_weight``), a ``torch_sparse.SparseTensor`` or torch sparse
    ``adj_t`` (``[num_dst, num_src]``, multiplied in one fused product by
    :meth:`message_and_aggregate`), a :class:`~pyg_recsys.ops.adj.NormAdj`
    (the cached, already normalised user-item :math:`\mathbf{L}`, multiplied
    by its fastest measured SpMM with a transpose-free backward pass), or a
    :class:`~pyg_recsys.ops.adj.RowSlice` ``adj.rows(index)`` of one, with
    ``x = (x, x[index])``, which computes only the output rows ``index``.
    Bipartite ``(x_src, x_dst)`` input uses source out-degrees and target
    in-degrees and the destination embedding in the self and bi-interaction
    terms (:math:`\mathbf{e}_{dst} \odot \mathbf{s}_{dst}`), so that on the
    relations ``('user', 'interacts', 'item')`` and ``('item',
    'rev_interacts', 'user')`` one shared instance in
    :class:`~torch_geometric.nn.HeteroConv` is exactly the homogeneous
    layer.  With a :class:`NormAdj` or :class:`RowSlice`, ``normalize`` and
    ``edge_weight`` are ignored (the weights are already normalised).

    Args:
        in_channels: Size :math:`d_{l-1}` of the input embeddings (source
            and destination alike: the bi-interaction multiplies them).
        out_channels: Size :math:`d_l` of the output embeddings.
        negative_slope: LeakyReLU slope (0.2 in the paper's code).
        bias: Learn the biases :math:`\mathbf{b}_1, \mathbf{b}_2`
            (the reference code does; the paper's equations do not).
        normalize: Apply the symmetric normalisation :math:`p_{ui}`; if
            ``False``, ``edge_weight`` is taken as the precomputed
            :math:`p_{ui}` (default 1).
        **kwargs: Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, d_{l-1})` or
          :math:`((|\mathcal{V}_s|, d_{l-1}), (|\mathcal{V}_t|, d_{l-1}))`,
          edge indices :math:`(2, |\mathcal{E}|)` or a sparse adjacency
          :math:`(|\mathcal{V}_t|, |\mathcal{V}_s|)`, a :class:`NormAdj` or
          a :class:`RowSlice`, edge weights :math:`(|\mathcal{E}|)`
          *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, d_l)` or
          :math:`(|\mathcal{V}_t|, d_l)`
    """
    def __init__(self, in_channels: int, out_channels: int,
                 negative_slope: float = 0.2, bias: bool = True,
                 normalize: bool = True, **kwargs) -> None:
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.negative_slope = negative_slope
        self.normalize = normalize
        self.lin_gc = Linear(in_channels, out_channels, bias=bias,
                             weight_initializer='glorot')
        self.lin_bi = Linear(in_channels, out_channels, bias=bias,
                             weight_initializer='glorot')
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Xavier-uniform weights and biases, as the reference code (a
        bias is initialised as a ``[1, out_channels]`` matrix)."""
        super().reset_parameters()
        for lin in (self.lin_gc, self.lin_bi):
            lin.reset_parameters()
            if lin.bias is not None:
                with torch.no_grad():
                    torch.nn.init.xavier_uniform_(lin.bias.view(1, -1))

    def forward(self, x: Tensor | PairTensor,
                edge_index: Adj | NormAdj | RowSlice,
                edge_weight: OptTensor = None, size: Size = None) -> Tensor:
        if isinstance(x, Tensor):
            x_src, x_dst, bipartite = x, x, False
        else:
            x_src, x_dst, bipartite = x[0], x[1], True
        if x_dst is None:
            raise ValueError(
                'NGCFConv: the self-connection and bi-interaction terms need '
                'the destination embeddings; pass x as (x_src, x_dst) with '
                'x_dst a tensor, not None')
        if x_src.size(-1) != x_dst.size(-1):
            raise ValueError(
                f'NGCFConv: x_src and x_dst must have the same number of '
                f'features (the bi-interaction multiplies them), got '
                f'{x_src.size(-1)} and {x_dst.size(-1)}')

        if isinstance(edge_index, NormAdj):
            if bipartite:
                raise ValueError(
                    'NGCFConv: a NormAdj holds the whole user-item graph; '
                    'pass x as one [num_users + num_items, F] tensor, not a '
                    '(x_src, x_dst) pair')
            side = edge_index.spmm(x_src)
        elif isinstance(edge_index, RowSlice):
            if x_dst.size(0) != edge_index.num_rows:
                raise ValueError(
                    f'NGCFConv: with a RowSlice adj.rows(index) pass x as '
                    f'(x, x[index]); x_dst has {x_dst.size(0)} rows but '
                    f'index has {edge_index.num_rows}')
            side = edge_index.spmm(x_src)
        else:
            side = self._aggregate(x_src, x_dst, edge_index, edge_weight,
                                   size, bipartite)

        out = self.lin_gc(side + x_dst) + self.lin_bi(side * x_dst)
        return F.leaky_relu(out, self.negative_slope)

    def _aggregate(self, x_src: Tensor, x_dst: Tensor, edge_index: Adj,
                   edge_weight: OptTensor, size: Size,
                   bipartite: bool) -> Tensor:
        r""":math:`\mathbf{s} = \mathbf{L} \mathbf{X}_{src}` over indices or
        a sparse adjacency."""
        if bipartite and self.flow != 'source_to_target':
            raise ValueError(
                "NGCFConv: bipartite (x_src, x_dst) input needs "
                "flow='source_to_target'; flip edge_index instead")
        if size is None:
            size = (x_src.size(self.node_dim), x_dst.size(self.node_dim))
        if self.normalize:
            if bipartite:
                edge_index, edge_weight = bipartite_norm(
                    edge_index, edge_weight, size, x_src.dtype)
            elif isinstance(edge_index, SparseTensor):
                edge_index = gcn_norm(edge_index, None, size[0],
                                      add_self_loops=False, flow=self.flow,
                                      dtype=x_src.dtype)
            else:
                edge_index, edge_weight = gcn_norm(
                    edge_index, edge_weight, size[0], add_self_loops=False,
                    flow=self.flow, dtype=x_src.dtype)
        # propagate_type: (x: OptPairTensor, edge_weight: OptTensor)
        return self.propagate(edge_index, x=(x_src, x_dst),
                              edge_weight=edge_weight, size=size)

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Adj, x: OptPairTensor) -> Tensor:
        return spmm(adj_t, x[0], reduce=self.aggr)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels})')
