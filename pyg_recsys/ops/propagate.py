r"""LightGCN propagation that computes only the rows a loss needs.

LightGCN (He et al., SIGIR 2020, Eq. 8-9) forms final embeddings

.. math::
    \mathbf{E} = \sum_{k=0}^{K} \alpha_k \mathbf{A}^k \mathbf{E}^{(0)},

with :math:`\mathbf{A}` the symmetric normalised adjacency
(:class:`~pyg_recsys.ops.adj.NormAdj`), :math:`\mathbf{E}^{(0)}` the layer-0
embedding table and :math:`\alpha_k = 1 / (K + 1)` by default.

A BPR step only reads the rows :math:`\mathcal{B}` of its batch's users and
items.  Autograd through :math:`K` layers costs :math:`2K` full sparse-dense
products (SpMMs): :math:`K` forward, :math:`K` backward.  :func:`propagate`
with ``index`` costs :math:`2(K - 1)` full SpMMs and two small ones:

* forward: :math:`\mathbf{E}^{(k)} = \mathbf{A}\mathbf{E}^{(k-1)}` in full
  for :math:`k < K`, and only
  :math:`\mathbf{A}[\mathcal{B}] \, \mathbf{E}^{(K-1)}` for the last layer,
  a product with the CSR row slice of :math:`\mathcal{B}`;
* backward: the upstream gradient :math:`\mathbf{G}` lives on the rows
  :math:`\mathcal{B}`; with :math:`\mathbf{g} = \mathbf{P}^\top \mathbf{G}`
  its scatter to all rows (:math:`\mathbf{P}` selects :math:`\mathcal{B}`)
  and :math:`\mathbf{A}^\top = \mathbf{A}`, Horner's scheme gives

  .. math::
      \frac{\partial \mathcal{L}}{\partial \mathbf{E}^{(0)}}
      = \alpha_0 \mathbf{g} + \mathbf{A}\big(\alpha_1 \mathbf{g}
      + \mathbf{A}(\cdots (\alpha_{K-1} \mathbf{g}
      + \alpha_K \mathbf{A}[\mathcal{B}]^\top \mathbf{G})\cdots)\big),

  one small transposed product with the same row slice and :math:`K - 1`
  full SpMMs.

On devices other than the CPU (:func:`~pyg_recsys.ops.device.sync_free`)
``index`` is served by the full product and a gather instead: the size of
the row slice would have to be read on the host, a wait for the device in
every step.

Nothing is saved for the backward pass but the row slice: the map is linear
in :math:`\mathbf{E}^{(0)}`.  Repeated entries of ``index`` (users and items
recur within a batch) are deduplicated with ``torch.unique`` before the
slice, and their gradients summed by the final gather.

This is the one implementation of LightGCN's operator:
:class:`~pyg_recsys.nn.models.LightGCN` and the ``NormAdj`` path of
:class:`~pyg_recsys.nn.conv.LightGCNConv` (one layer, :math:`K = 1`,
:math:`\alpha = (0, 1)`) both call :func:`propagate`, so the layer a PyG
user drops in is the code ``benchmarks/lightgcn_gowalla.py`` times.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from pyg_recsys.ops import device as ops_device
from pyg_recsys.ops.adj import NormAdj, RowSlice


def layer_weights(num_layers: int,
                  alpha: float | Sequence[float] | Tensor | None = None
                  ) -> tuple[float, ...]:
    r"""The layer weights :math:`(\alpha_0, \dots, \alpha_K)` as floats:
    ``None`` gives :math:`1 / (K + 1)` each, a float is used for every
    layer, a sequence must have :math:`K + 1` entries."""
    if num_layers < 0:
        raise ValueError(f'propagate: num_layers must be >= 0, got '
                         f'{num_layers}')
    if alpha is None:
        return (1.0 / (num_layers + 1), ) * (num_layers + 1)
    if isinstance(alpha, (int, float)):
        return (float(alpha), ) * (num_layers + 1)
    if isinstance(alpha, Tensor):
        alpha = alpha.detach().view(-1).tolist()
    alpha = tuple(float(a) for a in alpha)
    if len(alpha) != num_layers + 1:
        raise ValueError(
            f'propagate: alpha needs num_layers + 1 = {num_layers + 1} '
            f'weights (one per layer, layer 0 included), got {len(alpha)}')
    return alpha


def propagate(adj: NormAdj, x: Tensor, num_layers: int,
              alpha: float | Sequence[float] | Tensor | None = None,
              index: Tensor | None = None,
              backend: str | None = None,
              return_layer0: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    r"""Rows ``index`` of :math:`\sum_{k=0}^{K} \alpha_k \mathbf{A}^k
    \mathbf{X}` (all rows if ``index`` is ``None``), differentiable in
    ``x``.

    Args:
        adj: The normalised adjacency :math:`\mathbf{A}`.
        x: Layer-0 embeddings :math:`\mathbf{E}^{(0)}`,
            ``[adj.num_nodes, F]``.
        num_layers: Number of layers :math:`K`.
        alpha: Layer weights (see :func:`layer_weights`); constants, not
            learned.
        index: Node ids whose final embeddings are needed, any shape,
            repeats allowed; the output has shape ``[*index.shape, F]``.
        backend: SpMM backend of :meth:`NormAdj.spmm`.
        return_layer0: Also return ``x[index]``, the layer-0 rows (e.g. for
            an L2 penalty), from the same autograd node: their gradient is
            merged into the propagation's backward pass instead of a
            separate dense gather-backward over the whole table.  Needs
            ``index``.

    Returns:
        The final embeddings of ``index`` (or of all nodes); with
        ``return_layer0``, the pair ``(final, x[index])``.
    """
    alpha = layer_weights(num_layers, alpha)
    if x.dim() != 2 or x.size(0) != adj.num_nodes:
        raise ValueError(
            f'propagate: x must have shape [adj.num_nodes={adj.num_nodes}, '
            f'F], got {list(x.shape)}')
    if index is None:
        if return_layer0:
            raise ValueError('propagate: return_layer0=True needs index; '
                             'the layer-0 rows of all nodes are x itself')
        return _FullPropagate.apply(x, adj, alpha, backend)
    shape = (*index.shape, x.size(1))
    if ops_device.sync_free(x.device):
        # the row slice needs its size on the host: propagate in full and
        # gather instead (2K full products, no wait on the device)
        flat = index.reshape(-1)
        out = _FullPropagate.apply(x, adj, alpha, backend)
        out = out.index_select(0, flat).view(shape)
        if return_layer0:
            return out, x.index_select(0, flat).view(shape)
        return out
    uniq, inv = torch.unique(index.view(-1), return_inverse=True)
    out, layer0 = _RowPropagate.apply(x, adj, alpha, uniq, backend)
    inv = inv.view(-1)
    if return_layer0:
        return (out.index_select(0, inv).view(shape),
                layer0.index_select(0, inv).view(shape))
    return out.index_select(0, inv).view(shape)


class _FullPropagate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, adj: NormAdj, alpha: tuple[float, ...],
                backend: str | None) -> Tensor:
        ctx.adj, ctx.alpha, ctx.backend = adj, alpha, backend
        out = None if alpha[0] == 0 else x * alpha[0]
        h = x
        for a in alpha[1:]:
            h = adj.spmm(h, backend)
            if out is None:  # the first term with a weight
                out = h if a == 1.0 else h * a
            else:
                out.add_(h, alpha=a)
        return x * 0.0 if out is None else out

    @staticmethod
    def backward(ctx, grad: Tensor):
        return (_full_backward(ctx.adj, grad.contiguous(), ctx.alpha,
                               ctx.backend), None, None, None)


def _full_backward(adj: NormAdj, grad: Tensor, alpha: tuple[float, ...],
                   backend: str | None) -> Tensor:
    # Horner: a_0 g + A(a_1 g + A(... + A(a_K g))); weights of 1 and 0
    # cost no pass over the [N, F] gradient (one layer, alpha = (0, 1):
    # a single product, as the layer needs)
    if len(alpha) == 1:
        return grad * alpha[0]
    acc = grad if alpha[-1] == 1.0 else grad * alpha[-1]
    for a in reversed(alpha[:-1]):
        acc = adj.spmm(acc, backend)
        if a != 0:
            acc.add_(grad, alpha=a)
    return acc


class _RowPropagate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, adj: NormAdj, alpha: tuple[float, ...],
                index: Tensor, backend: str | None
                ) -> tuple[Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        num_layers = len(alpha) - 1
        layer0 = x.index_select(0, index)
        out = layer0 * alpha[0]
        sub: RowSlice | None = None
        if num_layers > 0:
            h = x
            for a in alpha[1:-1]:
                h = adj.spmm(h, backend)
                out.add_(h.index_select(0, index), alpha=a)
            sub = adj.rows(index)
            out.add_(sub.matmul(h, backend), alpha=alpha[-1])
        ctx.adj, ctx.alpha, ctx.backend, ctx.sub = adj, alpha, backend, sub
        ctx.index = index
        ctx.shape = x.shape
        return out, layer0

    @staticmethod
    def backward(ctx, grad: Tensor | None, grad0: Tensor | None):
        if grad is None and grad0 is None:
            return None, None, None, None, None
        if grad is not None:
            grad = grad.contiguous()
        return (row_backward(ctx.adj, ctx.sub, ctx.index, ctx.alpha, grad,
                             grad0, ctx.shape, ctx.backend),
                None, None, None, None)


def row_backward(adj: NormAdj, sub: RowSlice | None, index: Tensor,
                 alpha: tuple[float, ...], grad: Tensor | None,
                 grad0: Tensor | None, shape: torch.Size,
                 backend: str | None) -> Tensor:
    """Gradient of ``x`` given that of the rows ``index`` of
    :math:`\\sum_k \alpha_k A^k x` (``grad``, ``None`` if unused) and of
    ``x[index]`` (``grad0``): the Horner scheme of the module docstring,
    one small transposed product with ``sub = A[index]`` and :math:`K - 1`
    full SpMMs (shared with :mod:`pyg_recsys.ops.perturb`)."""
    if grad is None:  # only the layer-0 rows were used
        acc = grad0.new_zeros(shape)
        return acc.index_add_(0, index, grad0)
    if sub is None:  # K = 0
        acc = grad.new_zeros(shape)
    else:
        # scale the [m, F] gradient, not the [N, F] product
        acc = sub.t_matmul(grad * alpha[-1] if alpha[-1] != 1.0 else grad,
                           backend)
        for a in reversed(alpha[1:-1]):
            if a != 0:
                acc.index_add_(0, index, grad, alpha=a)
            acc = adj.spmm(acc, backend)
    top = grad * alpha[0]
    if grad0 is not None:
        top.add_(grad0)
    return acc.index_add_(0, index, top)
