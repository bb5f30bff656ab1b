r"""The KGCN layer: user-specific relation attention over a sampled
knowledge-graph neighbourhood."""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.typing import Adj, OptTensor, PairTensor
from torch_geometric.utils import softmax

AGGREGATORS = ('sum', 'concat', 'neighbor')


class SharedTables(NamedTuple):
    """What :meth:`KGCNConv.forward_shared` needs of the centres, whoever
    the users: the self term ``base`` ``[V, d]``, the neighbours summed per
    (relation, centre) ``M`` ``[R, V, d]`` and their slot counts times
    ``K`` ``count`` ``[R, V]``; the centres reached over one relation
    (``one``) with their user-independent output ``fixed``, and the others
    (``many``) with their parts of the three tables."""

    base: Tensor
    M: Tensor
    count: Tensor
    one: Tensor
    fixed: Tensor
    many: Tensor
    base_many: Tensor
    M_many: Tensor
    count_many: Tensor


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

    Three paths compute the same operator (tested equal): :meth:`forward`
    over an edge list (any neighbourhood, one user embedding per
    destination node: a drop-in layer for a PyG graph, scatter softmax per
    destination), :meth:`forward_dense` over a fixed fan-out ``[..., K]``
    (the model's receptive field in training: a dense softmax), and
    :meth:`forward_shared`, the fixed fan-out of centres shared by many
    users regrouped by relation (full ranking: one dense product instead
    of a softmax per user, item and slot).

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

        Leading dimensions broadcast.
        """
        alpha = torch.softmax(scores, dim=-1)
        # (a product and a sum: faster than a batch of [1, K] x [K, d]
        # matrix products for the few neighbours of a receptive field)
        neigh = (alpha.unsqueeze(-1) * x_neigh).sum(-2)
        return self.combine(x_self, neigh / scores.size(-1))

    def shared_tables(self, x_self: Tensor, x_neigh: Tensor,
                      relation_index: Tensor, num_relations: int
                      ) -> SharedTables:
        """The user-independent part of :meth:`forward_shared` for centres
        ``x_self`` ``[V, d]`` with neighbours ``x_neigh`` ``[V, K, d]`` over
        relations ``relation_index`` ``[V, K]``, computed once for any
        number of users (:class:`SharedTables`)."""
        V, K, d = x_neigh.shape
        W = self.lin.weight
        if self.aggregator == 'concat':
            w_self, w_nb = W[:, :d], W[:, d:]
        else:
            w_self = w_nb = W
        base = (x_self @ w_self.t() if self.aggregator != 'neighbor'
                else x_self.new_zeros(V, W.size(0)))
        if self.lin.bias is not None:
            base = base + self.lin.bias
        slot_rel = relation_index.reshape(-1)
        slot_centre = torch.arange(V, device=x_neigh.device) \
            .repeat_interleave(K)
        M = x_neigh.new_zeros(num_relations, V, W.size(0))
        M.index_put_((slot_rel, slot_centre),
                     x_neigh.reshape(-1, d) @ w_nb.t(), accumulate=True)
        count = x_neigh.new_zeros(num_relations, V)
        count.index_put_((slot_rel, slot_centre),
                         x_neigh.new_full((V * K,), float(K)),
                         accumulate=True)
        # a centre reached over one relation only has uniform attention
        # whoever the user: its output is the same for all of them
        single = (count > 0).sum(0) == 1
        one = single.nonzero().view(-1)
        many = (~single).nonzero().view(-1)
        fixed = self._act(base[one] + M[:, one].sum(0)
                          / count[:, one].sum(0).unsqueeze(-1))
        return SharedTables(base, M, count, one, fixed, many, base[many],
                            M[:, many].contiguous(), count[:, many])

    def _act(self, out: Tensor) -> Tensor:
        r""":math:`\sigma`, in place where it is ReLU or tanh."""
        inplace = {torch.tanh: torch.tanh_, torch.relu: torch.relu_}.get(
            self.act)
        return inplace(out) if inplace is not None else self.act(out)

    @staticmethod
    def _mixed(base: Tensor, M: Tensor, count: Tensor, E: Tensor
               ) -> Tensor:
        R, V, d_out = M.shape
        out = (E @ M.view(R, -1)).view(E.size(0), V, d_out)
        norm = (E @ count).reciprocal_()
        return out.mul_(norm.unsqueeze(-1)).add_(base)

    def forward_shared(self, tables: SharedTables, scores: Tensor
                       ) -> Tensor:
        r"""Fixed fan-out path for centres shared by many users (every
        item ranked for a chunk of users): the same operator, regrouped
        by relation.

        With :math:`E_{ur} = \exp \pi^u_r` (shifted per user),
        :math:`M_{r,v} = \sum_{e \in \mathcal{S}(v): r_{v,e} = r}
        \mathbf{W} \mathbf{e}` and :math:`c_{r,v}` the number of such
        slots, the weighted neighbourhood of every (user, centre) is

        .. math::
            \mathbf{W} \mathbf{v}^u_{\mathcal{S}(v)} = \frac{\sum_r E_{ur}
            M_{r,v}}{|\mathcal{S}(v)| \sum_r E_{ur} c_{r,v}},

        one dense ``[U, R] x [R, V d]`` product instead of a softmax per
        user, centre and slot; the layer's weight is applied to the ``V K``
        neighbours (:meth:`shared_tables`), not to the ``U V`` results.

        Args:
            tables: :meth:`shared_tables` of the centres.
            scores: ``[U, R]`` :math:`\pi^u_r` of every user and relation
                (``user @ relation.T / d``).

        Returns:
            ``[U, V, d]``.
        """
        E = torch.exp(scores - scores.max(-1, keepdim=True).values)
        return self._act(self._mixed(tables.base, tables.M, tables.count,
                                     E))

    def shared_scores(self, tables: SharedTables, scores: Tensor,
                      query: Tensor) -> Tensor:
        """``[U, V]``: the inner product of each user's ``query`` ``[U, d]``
        with :meth:`forward_shared`'s output for every centre, without
        building that output for the centres reached over one relation
        (whose attention is uniform): those take one ``[U, d] x [d, V_1]``
        product."""
        U, V = query.size(0), tables.base.size(0)
        out = query.new_empty(U, V)
        out[:, tables.one] = query @ tables.fixed.t()
        if tables.many.numel():
            E = torch.exp(scores - scores.max(-1, keepdim=True).values)
            mixed = self._act(self._mixed(tables.base_many, tables.M_many,
                                          tables.count_many, E))
            out[:, tables.many] = torch.bmm(
                mixed, query.unsqueeze(-1)).squeeze(-1)
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'aggregator={self.aggregator!r})')


__all__ = ['KGCNConv']
