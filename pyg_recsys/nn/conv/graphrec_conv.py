r"""GraphRec's attentive aggregation: item aggregation, social aggregation
and user aggregation of Fan et al. (WWW 2019) are one operator."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.typing import Adj, OptTensor, PairTensor
from torch_geometric.utils import softmax

#: an edge's opinion: embeddings, or (embedding table, row per edge)
Opinion = Tensor | tuple[Tensor, Tensor] | None


def he_init(lin: torch.nn.Linear) -> None:
    """He (Kaiming) normal weights for a layer a ReLU follows, zero bias."""
    torch.nn.init.kaiming_normal_(lin.weight, nonlinearity='relu')
    if lin.bias is not None:
        torch.nn.init.zeros_(lin.bias)


class GraphRecConv(MessagePassing):
    r"""The attentive aggregation of Fan et al., `"Graph Neural Networks
    for Social Recommendation" <https://arxiv.org/abs/1902.07243>`_ (WWW
    2019), Eqs. 2-6 (item aggregation), 7-10 (social aggregation) and
    15-16 (user aggregation).

    For a centre :math:`i` with query vector :math:`\mathbf{p}_i` (its own
    id embedding) and neighbours :math:`a \in C(i)`, each neighbour's
    message is, with an opinion (the rating :math:`r` of the edge, embedded
    as :math:`\mathbf{e}_r`),

    .. math::
        \mathbf{x}_{ia} = g([\mathbf{q}_a \oplus \mathbf{e}_r]),

    :math:`g` a two-layer perceptron (ReLU after each layer), or without
    an opinion (the social aggregation) the neighbour's representation
    itself, :math:`\mathbf{x}_{ia} = \mathbf{q}_a`.  The attention and
    the output are

    .. math::
        \alpha^*_{ia} = \mathbf{w}_2^\top \mathrm{ReLU}(\mathbf{W}_1
        [\mathbf{x}_{ia} \oplus \mathbf{p}_i] + \mathbf{b}_1) + b_2,
        \quad \alpha_{ia} = \frac{\exp \alpha^*_{ia}}{\sum_{a' \in C(i)}
        \exp \alpha^*_{ia'}}, \quad
        \mathbf{h}_i = \mathrm{ReLU}\Big(\mathbf{W} \sum_{a \in C(i)}
        \alpha_{ia} \mathbf{x}_{ia} + \mathbf{b}\Big).

    A centre without neighbours gets :math:`\mathrm{ReLU}(\mathbf{b})`.

    Two paths compute the same operator (tested equal): :meth:`forward`
    over an edge list (a drop-in layer for a PyG graph, e.g. inside
    :class:`~torch_geometric.nn.HeteroConv`; scatter softmax per
    destination) and :meth:`forward_dense` over a padded fixed fan-out
    ``[N, K]`` with a mask (the model's sampled neighbourhoods).

    The public reference code differs (as read): it concatenates the
    centre's own embedding to the sum before one linear layer, uses two
    hidden attention layers with dropout 0.5, and aggregates the social
    neighbours' raw embeddings instead of their item-space vectors; this
    layer follows the paper's equations.

    Args:
        channels: :math:`d`.
        opinion: Messages from a neighbour and an edge opinion (item and
            user aggregation) or the neighbour alone (social).
        dropout: Dropout on the attention's hidden layer in training.
    """

    def __init__(self, channels: int, opinion: bool = True,
                 dropout: float = 0.0, **kwargs) -> None:
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        if channels < 1:
            raise ValueError(f'GraphRecConv: channels must be >= 1, got '
                             f'{channels}')
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'GraphRecConv: dropout must lie in [0, 1), '
                             f'got {dropout}')
        self.channels = channels
        self.opinion = opinion
        self.dropout = dropout
        d = channels
        if opinion:
            self.g1 = torch.nn.Linear(2 * d, d)
            self.g2 = torch.nn.Linear(d, d)
        self.att1 = torch.nn.Linear(2 * d, d)
        self.att2 = torch.nn.Linear(d, 1)
        self.lin = torch.nn.Linear(d, d)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialisation of the layers a ReLU follows (the variance of
        the vectors kept through the stack of them), zero biases."""
        super().reset_parameters()
        for lin in self._linears():
            if lin is self.att2:
                lin.reset_parameters()
            else:
                he_init(lin)

    def _linears(self) -> list[torch.nn.Linear]:
        out = [self.att1, self.att2, self.lin]
        return ([self.g1, self.g2] + out) if self.opinion else out

    def messages(self, x_nbr: Tensor, opinion: Opinion = None) -> Tensor:
        r""":math:`\mathbf{x}_{ia}` from the neighbours' vectors and, with
        ``opinion=True``, the edges' opinions: embeddings of the same
        shape, or ``(table, index)``, the opinion embedding table ``[L,
        d]`` and each edge's row (then the first layer's opinion half is
        applied to the ``L`` rows only, not to every edge)."""
        if not self.opinion:
            return x_nbr
        if opinion is None:
            raise ValueError('GraphRecConv: this layer aggregates opinions '
                             '(opinion=True); pass the edges\' opinion '
                             'embeddings')
        d = self.channels
        # g1([q, e]) = W_q q + W_e e + b: the concatenation's two halves
        w = self.g1.weight
        if isinstance(opinion, tuple):
            table, index = opinion
            proj = F.linear(table, w[:, d:])
            if table.size(0) <= 16:  # a few opinion levels: as a product
                # (its backward is a product too, where a gather's is an
                # accumulation of every edge into L rows)
                # (one-hot by comparison: F.one_hot checks the ids'
                # range, a read-back on a device)
                levels = torch.arange(table.size(0), device=index.device)
                o = (index.unsqueeze(-1) == levels).to(proj.dtype) @ proj
            else:
                o = proj[index]
        else:
            o = F.linear(opinion, w[:, d:])
        h = F.relu(F.linear(x_nbr, w[:, :d], self.g1.bias) + o)
        return F.relu(self.g2(h))

    def logits(self, msg: Tensor, query: Tensor) -> Tensor:
        r""":math:`\alpha^*` of messages ``[..., d]`` for queries
        ``[..., d]`` (broadcast: a query ``[N, 1, d]`` serves its ``K``
        messages, its half of the first layer computed once)."""
        d = self.channels
        w = self.att1.weight
        h = F.relu(F.linear(msg, w[:, :d], self.att1.bias)
                   + F.linear(query, w[:, d:]))
        h = F.dropout(h, self.dropout, self.training)
        return self.att2(h).squeeze(-1)

    def forward(self, x: Tensor | PairTensor, edge_index: Adj,
                query: Tensor, opinion: Opinion = None) -> Tensor:
        """Edge-list path.

        Args:
            x: Neighbour vectors ``[N_src, d]``, or ``(x_src, x_dst)``
                (``x_dst`` unused: the query stands for the centre).
            edge_index: ``[2, E]`` neighbour -> centre.
            query: ``[N_dst, d]`` the centres' query vectors (or a pair
                whose second is, as :class:`~torch_geometric.nn.HeteroConv`
                passes a ``query_dict`` keyed by node type).
            opinion: ``[E, d]`` opinion embedding of each edge, or
                ``(table, index)`` (see :meth:`messages`).
        """
        x_src = x[0] if isinstance(x, (tuple, list)) else x
        if isinstance(query, (tuple, list)):  # (src, dst), as HeteroConv
            query = query[1]                  # hands a node-type dict
        out = self.propagate(edge_index, x=(x_src, query), query=query,
                             opinion=opinion,
                             size=(x_src.size(0), query.size(0)))
        return F.relu(self.lin(out))

    def message(self, x_j: Tensor, query_i: Tensor, opinion: OptTensor,
                index: Tensor, ptr: OptTensor,
                size_i: int | None) -> Tensor:
        msg = self.messages(x_j, opinion)
        alpha = softmax(self.logits(msg, query_i), index, ptr, size_i)
        return alpha.unsqueeze(-1) * msg

    def forward_dense(self, x_nbr: Tensor, query: Tensor, mask: Tensor,
                      opinion: Opinion = None) -> Tensor:
        """Padded fixed fan-out path.

        Args:
            x_nbr: ``[N, K, d]`` the neighbours' vectors.
            query: ``[N, d]`` the centres' query vectors.
            mask: ``[N, K]`` bool, the slots holding a neighbour.
            opinion: ``[N, K, d]`` the edges' opinion embeddings, or
                ``(table, index)`` with ``index`` ``[N, K]``.
        """
        msg = self.messages(x_nbr, opinion)
        logit = self.logits(msg, query.unsqueeze(-2))
        # padding at the lowest value, weights of padding (and of every
        # slot of an empty row) then set to 0: no NaN, no host read
        logit = logit.masked_fill(~mask, torch.finfo(logit.dtype).min)
        alpha = torch.softmax(logit, dim=-1) * mask
        return F.relu(self.lin((alpha.unsqueeze(-1) * msg).sum(-2)))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, opinion='
                f'{self.opinion})')


__all__ = ['GraphRecConv', 'he_init']
