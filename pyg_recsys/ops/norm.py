r"""Symmetric normalisation of a bipartite relation, for the layers.

The graph layers (:class:`~pyg_recsys.nn.conv.LightGCNConv`,
:class:`~pyg_recsys.nn.conv.NGCFConv`) take user-item edges on bipartite
``(x_src, x_dst)`` input, where PyG's ``gcn_norm`` (one node set) does not
apply.  :func:`bipartite_norm` weights each edge :math:`(s, t)` by

.. math::
    \frac{w_{st}}{\sqrt{d_s \, d_t}}, \qquad
    d_s = \sum_{t'} w_{st'}, \quad d_t = \sum_{s'} w_{s't},

the source's out-degree and the target's in-degree, so the user-to-item
and item-to-user relations both reproduce
:math:`1 / \sqrt{|\mathcal{N}_u| |\mathcal{N}_i|}`.  Nodes without edges
get factor 0.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.typing import Adj, OptTensor, SparseTensor
from torch_geometric.utils import (
    is_torch_sparse_tensor,
    scatter,
    to_edge_index,
)
from torch_geometric.utils.sparse import set_sparse_value


def bipartite_norm(edge_index: Adj, edge_weight: OptTensor,
                   size: tuple[int, int], dtype: torch.dtype
                   ) -> tuple[Adj, OptTensor]:
    """Normalised ``(edge_index, edge_weight)`` of a bipartite relation.

    Args:
        edge_index: ``[2, E]`` (source, target) indices, or a
            ``SparseTensor`` / torch sparse ``adj_t`` of shape
            ``[n_dst, n_src]`` (PyG's transposed convention).
        edge_weight: ``[E]`` weights of index input (``None``: ones).
        size: ``(n_src, n_dst)``.
        dtype: dtype of the weights.

    Returns:
        Index input: ``(edge_index, weights)``; sparse input: the sparse
        matrix with normalised values and ``None``.
    """
    n_src, n_dst = size
    if isinstance(edge_index, SparseTensor):
        adj_t = edge_index
        if not adj_t.has_value():
            adj_t = adj_t.fill_value(1., dtype=dtype)
        row, col, value = adj_t.coo()
        value = value * _norm_factor(value, col, row, n_src, n_dst)
        return adj_t.set_value(value, layout='coo'), None
    if is_torch_sparse_tensor(edge_index):
        index, value = to_edge_index(edge_index)
        value = value.to(dtype)
        value = value * _norm_factor(value, index[1], index[0], n_src, n_dst)
        return set_sparse_value(edge_index, value), None
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), dtype=dtype,
                                 device=edge_index.device)
    return edge_index, edge_weight * _norm_factor(
        edge_weight, edge_index[0], edge_index[1], n_src, n_dst)


def _norm_factor(weight: Tensor, src: Tensor, dst: Tensor, n_src: int,
                 n_dst: int) -> Tensor:
    deg_src = scatter(weight, src, 0, dim_size=n_src, reduce='sum')
    deg_dst = scatter(weight, dst, 0, dim_size=n_dst, reduce='sum')
    inv_src = deg_src.pow(-0.5).masked_fill_(deg_src == 0, 0.)
    inv_dst = deg_dst.pow(-0.5).masked_fill_(deg_dst == 0, 0.)
    return inv_src[src] * inv_dst[dst]
