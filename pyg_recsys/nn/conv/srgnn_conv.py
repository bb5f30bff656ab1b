r"""The gated session-graph layer of SR-GNN (also TAGNN's encoder)."""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.typing import Adj, OptTensor, SparseTensor
from torch_geometric.utils import degree, is_sparse, spmm


class SRGNNConv(MessagePassing):
    r"""The gated graph layer of `"Session-based Recommendation with Graph
    Neural Networks" <https://arxiv.org/abs/1811.00855>`_ (Wu et al., AAAI
    2019, Eq. 1-5), as implemented in the reference code
    (``CRIPAC-DIG/SR-GNN``, ``pytorch_code/model.py``, ``GNNCell``); TAGNN
    (Yu et al., SIGIR 2020) uses the same layer.

    Every node (a unique item of a session) receives the mean of its
    predecessors and the mean of its successors, each through its own
    linear map, and updates its state with a GRU cell.  In matrix form, with
    :math:`\mathbf{H} \in \mathbb{R}^{N \times d}` the node states,

    .. math::
        \mathbf{I}^{in} &= \mathbf{A}^{in} (\mathbf{H}
            \mathbf{W}_{in}^\top + \mathbf{b}_{in}) + \mathbf{b}_{iah},
        \qquad
        \mathbf{I}^{out} = \mathbf{A}^{out} (\mathbf{H}
            \mathbf{W}_{out}^\top + \mathbf{b}_{out}) + \mathbf{b}_{oah},

        \mathbf{a} &= [\mathbf{I}^{in} \,\Vert\, \mathbf{I}^{out}],
        \qquad
        \mathbf{H}' = \mathrm{GRUCell}(\mathbf{a}, \mathbf{H}),

    where :math:`\mathbf{A}^{in}_{vu} = a_{uv} / \deg^{in}(v)` and
    :math:`\mathbf{A}^{out}_{uv} = a_{uv} / \deg^{out}(u)` for the binary
    adjacency :math:`a_{uv} = 1` iff some step :math:`u` is directly
    followed by :math:`v` (a self-loop for a consecutive repeat), and the
    GRU cell is

    .. math::
        \mathbf{r} &= \sigma(\mathbf{W}_{ir} \mathbf{a} + \mathbf{b}_{ir}
            + \mathbf{W}_{hr} \mathbf{h} + \mathbf{b}_{hr}), \qquad
        \mathbf{z} = \sigma(\mathbf{W}_{iz} \mathbf{a} + \mathbf{b}_{iz}
            + \mathbf{W}_{hz} \mathbf{h} + \mathbf{b}_{hz}),

        \mathbf{n} &= \tanh(\mathbf{W}_{in} \mathbf{a} + \mathbf{b}_{in}
            + \mathbf{r} \odot (\mathbf{W}_{hn} \mathbf{h}
            + \mathbf{b}_{hn})), \qquad
        \mathbf{h}' = \mathbf{n} + \mathbf{z} \odot (\mathbf{h}
            - \mathbf{n}).

    Node-wise, with :math:`\mathcal{N}^{in}(v)` the predecessors and
    :math:`\mathcal{N}^{out}(v)` the successors of :math:`v` and
    :math:`w^{in}_{uv} = 1 / |\mathcal{N}^{in}(v)|`,
    :math:`w^{out}_{vu} = 1 / |\mathcal{N}^{out}(v)|` the edge weights
    ``edge_weight_in`` / ``edge_weight_out`` of
    :class:`~pyg_recsys.data.session.SessionData`,

    .. math::
        \mathbf{a}_v = \Big[\sum_{u \in \mathcal{N}^{in}(v)} w^{in}_{uv}
        (\mathbf{W}_{in} \mathbf{h}_u + \mathbf{b}_{in}) + \mathbf{b}_{iah}
        \,\Big\Vert\, \sum_{u \in \mathcal{N}^{out}(v)} w^{out}_{vu}
        (\mathbf{W}_{out} \mathbf{h}_u + \mathbf{b}_{out})
        + \mathbf{b}_{oah}\Big].

    The incoming sum propagates along ``edge_index``, the outgoing one
    along the flipped ``edge_index``.  ``num_steps`` repeats the layer with
    shared weights (the reference's ``step``).

    Relation to the reference code: the linear biases
    :math:`\mathbf{b}_{in}, \mathbf{b}_{out}` sit inside the product with
    :math:`\mathbf{A}` as there (a node without predecessors gets only
    :math:`\mathbf{b}_{iah}` as its incoming part; the paper's Eq. 1 has a
    single bias outside).  The paper normalises by out-degree only; the
    reference (and this layer) uses the in-degree for the incoming part.
    The GRU cell is :class:`torch.nn.GRUCell`, whose gate order
    (:math:`r, z, n`), update :math:`(1 - \mathbf{z}) \odot \mathbf{n} +
    \mathbf{z} \odot \mathbf{h}` and initialisation are exactly the
    reference's hand-written ``w_ih``, ``w_hh``, ``b_ih``, ``b_hh``
    (``gru.weight_ih`` etc. here); ``linear_edge_in``, ``linear_edge_out``,
    ``b_iah``, ``b_oah`` keep the reference's names, and the reference's
    unused ``linear_edge_f`` is left out.  All parameters are drawn from
    :math:`U(-1/\sqrt{d}, 1/\sqrt{d})` as in the reference.  PyG's
    :class:`~torch_geometric.nn.conv.GatedGraphConv` differs (one
    aggregation over incoming edges, no normalisation), hence this layer.

    Inputs: ``edge_index`` may be ``[2, E]`` indices with the weights
    ``edge_weight_in`` and ``edge_weight_out`` (each computed from
    ``edge_index`` as :math:`1/\deg^{in}(\text{target})` and
    :math:`1/\deg^{out}(\text{source})` when not given), or a sparse
    adjacency ``adj_t`` (``torch_sparse.SparseTensor`` or torch sparse,
    ``adj_t[v, u]`` = :math:`a_{uv}`, its values used as :math:`a_{uv}` or
    one where it has none) which the layer normalises itself and multiplies
    through :meth:`message_and_aggregate`.

    Args:
        channels: Size :math:`d` of the node states.
        num_steps: Number of propagation steps (shared weights).
        **kwargs: Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node states :math:`(N, d)`, edge indices
          :math:`(2, E)` or a sparse adjacency :math:`(N, N)`, edge weights
          :math:`(E)` *(optional)*
        - **output:** node states :math:`(N, d)`
    """

    def __init__(self, channels: int, num_steps: int = 1, **kwargs) -> None:
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        if isinstance(channels, bool) or not isinstance(channels, int) \
                or channels < 1:
            raise ValueError(f'SRGNNConv: channels must be a positive '
                             f'integer, got {channels!r}')
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) \
                or num_steps < 1:
            raise ValueError(f'SRGNNConv: num_steps must be a positive '
                             f'integer (1 in the paper), got {num_steps!r}')
        if self.aggr != 'add' or self.flow != 'source_to_target':
            raise ValueError("SRGNNConv: the layer needs aggr='add' and "
                             "flow='source_to_target'; drop these "
                             "arguments")
        self.channels = channels
        self.num_steps = num_steps
        self.linear_edge_in = torch.nn.Linear(channels, channels, bias=True)
        self.linear_edge_out = torch.nn.Linear(channels, channels, bias=True)
        self.b_iah = torch.nn.Parameter(torch.empty(channels))
        self.b_oah = torch.nn.Parameter(torch.empty(channels))
        self.gru = torch.nn.GRUCell(2 * channels, channels, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Draws every parameter from :math:`U(-1/\sqrt{d}, 1/\sqrt{d})`,
        as the reference code."""
        super().reset_parameters()
        stdv = 1.0 / math.sqrt(self.channels)
        for weight in self.parameters():
            torch.nn.init.uniform_(weight, -stdv, stdv)

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight_in: OptTensor = None,
                edge_weight_out: OptTensor = None) -> Tensor:
        num_nodes = x.size(0)
        if is_sparse(edge_index):
            if edge_weight_in is not None or edge_weight_out is not None:
                raise ValueError(
                    'SRGNNConv: with a sparse adjacency the layer normalises '
                    'it itself; pass edge_weight_in=None and '
                    'edge_weight_out=None (put weights into its values)')
            adj_in, adj_out = _normalised_adj(edge_index, num_nodes,
                                              x.dtype)
            edge_in = edge_out = None
        else:
            adj_in, adj_out = edge_index, edge_index.flip(0)
            edge_in, edge_out = edge_weight_in, edge_weight_out
            if edge_in is None:
                edge_in = degree(edge_index[1], num_nodes,
                                 x.dtype).reciprocal()[edge_index[1]]
            if edge_out is None:
                edge_out = degree(edge_index[0], num_nodes,
                                  x.dtype).reciprocal()[edge_index[0]]
        size = (num_nodes, num_nodes)
        h = x
        for _ in range(self.num_steps):
            # propagate_type: (x: Tensor, edge_weight: OptTensor)
            input_in = self.propagate(adj_in, x=self.linear_edge_in(h),
                                      edge_weight=edge_in, size=size)
            input_out = self.propagate(adj_out, x=self.linear_edge_out(h),
                                       edge_weight=edge_out, size=size)
            inputs = torch.cat([input_in + self.b_iah,
                                input_out + self.b_oah], dim=-1)
            h = self.gru(inputs, h)
        return h

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Adj, x: Tensor) -> Tensor:
        return spmm(adj_t, x, reduce='sum')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'num_steps={self.num_steps})')


def _normalised_adj(adj_t: Adj, num_nodes: int,
                    dtype: torch.dtype) -> tuple[Adj, Adj]:
    r"""``(A_in, A_out)`` of a sparse ``adj_t`` (``adj_t[v, u] = a_uv``):
    ``A_in[v, u] = a_uv / sum_u' a_u'v`` and ``A_out[u, v] = a_uv / sum_v'
    a_uv'``, in the input's sparse format."""
    if isinstance(adj_t, SparseTensor):
        row, col, value = adj_t.coo()
    else:
        coo = adj_t.to_sparse_coo().coalesce()
        (row, col), value = coo.indices(), coo.values()
    if value is None:
        value = torch.ones(row.numel(), dtype=dtype, device=row.device)
    value = value.to(dtype)
    deg_in = torch.zeros(num_nodes, dtype=dtype, device=row.device)
    deg_in = deg_in.index_add(0, row, value)
    deg_out = torch.zeros_like(deg_in).index_add(0, col, value)
    val_in, val_out = value / deg_in[row], value / deg_out[col]
    size = (num_nodes, num_nodes)
    if isinstance(adj_t, SparseTensor):
        return (SparseTensor(row=row, col=col, value=val_in,
                             sparse_sizes=size),
                SparseTensor(row=col, col=row, value=val_out,
                             sparse_sizes=size))

    def build(r: Tensor, c: Tensor, v: Tensor) -> Tensor:
        return torch.sparse_coo_tensor(torch.stack([r, c]), v,
                                       size).coalesce().to_sparse_csr()

    return build(row, col, val_in), build(col, row, val_out)


class SRGNNReadout(torch.nn.Module):
    r"""SR-GNN's soft-attention session readout (Wu et al., AAAI 2019,
    Eq. 6-7), shared by :class:`~pyg_recsys.nn.models.SRGNN` and
    :class:`~pyg_recsys.nn.models.TAGNN` (the companion of
    :class:`SRGNNConv`, kept in its file).

    With :math:`\mathbf{h}_1, \dots, \mathbf{h}_L` the node states of a
    session's steps and :math:`\mathbf{h}_L` the last one,

    .. math::
        \alpha_t = \mathbf{q}^\top \sigma(\mathbf{W}_1 \mathbf{h}_L
            + \mathbf{b}_1 + \mathbf{W}_2 \mathbf{h}_t + \mathbf{b}_2),
        \qquad
        \mathbf{s}_g = \sum_{t=1}^{L} \alpha_t \mathbf{h}_t,
        \qquad
        \mathbf{s} = \mathbf{W}_3 [\mathbf{s}_g; \mathbf{h}_L]
            + \mathbf{b}_3

    (``nonhybrid``: :math:`\mathbf{s} = \mathbf{s}_g`).  SR-GNN sums the
    raw weights over every step (a repeated item counts once per step);
    TAGNN (``normalize=True``) first softmaxes them over the session's
    steps.  Parameter names follow the reference code (``linear_one``,
    ``linear_two``, ``linear_three``, ``linear_transform``).

    Args:
        channels: :math:`d`.
        nonhybrid: Return :math:`\mathbf{s}_g` only.
        normalize: Softmax the weights over each session's steps (TAGNN).
    """

    def __init__(self, channels: int, nonhybrid: bool = False,
                 normalize: bool = False) -> None:
        super().__init__()
        d = channels
        self.nonhybrid = nonhybrid
        self.normalize = normalize
        self.linear_one = torch.nn.Linear(d, d, bias=True)
        self.linear_two = torch.nn.Linear(d, d, bias=True)
        self.linear_three = torch.nn.Linear(d, 1, bias=False)
        self.linear_transform = torch.nn.Linear(2 * d, d, bias=True)

    def reset_parameters(self) -> None:
        for lin in (self.linear_one, self.linear_two, self.linear_three,
                    self.linear_transform):
            lin.reset_parameters()

    def forward(self, h_last: Tensor, h_steps: Tensor,
                step: Tensor) -> Tensor:
        """Session vectors ``[B, d]`` from the last step's state ``[B, d]``
        and every step's state ``[sum L, d]`` with its session index
        ``step`` ``[sum L]``."""
        from torch_geometric.utils import scatter, softmax
        num = h_last.size(0)
        alpha = self.linear_three(torch.sigmoid(
            self.linear_one(h_last)[step] + self.linear_two(h_steps)))
        if self.normalize:
            alpha = softmax(alpha, step, num_nodes=num, dim=0)
        s_g = scatter(alpha * h_steps, step, dim=0, dim_size=num,
                      reduce='sum')
        if self.nonhybrid:
            return s_g
        return self.linear_transform(torch.cat([s_g, h_last], dim=-1))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.linear_one.in_features}, '
                f'nonhybrid={self.nonhybrid}, normalize={self.normalize})')


__all__ = ['SRGNNConv', 'SRGNNReadout']
