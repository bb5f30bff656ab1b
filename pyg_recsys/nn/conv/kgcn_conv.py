r"""The KGCN layer: user-specific relation attention over a sampled
knowledge-graph neighbourhood."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.typing import Adj, OptTensor, PairTensor
from torch_geometric.utils import softmax

AGGREGATORS = ('sum', 'concat', 'neighbor')


class KGCNConv(MessagePassing):
    r"""The knowledge graph convolution of Wang et al., `"Knowledge Graph
    Convolutional Networks for Recommender Systems"
    <https://arxiv.org/abs/1904.12575>`_ (WWW 2019).

    For a user :math:`u` (embedding :math:`\mathbf{u}`) and an entity
    :math:`v` with sampled neighbours :math:`\mathcal{S}(v)` reached over
    relations :math:`r_{v,e}` (embeddings :math:`\mathbf{r}`), the
    user-relation score and the neighbourhood are

    .. math::
        \pi^u_{r} = \frac{1}{d}\, \mathbf{u}^\top \mathbf{r}, \qquad
        \tilde{\pi}^u_{r_{v,e}} = \frac{\exp \pi^u_{r_{v,e}}}
        {\sum_{e' \in \mathcal{S}(v)} \exp \pi^u_{r_{v,e'}}}, \qquad
        \mathbf{v}^u_{\mathcal{S}(v)} = \frac{1}{|\mathcal{S}(v)|}
        \sum_{e \in \mathcal{S}(v)} \tilde{\pi}^u_{r_{v,e}}\, \mathbf{e},

    and the layer's output is one of the paper's aggregators

    .. math::
        \text{sum: } \sigma(\mathbf{W} (\mathbf{v} +
        \mathbf{v}^u_{\mathcal{S}(v)}) + \mathbf{b}), \quad
        \text{concat: } \sigma(\mathbf{W} [\mathbf{v} \,\|\,
        \mathbf{v}^u_{\mathcal{S}(v)}] + \mathbf{b}), \quad
        \text{neighbor: } \sigma(\mathbf{W}
        \mathbf{v}^u_{\mathcal{S}(v)} + \mathbf{b}).

    As in the reference code (not the paper's equations): the score is
    the *mean* of :math:`\mathbf{u} \odot \mathbf{r}` (hence :math:`1/d`),
    and the weighted neighbours are *averaged* over the :math:`|\mathcal{S}
    (v)|` sampled slots (hence :math:`1/|\mathcal{S}(v)|`, the ``'mean'``
    aggregation of the weighted messages); :math:`\sigma` is ReLU, tanh
    in the last layer of a model.

    Two paths compute the same operator: :meth:`forward` over an edge list
    (any neighbourhood, one user embedding per destination node: a
    drop-in layer for a PyG graph, scatter softmax per destination), and
    :meth:`forward_dense` over a fixed fan-out ``[..., K]`` (the model's
    receptive field, where the softmax is a dense one and the users
    broadcast against the items, so every item is scored for many users
    without copying the items).

    Args:
        channels: Embedding size :math:`d` (input and output).
        aggregator: ``'sum'``, ``'concat'`` or ``'neighbor'``.
        act: :math:`\sigma` (default ReLU).
        bias: Learn :math:`\mathbf{b}`.
        **kwargs: Of :class:`~torch_geometric.nn.conv.MessagePassing`.
    """

    def __init__(self, channels: int, aggregator: str = 'sum',
                 act: Callable[[Tensor], Tensor] | None = None,
                 bias: bool = True, **kwargs) -> None:
        kwargs.setdefault('aggr', 'mean')
        super().__init__(**kwargs)
        if aggregator not in AGGREGATORS:
            raise ValueError(f'KGCNConv: aggregator must be one of '
                             f'{AGGREGATORS}, got {aggregator!r}')
        self.channels = channels
        self.aggregator = aggregator
        self.act = act if act is not None else torch.relu
        in_dim = 2 * channels if aggregator == 'concat' else channels
        self.lin = torch.nn.Linear(in_dim, channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights and a zero bias (the reference's
        initialisers)."""
        super().reset_parameters()
        torch.nn.init.xavier_uniform_(self.lin.weight)
        if self.lin.bias is not None:
            torch.nn.init.zeros_(self.lin.bias)

    @staticmethod
    def relation_scores(user: Tensor, relation: Tensor) -> Tensor:
        r""":math:`\pi^u_r` (broadcast over leading dimensions)."""
        return (user * relation).mean(-1)

    def combine(self, x_self: Tensor, neigh: Tensor) -> Tensor:
        """The aggregator: ``x_self`` and the neighbourhood vector to the
        layer's output."""
        if self.aggregator == 'sum':
            h = x_self + neigh
        elif self.aggregator == 'concat':
            x_self, neigh = torch.broadcast_tensors(x_self, neigh)
            h = torch.cat([x_self, neigh], dim=-1)
        else:
            h = neigh
        return self.act(self.lin(h))

    def forward(self, x: Tensor | PairTensor, edge_index: Adj,
                relation: Tensor, user: Tensor) -> Tensor:
        """Edge-list path.

        Args:
            x: Entity embeddings ``[N, d]``, or ``(x_src, x_dst)``.
            edge_index: ``[2, E]`` neighbour -> centre.
            relation: ``[E, d]`` embedding of each edge's relation.
            user: ``[N_dst, d]`` the user each destination is computed
                for.
        """
        if isinstance(x, Tensor):
            x = (x, x)
        neigh = self.propagate(edge_index, x=x, relation=relation,
                               user=user, size=(x[0].size(0),
                                                x[1].size(0)))
        return self.combine(x[1], neigh)

    def message(self, x_j: Tensor, relation: Tensor, user_i: Tensor,
                index: Tensor, ptr: OptTensor, size_i: int | None) -> Tensor:
        alpha = softmax(self.relation_scores(user_i, relation), index, ptr,
                        size_i)
        return alpha.unsqueeze(-1) * x_j

    def forward_dense(self, x_self: Tensor, x_neigh: Tensor,
                      scores: Tensor) -> Tensor:
        r"""Fixed fan-out path.

        Args:
            x_self: ``[..., d]`` the centres.
            x_neigh: ``[..., K, d]`` their neighbours.
            scores: ``[..., K]`` the user-relation scores
                :math:`\pi^u_{r_{v,e}}` (:meth:`relation_scores`).

        Leading dimensions broadcast (e.g. ``[U, 1, ...]`` users against
        ``[I, ...]`` items).
        """
        alpha = torch.softmax(scores, dim=-1)
        K, d = x_neigh.shape[-2:]
        extra = alpha.dim() + 1 - x_neigh.dim()  # query dims x lacks
        if extra > 0:
            # centres shared by a batch of queries (users): one product
            # per centre, [queries, K] @ [K, d], without copying x
            lead, inner = alpha.shape[:extra], alpha.shape[extra:-1]
            a = alpha.reshape(-1, inner.numel(), K).transpose(0, 1)
            neigh = torch.bmm(a, x_neigh.reshape(-1, K, d))
            neigh = neigh.transpose(0, 1).reshape(*lead, *inner, d)
        else:  # one product per centre: [.., 1, K] @ [.., K, d]
            neigh = (alpha.unsqueeze(-2) @ x_neigh).squeeze(-2)
        return self.combine(x_self, neigh / K)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'aggregator={self.aggregator!r})')


__all__ = ['KGCNConv']
