r"""The KGAT layer: attentive embedding propagation with the bi-interaction
aggregator, and KGAT's knowledge-aware attention."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.typing import Adj, OptTensor, SparseTensor
from torch_geometric.utils import softmax, spmm

AGGREGATORS = ('bi-interaction', 'gcn', 'graphsage')


def kgat_attention(x: Tensor, edge_index: Tensor, edge_type: Tensor,
                   relation: Tensor, W: Tensor, num_nodes: int | None = None
                   ) -> Tensor:
    r"""KGAT's knowledge-aware attention (Wang et al., KDD 2019, Eq. 4-5):
    for an edge from tail :math:`t` to head :math:`h` over relation
    :math:`r`,

    .. math::
        \pi(h, r, t) = (\mathbf{W}_r \mathbf{e}_t)^\top
        \tanh(\mathbf{W}_r \mathbf{e}_h + \mathbf{e}_r), \qquad
        \tilde{\pi}(h, r, t) = \frac{\exp \pi(h, r, t)}
        {\sum_{(h, r', t') \in \mathcal{N}_h} \exp \pi(h, r', t')},

    a softmax over the edges of each head (scatter softmax, no dense
    matrix).  The projection runs relation by relation, so no ``[E, d,
    k]`` stack of matrices is built.

    Args:
        x: ``[N, d]`` node embeddings :math:`\mathbf{e}`.
        edge_index: ``[2, E]`` (tail, head): messages flow tail -> head.
        edge_type: ``[E]`` relation of each edge.
        relation: ``[R, k]`` relation embeddings :math:`\mathbf{e}_r`.
        W: ``[R, d, k]`` projections (:math:`\mathbf{e}^\top
            \mathbf{W}_r`, as the reference code multiplies).
        num_nodes: Number of heads (default ``x.size(0)``).

    Returns:
        ``[E]`` attention weights, summing to one over each head's edges.
    """
    t, h = edge_index
    pi = x.new_empty(edge_type.numel())
    order = torch.argsort(edge_type, stable=True)
    counts = torch.bincount(edge_type, minlength=relation.size(0)).tolist()
    start = 0
    for r, n in enumerate(counts):
        if n == 0:
            continue
        idx = order[start:start + n]
        start += n
        wh = x[h[idx]] @ W[r]
        wt = x[t[idx]] @ W[r]
        pi[idx] = (wt * torch.tanh(wh + relation[r])).sum(-1)
    return softmax(pi, h, num_nodes=num_nodes or x.size(0))


class KGATConv(MessagePassing):
    r"""The attentive embedding propagation layer of KGAT from Wang et
    al., `"KGAT: Knowledge Graph Attention Network for Recommendation"
    <https://arxiv.org/abs/1905.07854>`_ (KDD 2019).

    The ego-network of node :math:`h` (users, items and entities of the
    collaborative knowledge graph) is summed with given attention weights
    :math:`\tilde{\pi}` (:func:`kgat_attention`),

    .. math::
        \mathbf{e}_{\mathcal{N}_h} = \sum_{(h, r, t) \in \mathcal{N}_h}
        \tilde{\pi}(h, r, t)\, \mathbf{e}_t ,

    and combined with :math:`\mathbf{e}_h` by the bi-interaction
    aggregator (Eq. 8, the paper's default)

    .. math::
        \mathbf{e}_h' = \mathrm{LeakyReLU}(\mathbf{W}_1 (\mathbf{e}_h +
        \mathbf{e}_{\mathcal{N}_h})) + \mathrm{LeakyReLU}(\mathbf{W}_2
        (\mathbf{e}_h \odot \mathbf{e}_{\mathcal{N}_h})),

    or the GCN (:math:`\mathrm{LeakyReLU}(\mathbf{W}(\mathbf{e}_h +
    \mathbf{e}_{\mathcal{N}_h}))`) or GraphSAGE (:math:`\mathrm{LeakyReLU}
    (\mathbf{W}[\mathbf{e}_h \| \mathbf{e}_{\mathcal{N}_h}])`) aggregator;
    then message dropout and, as the reference code does, L2
    normalisation of every row.  The attention weights are an input: KGAT
    recomputes them once per epoch, without gradient, as the reference
    does.

    Args:
        in_channels: Input size.
        out_channels: Output size.
        aggregator: ``'bi-interaction'``, ``'gcn'`` or ``'graphsage'``.
        dropout: Message dropout after the aggregator.
        normalize: L2-normalise the output rows.
        **kwargs: Of :class:`~torch_geometric.nn.conv.MessagePassing`.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 aggregator: str = 'bi-interaction', dropout: float = 0.1,
                 normalize: bool = True, **kwargs) -> None:
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        if aggregator not in AGGREGATORS:
            raise ValueError(f'KGATConv: aggregator must be one of '
                             f'{AGGREGATORS}, got {aggregator!r}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.aggregator = aggregator
        self.dropout = dropout
        self.normalize = normalize
        first_in = 2 * in_channels if aggregator == 'graphsage' else \
            in_channels
        self.lin1 = torch.nn.Linear(first_in, out_channels)
        self.lin2 = (torch.nn.Linear(in_channels, out_channels)
                     if aggregator == 'bi-interaction' else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights, zero biases (the PyTorch port's
        initialisation)."""
        super().reset_parameters()
        for lin in (self.lin1, self.lin2):
            if lin is not None:
                torch.nn.init.xavier_uniform_(lin.weight)
                torch.nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None) -> Tensor:
        """``x`` ``[N, d]``; ``edge_index`` ``[2, E]`` (tail, head) with
        ``edge_weight`` ``[E]``, or a weighted ``SparseTensor`` /
        torch sparse adjacency (rows: heads)."""
        if isinstance(edge_index, Tensor) and \
                edge_index.layout == torch.sparse_csr:
            side = self.message_and_aggregate(edge_index, x)  # weighted
        else:
            side = self.propagate(edge_index, x=x, edge_weight=edge_weight)
        if self.aggregator == 'bi-interaction':
            out = (F.leaky_relu(self.lin1(x + side))
                   + F.leaky_relu(self.lin2(x * side)))
        elif self.aggregator == 'gcn':
            out = F.leaky_relu(self.lin1(x + side))
        else:
            out = F.leaky_relu(self.lin1(torch.cat([x, side], dim=-1)))
        out = F.dropout(out, p=self.dropout, training=self.training)
        return F.normalize(out, p=2, dim=-1) if self.normalize else out

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        return x_j if edge_weight is None else \
            edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: SparseTensor | Tensor,
                              x: Tensor) -> Tensor:
        if isinstance(adj_t, Tensor) and adj_t.layout == torch.sparse_csr:
            # (torch's CSR product directly: PyG's spmm converts the
            # layout on the way, which reads sizes back from a device)
            return torch.sparse.mm(adj_t, x)
        return spmm(adj_t, x, reduce=self.aggr)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, aggregator={self.aggregator!r})')


__all__ = ['KGATConv', 'kgat_attention']
