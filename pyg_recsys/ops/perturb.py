r"""LightGCN propagation with SimGCL's uniform noise after every layer.

SimGCL (Yu et al., SIGIR 2022) builds its contrastive views by
adding a small random vector to every node's embedding after each light
graph convolution:

.. math::
    \mathbf{H}^{(k)} = \mathbf{A}\mathbf{H}^{(k-1)}
    + \boldsymbol{\Delta}^{(k)},
    \qquad
    \boldsymbol{\Delta}^{(k)} = \epsilon \,
    \operatorname{sign}\big(\mathbf{A}\mathbf{H}^{(k-1)}\big) \odot
    \frac{\mathbf{U}^{(k)}}{\lVert\mathbf{U}^{(k)}\rVert_{\text{row}}},
    \qquad
    \mathbf{E} = \sum_{k=0}^{K} \alpha_k \mathbf{H}^{(k)},

with :math:`\mathbf{H}^{(0)} = \mathbf{E}^{(0)}`, :math:`\mathbf{A}` the
normalised adjacency (:class:`~pyg_recsys.ops.adj.NormAdj`),
:math:`\mathbf{U}^{(k)}` i.i.d. :math:`U(0, 1)` entries normalised row by
row, and the sign taken element-wise (:math:`\operatorname{sign}(0) = 0`).
Each row of :math:`\boldsymbol{\Delta}^{(k)}` has L2 norm :math:`\epsilon`
and lies in the orthant of the row it perturbs.  SimGCL averages layers
:math:`1..K` (:math:`\alpha = (0, 1/K, \dots, 1/K)`), as its reference code
(SELFRec, ``model/graph/SimGCL.py``) does.

**The backward pass is linear.**  :math:`\operatorname{sign}` has zero
derivative almost everywhere (and autograd treats it so), so the noise is
locally constant in :math:`\mathbf{E}^{(0)}` and the Jacobian of every view
is the clean LightGCN Jacobian :math:`\sum_k \alpha_k \mathbf{A}^k`: only the
forward values are non-linear.  :func:`perturbed_propagate` therefore
propagates several views at once and back-propagates the *sum* of their
gradients once, with the Horner scheme of
:func:`~pyg_recsys.ops.propagate.propagate`:

* all views share :math:`\mathbf{A}\mathbf{E}^{(0)}` (the first product,
  taken before any noise, and its sign); later layers multiply the noisy
  views side by side as one ``[N, V * F]`` matrix (one SpMM per layer, not
  one per view) and the clean one, if asked for, on its own;
* with ``index``, the last layer is computed only for the needed rows (a
  CSR row slice), and the noise of that layer is drawn for those rows only;
* backward: :math:`K - 1` full SpMMs and one small transposed product,
  whatever the number of views; nothing is saved but the row slice.

SimGCL's training step takes its clean view (BPR, ``eps=0``) and its two
noisy views from one call, ``eps=(0, eps, eps)``: with :math:`K = 2` that is
one full SpMM forward and one backward, the cost of a LightGCN step, where
the reference code runs three full propagations and autograd through each
(six full SpMMs forward and six backward).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from pyg_recsys.ops import device as ops_device
from pyg_recsys.ops.adj import NormAdj, RowSlice
from pyg_recsys.ops.propagate import (
    _full_backward,
    layer_weights,
    row_backward,
)


def perturbed_propagate(adj: NormAdj, x: Tensor, num_layers: int,
                        eps: float | Sequence[float],
                        alpha: float | Sequence[float] | Tensor | None = None,
                        index: Tensor | None = None,
                        generator: torch.Generator | None = None,
                        noise: Sequence[Tensor] | None = None,
                        backend: str | None = None,
                        return_layer0: bool = False
                        ) -> Tensor | tuple[Tensor, Tensor]:
    r"""Rows ``index`` of SimGCL's noisy LightGCN propagation (see the
    module docstring), for one or several views, differentiable in ``x``.

    Args:
        adj: The normalised adjacency :math:`\mathbf{A}`.
        x: Layer-0 embeddings :math:`\mathbf{E}^{(0)}`,
            ``[adj.num_nodes, F]``.
        num_layers: Number of layers :math:`K`.
        eps: Noise radius :math:`\epsilon \ge 0`, or one radius per view;
            ``0`` gives the clean propagation
            (:func:`~pyg_recsys.ops.propagate.propagate`).  Views with
            their own noise but one shared backward pass.
        alpha: Layer weights as in
            :func:`~pyg_recsys.ops.propagate.layer_weights` (``None``:
            :math:`1/(K+1)` each); SimGCL uses :math:`(0, 1/K, \dots, 1/K)`.
        index: Node ids whose embeddings are needed, any shape, repeats
            allowed; ``None`` for all nodes.
        generator: Random generator of the noise (the global one if
            ``None``).
        noise: Instead of random draws, :math:`K` tensors of shape
            ``[V, adj.num_nodes, F]`` holding
            :math:`\mathbf{U}^{(1)}, \dots, \mathbf{U}^{(K)}` for the
            :math:`V` views (rows of views with ``eps == 0`` are not read);
            for tests and reproducible experiments.
        backend: SpMM backend of :meth:`NormAdj.spmm`.
        return_layer0: Also return ``x[index]`` from the same autograd node
            (for an L2 penalty; see
            :func:`~pyg_recsys.ops.propagate.propagate`).  Needs ``index``.

    Returns:
        ``[*index.shape, F]`` (all nodes: ``[num_nodes, F]``) for a float
        ``eps``; ``[V, *index.shape, F]`` for a sequence of ``V`` radii.
        With ``return_layer0``, the pair ``(views, x[index])``.
    """
    alpha = layer_weights(num_layers, alpha)
    if x.dim() != 2 or x.size(0) != adj.num_nodes:
        raise ValueError(
            f'perturbed_propagate: x must have shape '
            f'[adj.num_nodes={adj.num_nodes}, F], got {list(x.shape)}')
    single = isinstance(eps, (int, float))
    eps_t = (float(eps), ) if single else tuple(float(e) for e in eps)
    if not eps_t or min(eps_t) < 0:
        raise ValueError(f'perturbed_propagate: eps must be one radius >= 0 '
                         f'or a non-empty sequence of them, got {eps}')
    V = len(eps_t)
    if noise is not None:
        noise = tuple(noise)
        shape = (V, adj.num_nodes, x.size(1))
        if len(noise) != num_layers or any(u.shape != shape for u in noise):
            raise ValueError(
                f'perturbed_propagate: noise must be num_layers='
                f'{num_layers} tensors of shape {list(shape)} (views, '
                f'nodes, features), got '
                f'{[list(u.shape) for u in noise]}')
    if index is None:
        if return_layer0:
            raise ValueError('perturbed_propagate: return_layer0=True needs '
                             'index; the layer-0 rows of all nodes are x '
                             'itself')
        out, _ = _NoisyPropagate.apply(x, adj, alpha, eps_t, None, generator,
                                       noise, backend)
        return out[0] if single else out
    shape = (V, *index.shape, x.size(1))
    flat = index.reshape(-1)
    if ops_device.sync_free(x.device):
        # no row slice (its size would be read on the host): all rows of
        # every view, then a gather (see pyg_recsys.ops.propagate)
        out, _ = _NoisyPropagate.apply(x, adj, alpha, eps_t, None,
                                       generator, noise, backend)
        out = out.index_select(1, flat).view(shape)
        if single:
            out = out[0]
        if return_layer0:
            return out, x.index_select(0, flat).view(shape[1:])
        return out
    if flat.numel() > 0 and bool((flat[1:] > flat[:-1]).all()):
        uniq, inv = flat, None  # sorted distinct ids: no sort, no gather
    else:
        uniq, inv = torch.unique(flat, return_inverse=True)
    out, layer0 = _NoisyPropagate.apply(x, adj, alpha, eps_t, uniq,
                                        generator, noise, backend)
    if inv is not None:
        inv = inv.view(-1)
        out = out.index_select(1, inv)
        layer0 = layer0.index_select(0, inv)
    out = out.view(shape)
    if single:
        out = out[0]
    if return_layer0:
        return out, layer0.view(shape[1:])
    return out


def _noise(pre: Tensor, eps: Tensor, views: list[int], layer: int,
           rows: Tensor | None, generator: torch.Generator | None,
           noise: tuple[Tensor, ...] | None) -> Tensor:
    r"""The draws :math:`\epsilon \, \mathbf{u} / \lVert\mathbf{u}
    \rVert` of layer ``layer`` (1-based) for the noisy ``views``, shape
    ``[n, len(views), F]`` (rows ``rows`` of the injected ``noise``; all if
    ``None``)."""
    n, F = pre.size(0), pre.size(-1)
    if noise is None:
        u = torch.rand(n, len(views), F, generator=generator,
                       dtype=pre.dtype, device=pre.device)
    else:
        u = noise[layer - 1][views].to(pre)
        if rows is not None:
            u = u.index_select(1, rows)
        u = u.transpose(0, 1).contiguous()
    scale = u.norm(dim=-1, keepdim=True).clamp_min_(1e-12)
    return u.mul_(torch.div(eps, scale, out=scale))


def _mult(mat: NormAdj | RowSlice, t: Tensor, backend: str | None
          ) -> Tensor:
    if isinstance(mat, RowSlice):
        return mat.matmul(t, backend)
    return mat.spmm(t, backend)


class _NoisyPropagate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, adj: NormAdj, alpha: tuple[float, ...],
                eps: tuple[float, ...], index: Tensor | None,
                generator: torch.Generator | None,
                noise: tuple[Tensor, ...] | None,
                backend: str | None) -> tuple[Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        num_layers = len(alpha) - 1
        F = x.size(1)
        clean = [v for v, e in enumerate(eps) if e == 0]
        noisy = [v for v, e in enumerate(eps) if e != 0]
        # made on the device by fills (a tensor from a list would be a
        # blocking copy from the host)
        eps_n = (torch.stack([x.new_full((), eps[v]) for v in noisy])
                 .view(-1, 1) if noisy else x.new_empty(0, 1))
        layer0 = x if index is None else x.index_select(0, index)
        # Two tracks: `hc` [n, F], the clean propagation (shared by the
        # views up to the first noise, and by every view with eps = 0), and
        # `hn` [n, Vn, F], the noisy views side by side (one product with
        # Vn * F columns per layer).  acc_* accumulate the layer sums.
        acc_c = layer0 * alpha[0]
        acc_n = acc_c.unsqueeze(0).repeat(len(noisy), 1, 1)
        sub: RowSlice | None = None
        hc, hn = x, None
        for k in range(1, num_layers + 1):
            last = k == num_layers
            rows = index if last else None
            if last and index is not None:
                sub = adj.rows(index)
            mat = sub if last and index is not None else adj
            if hn is None or clean:
                hc = _mult(mat, hc, backend)
            if noisy and hn is None:
                # first layer: every view perturbs the same A x
                u = _noise(hc, eps_n, noisy, k, rows, generator, noise)
                hn = u.mul_(hc.sign().unsqueeze(1)).add_(hc.unsqueeze(1))
            elif noisy:
                n = hn.size(0)
                hn = _mult(mat, hn.view(n, -1), backend).view(
                    -1, len(noisy), F)
                u = _noise(hn, eps_n, noisy, k, rows, generator, noise)
                hn.addcmul_(u, hn.sign())
            if alpha[k] == 0:
                continue
            pick = None if last or index is None else index
            if clean:
                t = hc if pick is None else hc.index_select(0, pick)
                acc_c.add_(t, alpha=alpha[k])
            if noisy:
                t = hn if pick is None else hn.index_select(0, pick)
                acc_n.add_(t.transpose(0, 1), alpha=alpha[k])
        out = x.new_empty(len(eps), *acc_c.shape)
        for v in clean:  # integer indices: no index tensor to copy over
            out[v] = acc_c
        for j, v in enumerate(noisy):
            out[v] = acc_n[j]
        ctx.adj, ctx.alpha, ctx.backend, ctx.sub = adj, alpha, backend, sub
        ctx.index = index
        ctx.shape = x.shape
        if index is None:
            return out, x.new_empty(0)
        return out, layer0

    @staticmethod
    def backward(ctx, grad: Tensor | None, grad0: Tensor | None):
        none = (None, ) * 7
        index = ctx.index
        if grad is None and (grad0 is None or index is None):
            return (None, *none)
        if grad is not None:
            # The views share the Jacobian: sum their gradients, then one
            # linear backward pass.
            grad = grad.sum(0)
        if index is None:
            return (_full_backward(ctx.adj, grad, ctx.alpha, ctx.backend),
                    *none)
        return (row_backward(ctx.adj, ctx.sub, index, ctx.alpha, grad,
                             grad0, ctx.shape, ctx.backend), *none)
