from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn.conv import LGConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
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
from pyg_recsys.ops.propagate import propagate


class LightGCNConv(LGConv):
    r"""The light graph convolution of `"LightGCN: Simplifying and Powering
    Graph Convolution Network for Recommendation"
    <https://arxiv.org/abs/2002.02126>`_ (He et al., SIGIR 2020): neighbour
    aggregation with symmetric normalisation, and nothing else (no weight
    matrix, no non-linearity, no self-loop).

    In matrix form, on the user-item graph,

    .. math::
        \mathbf{E}^{(k+1)} = \mathbf{D}^{-1/2} \mathbf{A} \mathbf{D}^{-1/2}
        \mathbf{E}^{(k)},
        \qquad
        \mathbf{A} = \begin{pmatrix} \mathbf{0} & \mathbf{R} \\
        \mathbf{R}^\top & \mathbf{0} \end{pmatrix},

    where :math:`\mathbf{R} \in \{0,1\}^{U \times I}` is the user-item
    interaction matrix, :math:`\mathbf{D}` the diagonal degree matrix of
    :math:`\mathbf{A}` and :math:`\mathbf{E}^{(k)}` the embeddings after
    :math:`k` layers (users stacked above items).  Node-wise,

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i)}
        \frac{e_{j,i}}{\sqrt{\deg(j)} \sqrt{\deg(i)}} \, \mathbf{x}_j,

    where :math:`\mathcal{N}(i)` are the source nodes with an edge into
    target :math:`i`, :math:`e_{j,i}` the edge weight (default 1),
    :math:`\deg(j) = \sum_{i'} e_{j,i'}` the weighted out-degree of source
    :math:`j` and :math:`\deg(i) = \sum_{j'} e_{j',i}` the weighted in-degree
    of target :math:`i`.  On a homogeneous, undirected graph both are the
    node degree and the layer is exactly PyG's
    :class:`~torch_geometric.nn.conv.LGConv`, whose normalisation
    (:func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm` without self-loops)
    is used in that case.

    Relation to :class:`~torch_geometric.nn.conv.LGConv`: same operator,
    subclassed.  This layer adds
    (1) bipartite input ``(x_src, x_dst)``, with source out-degrees and
    target in-degrees, so that on the relations
    ``('user', 'interacts', 'item')`` and ``('item', 'rev_interacts',
    'user')`` it composes with :class:`~torch_geometric.nn.HeteroConv` /
    :func:`~torch_geometric.nn.to_hetero` into exactly LightGCN's
    propagation (:math:`1/\sqrt{|\mathcal{N}_u||\mathcal{N}_i|}`); and
    (2) a :class:`~pyg_recsys.ops.adj.NormAdj` as ``edge_index``: the cached,
    already normalised adjacency of any typed graph (users, items,
    entities), through :func:`pyg_recsys.ops.propagate.propagate`, the
    operator :class:`~pyg_recsys.nn.models.LightGCN` runs (one layer here):
    the fastest measured SpMM backend (``benchmarks/``) and a backward pass
    that exploits symmetry instead of transposing; (3) a
    :class:`~pyg_recsys.ops.adj.RowSlice` ``adj.rows(index)``: only the
    rows ``index`` of the output.  With a :class:`NormAdj` or
    :class:`RowSlice`, ``normalize`` and ``edge_weight`` are ignored, as
    their weights are already normalised.

    Args:
        normalize: Apply the symmetric normalisation above; if ``False``,
            messages are summed with their edge weights as given.
        **kwargs: Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F)` or
          :math:`((|\mathcal{V}_s|, F), (|\mathcal{V}_t|, F))`, edge indices
          :math:`(2, |\mathcal{E}|)`, a sparse adjacency
          :math:`(|\mathcal{V}_t|, |\mathcal{V}_s|)` or a
          :class:`~pyg_recsys.ops.adj.NormAdj`, edge weights
          :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, F)` or
          :math:`(|\mathcal{V}_t|, F)`
    """
    def __init__(self, normalize: bool = True, **kwargs) -> None:
        super().__init__(normalize=normalize, **kwargs)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Resets the layer (it has no learnable parameters)."""
        super().reset_parameters()

    def forward(self, x: Tensor | PairTensor,
                edge_index: Adj | NormAdj | RowSlice,
                edge_weight: OptTensor = None, size: Size = None) -> Tensor:
        if isinstance(edge_index, (NormAdj, RowSlice)):
            if not isinstance(x, Tensor):
                raise ValueError(
                    'LightGCNConv: a NormAdj holds the whole graph (all '
                    'node types stacked); pass x as one [num_nodes, F] '
                    'tensor, not a (x_src, x_dst) pair')
            if isinstance(edge_index, RowSlice):
                return edge_index.spmm(x)
            return propagate(edge_index, x, num_layers=1, alpha=(0.0, 1.0))

        if isinstance(x, Tensor):
            x_pair: OptPairTensor = (x, x)
            bipartite = False
        else:
            if self.flow != 'source_to_target':
                raise ValueError(
                    "LightGCNConv: bipartite (x_src, x_dst) input needs "
                    "flow='source_to_target'; flip edge_index instead")
            x_pair = (x[0], x[1])
            bipartite = True

        if size is None:
            n_dst = x_pair[1].size(self.node_dim) if x_pair[1] is not None \
                else None
            size = (x_pair[0].size(self.node_dim), n_dst)

        if self.normalize:
            if bipartite:
                edge_index, edge_weight = self._bipartite_norm(
                    edge_index, edge_weight, size, x_pair[0].dtype)
            elif isinstance(edge_index, SparseTensor):
                edge_index = gcn_norm(edge_index, None, size[0],
                                      add_self_loops=False, flow=self.flow,
                                      dtype=x_pair[0].dtype)
            else:
                edge_index, edge_weight = gcn_norm(
                    edge_index, edge_weight, size[0], add_self_loops=False,
                    flow=self.flow, dtype=x_pair[0].dtype)

        # propagate_type: (x: OptPairTensor, edge_weight: OptTensor)
        return self.propagate(edge_index, x=x_pair, edge_weight=edge_weight,
                              size=size)

    def _bipartite_norm(self, edge_index: Adj, edge_weight: OptTensor,
                        size: Size, dtype: torch.dtype):
        if size is None or size[1] is None:
            raise ValueError(
                'LightGCNConv: with bipartite input the number of target '
                'nodes is needed for normalisation; pass x_dst or size')
        return bipartite_norm(edge_index, edge_weight, size, dtype)

    def message_and_aggregate(self, adj_t: Adj, x: OptPairTensor) -> Tensor:
        return spmm(adj_t, x[0], reduce=self.aggr)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(normalize={self.normalize})'

