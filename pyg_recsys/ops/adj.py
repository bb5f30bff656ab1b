r"""The symmetric normalised user-item adjacency of LightGCN, built once.

LightGCN (He et al., SIGIR 2020, Eq. 7-8) propagates embeddings over

.. math::
    \mathbf{A} = \mathbf{D}^{-1/2}
    \begin{pmatrix} \mathbf{0} & \mathbf{R} \\ \mathbf{R}^\top & \mathbf{0}
    \end{pmatrix} \mathbf{D}^{-1/2},

where :math:`\mathbf{R} \in \{0, 1\}^{U \times I}` holds the training
interactions, nodes are the :math:`U` users followed by the :math:`I` items,
and :math:`\mathbf{D}` is the diagonal degree matrix of the bipartite graph.
:class:`NormAdj` holds :math:`\mathbf{A}` in CSR form, built once per graph
(GUIDE §5: never re-normalise inside a training step), and multiplies it
with dense matrices.

Backends of :meth:`NormAdj.spmm`, measured by
``benchmarks/lightgcn_gowalla.py`` on the Gowalla LightGCN split (70,839
nodes, 1,620,256 non-zeros, 64 float32 columns; 2-core Xeon with AVX-512,
torch 2.13 CPU, 2 threads, minimum of 10 runs on a machine shared with one
other busy process):

==================  =========================================  =========
backend             kernel                                     ms / SpMM
==================  =========================================  =========
``'csr'``           MKL CSR, 32-bit indices, ``torch.addmm``     7.3
                    into an uninitialised output (``beta=0``)
(not offered)       ``torch.sparse_csr_tensor`` (64-bit) ``@ x``  9.9
(not offered)       ``torch_geometric.utils.spmm`` on the same   10.4
                    CSR tensor (``torch.sparse.mm`` reduce)
``'torch_sparse'``  ``torch_sparse.matmul`` (``SparseTensor``)   71.5
``'scatter'``       gather + ``index_add_``                      373.5
==================  =========================================  =========

``'csr'`` is the default: 9.8x faster than ``torch_sparse`` and 1.4x faster
than the plain ``csr @ x`` (the 64-bit index conversion, the output
zero-fill and a result copy are gone; on one thread 24 vs 35 ms).  It is
plain PyTorch, so it is also the fallback and needs no optional
dependency.  ``'torch_sparse'`` is kept for comparison and needs
``torch_sparse``; ``'scatter'`` is the reference the tests use and the path
for devices without sparse CSR kernels.
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from pyg_recsys import typing as pt
from pyg_recsys.ops.csr import CSR

BACKENDS = ('csr', 'torch_sparse', 'scatter')


def _csr_tensor(rowptr: Tensor, col: Tensor, value: Tensor,
                size: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():  # 'sparse CSR support is in beta'
        warnings.simplefilter('ignore', UserWarning)
        return torch.sparse_csr_tensor(rowptr, col, value, size,
                                       check_invariants=False)


def _csr_mm(mat: Tensor, x: Tensor) -> Tensor:
    # addmm into an uninitialised output with beta=0 (the output is not
    # read) skips the zero-fill and the result copy of `mat @ x`.
    out = torch.empty(mat.size(0), x.size(1), dtype=x.dtype,
                      device=x.device)
    return torch.addmm(out, mat, x, beta=0, out=out)


def _use_scatter(x: Tensor, backend: str | None) -> bool:
    return backend == 'scatter' or x.device.type not in ('cpu', 'cuda')


class RowSlice:
    r"""Rows ``index`` of a :class:`NormAdj`, :math:`\mathbf{A}[\text{index}]`
    (shape ``[len(index), num_nodes]``), in CSR form.

    Built by :meth:`NormAdj.rows`; costs time proportional to the number of
    non-zeros of the selected rows, not of the whole matrix.
    """

    def __init__(self, rowptr: Tensor, col: Tensor, value: Tensor,
                 index: Tensor, num_cols: int) -> None:
        self.rowptr = rowptr
        self.col = col
        self.value = value
        self.index = index
        self.num_cols = num_cols
        self._row: Tensor | None = None

    @property
    def num_rows(self) -> int:
        return self.index.numel()

    @property
    def nnz(self) -> int:
        return self.col.numel()

    def row(self) -> Tensor:
        """Local row (position in ``index``) of every stored entry."""
        if self._row is None:
            count = self.rowptr[1:] - self.rowptr[:-1]
            self._row = torch.repeat_interleave(
                torch.arange(self.num_rows, dtype=self.col.dtype,
                             device=count.device), count,
                output_size=self.nnz)
        return self._row

    def matmul(self, x: Tensor, backend: str | None = None) -> Tensor:
        r""":math:`\mathbf{A}[\text{index}] \, \mathbf{X}`, shape
        ``[len(index), x.size(1)]``.  ``backend='scatter'`` (or a device
        without sparse CSR kernels) uses gather + ``index_add_``; any other
        value the CSR kernel."""
        value = self.value.to(x.dtype)
        if not _use_scatter(x, backend):
            sub = _csr_tensor(self.rowptr, self.col, value,
                              (self.num_rows, self.num_cols))
            return _csr_mm(sub, x)
        out = x.new_zeros(self.num_rows, x.size(1))
        return out.index_add_(0, self.row(), x[self.col] * value[:, None])

    def t_matmul(self, g: Tensor, backend: str | None = None) -> Tensor:
        r""":math:`\mathbf{A}[\text{index}]^\top \mathbf{G}`, shape
        ``[num_nodes, g.size(1)]``: row ``j`` collects
        :math:`\sum_r A_{\text{index}_r, j} \mathbf{g}_r`.

        The slice is transposed by one stable sort of its column indices
        and multiplied as CSR: 9 ms for a Gowalla batch's 268k-entry slice
        on one thread, against 89 ms for ``index_add_``, 31 ms for a
        dense-sparse ``G^T A[index]`` and 23 ms for a full SpMM.
        ``backend`` as in :meth:`matmul`."""
        value = self.value.to(g.dtype)
        if _use_scatter(g, backend):
            out = g.new_zeros(self.num_cols, g.size(1))
            return out.index_add_(0, self.col, g[self.row()] * value[:, None])
        col, order = torch.sort(self.col, stable=True)
        rowptr = torch.zeros(self.num_cols + 1, dtype=col.dtype,
                             device=col.device)
        rowptr[1:] = torch.bincount(col, minlength=self.num_cols).cumsum(0)
        mat = _csr_tensor(rowptr, self.row().index_select(0, order),
                          value.index_select(0, order),
                          (self.num_cols, self.num_rows))
        return _csr_mm(mat, g)


class NormAdj:
    r"""The symmetric normalised bipartite adjacency
    :math:`\mathbf{A} = \mathbf{D}^{-1/2} [[\mathbf{0}, \mathbf{R}],
    [\mathbf{R}^\top, \mathbf{0}]] \mathbf{D}^{-1/2}` of LightGCN, as CSR.

    Nodes ``0 .. num_users - 1`` are users, ``num_users .. num_nodes - 1``
    items.  :math:`\mathbf{A}` is symmetric, so products with
    :math:`\mathbf{A}^\top` are products with :math:`\mathbf{A}`: the
    gradient of :meth:`spmm` is one more :meth:`spmm`, never a transpose.

    Build it with :meth:`from_edge_index`; see the module docstring for the
    measured backends.

    Args:
        rowptr: ``[num_nodes + 1]`` CSR row pointer.
        col: ``[nnz]`` column indices, sorted within each row.
        value: ``[nnz]`` normalised edge weights.
        num_users: Number of users :math:`U`.
        num_items: Number of items :math:`I`.
    """

    def __init__(self, rowptr: Tensor, col: Tensor, value: Tensor,
                 num_users: int, num_items: int) -> None:
        num_nodes = num_users + num_items
        if rowptr.numel() != num_nodes + 1:
            raise ValueError(
                f'NormAdj: rowptr has {rowptr.numel()} entries but '
                f'num_users + num_items + 1 = {num_nodes + 1}; build it with '
                f'NormAdj.from_edge_index')
        if col.numel() != value.numel():
            raise ValueError(
                f'NormAdj: col has {col.numel()} entries but value has '
                f'{value.numel()}; pass one value per stored entry')
        self.rowptr = rowptr
        self.col = col
        self.value = value
        self.num_users = num_users
        self.num_items = num_items
        self._csr: dict[torch.dtype, Tensor] = {}
        self._sparse_tensor = None
        self._row: Tensor | None = None

    # ------------------------------------------------------------------
    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_users: int,
                        num_items: int,
                        dtype: torch.dtype = torch.float32) -> NormAdj:
        """Builds :math:`\\mathbf{A}` from ``[2, E]`` (user, item) training
        pairs (item ids in ``[0, num_items)``); repeated pairs count once,
        as :math:`\\mathbf{R}` is binary.  Isolated nodes get empty rows."""
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(
                f'NormAdj.from_edge_index: edge_index must have shape '
                f'[2, E] of (user, item) pairs, got {list(edge_index.shape)}')
        if num_users <= 0 or num_items <= 0:
            raise ValueError(
                f'NormAdj.from_edge_index: num_users and num_items must be '
                f'positive, got {num_users} and {num_items}')
        edge_index = edge_index.long()
        device = edge_index.device
        if edge_index.numel() > 0:
            for name, ids, n in (('user', edge_index[0], num_users),
                                 ('item', edge_index[1], num_items)):
                lo, hi = int(ids.min()), int(ids.max())
                if lo < 0 or hi >= n:
                    raise ValueError(
                        f'NormAdj.from_edge_index: {name} ids must lie in '
                        f'[0, {n}), got [{lo}, {hi}]; items are numbered '
                        f'from 0, not offset by num_users')
        R = CSR.from_pairs(edge_index[0].cpu(), edge_index[1].cpu(),
                           num_users, num_items)
        user = R.rows()
        item = R.col
        user_deg = R.degree()
        item_deg = torch.bincount(item, minlength=num_items)
        # Item rows of R^T: stable sort by item keeps users sorted per item.
        item_sorted, perm = torch.sort(item, stable=True)
        nnz_r = item.numel()
        rowptr = torch.zeros(num_users + num_items + 1, dtype=torch.long)
        torch.cumsum(torch.cat([user_deg, item_deg]), 0, out=rowptr[1:])
        col = torch.cat([item + num_users, user[perm]])
        row = torch.cat([user, item_sorted + num_users])
        deg = torch.cat([user_deg, item_deg]).double()
        dis = deg.pow(-0.5)
        dis.masked_fill_(deg == 0, 0.0)
        value = (dis[row] * dis[col]).to(dtype)
        # 32-bit indices where they fit: MKL takes them without a
        # conversion (which costs more than the product on small slices).
        if max(2 * nnz_r, num_users + num_items) < 2**31 - 1:
            rowptr, col = rowptr.int(), col.int()
        return cls(rowptr.to(device), col.to(device), value.to(device),
                   num_users, num_items)

    # ------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items

    @property
    def nnz(self) -> int:
        return self.col.numel()

    @property
    def device(self) -> torch.device:
        return self.col.device

    def degree(self) -> Tensor:
        """Number of neighbours of every node (users then items)."""
        return self.rowptr[1:] - self.rowptr[:-1]

    def row(self) -> Tensor:
        """COO row index of every stored entry (cached)."""
        if self._row is None:
            self._row = torch.repeat_interleave(
                torch.arange(self.num_nodes, dtype=self.col.dtype,
                             device=self.device),
                self.degree(), output_size=self.nnz)
        return self._row

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> NormAdj:
        """A copy on ``device`` with values of ``dtype``."""
        value = self.value.to(device=device, dtype=dtype)
        return NormAdj(self.rowptr.to(device), self.col.to(device), value,
                       self.num_users, self.num_items)

    def to_torch_csr(self, dtype: torch.dtype | None = None) -> Tensor:
        """:math:`\\mathbf{A}` as a ``torch.sparse_csr`` tensor (cached per
        dtype)."""
        dtype = dtype or self.value.dtype
        out = self._csr.get(dtype)
        if out is None:
            out = _csr_tensor(self.rowptr, self.col, self.value.to(dtype),
                              (self.num_nodes, self.num_nodes))
            self._csr[dtype] = out
        return out

    def to_sparse_tensor(self):
        """:math:`\\mathbf{A}` as a ``torch_sparse.SparseTensor`` (cached);
        needs ``torch_sparse``."""
        if not pt.WITH_TORCH_SPARSE:
            raise ImportError(
                "NormAdj.to_sparse_tensor: the 'torch_sparse' backend needs "
                "the torch-sparse package; install it or use "
                "backend='csr'")
        if self._sparse_tensor is None:
            from torch_sparse import SparseTensor
            self._sparse_tensor = SparseTensor(
                rowptr=self.rowptr.long(), col=self.col.long(),
                value=self.value,
                sparse_sizes=(self.num_nodes, self.num_nodes),
                is_sorted=True, trust_data=True)
        return self._sparse_tensor

    def to_dense(self, dtype: torch.dtype | None = None) -> Tensor:
        """Dense ``[num_nodes, num_nodes]`` matrix (small graphs only)."""
        dtype = dtype or self.value.dtype
        out = torch.zeros(self.num_nodes, self.num_nodes, dtype=dtype,
                          device=self.device)
        out[self.row(), self.col] = self.value.to(dtype)
        return out

    def rows(self, index: Tensor) -> RowSlice:
        r"""The rows :math:`\mathbf{A}[\text{index}]` as a :class:`RowSlice`
        (cost proportional to their non-zeros)."""
        index = index.long().view(-1)
        start = self.rowptr[index]
        count = self.rowptr[index + 1] - start
        rowptr = torch.zeros(index.numel() + 1, dtype=self.rowptr.dtype,
                             device=index.device)
        torch.cumsum(count, 0, out=rowptr[1:])
        nnz = int(rowptr[-1])
        # Position in self.col of every selected entry.
        pos = torch.repeat_interleave(start - rowptr[:-1], count,
                                      output_size=nnz)
        pos += torch.arange(nnz, dtype=pos.dtype, device=index.device)
        return RowSlice(rowptr, self.col.index_select(0, pos),
                        self.value.index_select(0, pos), index,
                        self.num_nodes)

    # ------------------------------------------------------------------
    def spmm(self, x: Tensor, backend: str | None = None) -> Tensor:
        r""":math:`\mathbf{A} \mathbf{X}` for dense ``x`` of shape
        ``[num_nodes, F]``; differentiable in ``x`` (the backward pass is
        one more product with :math:`\mathbf{A}`, which is symmetric).

        Args:
            x: Dense node features.
            backend: ``'csr'`` (default, fastest measured), ``'torch_sparse'``
                or ``'scatter'``; see the module docstring.
        """
        if x.dim() != 2 or x.size(0) != self.num_nodes:
            raise ValueError(
                f'NormAdj.spmm: x must have shape [num_nodes={self.num_nodes}'
                f', F], got {list(x.shape)}')
        if backend is None:
            backend = ('csr' if x.device.type in ('cpu', 'cuda')
                       else 'scatter')
        if backend not in BACKENDS:
            raise ValueError(f"NormAdj.spmm: unknown backend '{backend}'; "
                             f'choose one of {BACKENDS}')
        if torch.is_grad_enabled() and x.requires_grad:
            return _SymSpMM.apply(self, x, backend)
        return self._spmm(x, backend)

    def _spmm(self, x: Tensor, backend: str) -> Tensor:
        if backend == 'csr':
            return _csr_mm(self.to_torch_csr(x.dtype), x)
        if backend == 'torch_sparse':
            adj = self.to_sparse_tensor()  # raises if torch_sparse is absent
            import torch_sparse
            if adj.storage.value().dtype != x.dtype:
                adj = adj.set_value(adj.storage.value().to(x.dtype),
                                    layout='csr')
            return torch_sparse.matmul(adj, x, reduce='sum')
        out = x.new_zeros(self.num_nodes, x.size(1))
        value = self.value.to(x.dtype)
        return out.index_add_(0, self.row(), x[self.col] * value[:, None])

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_users={self.num_users}, '
                f'num_items={self.num_items}, nnz={self.nnz})')


class _SymSpMM(torch.autograd.Function):
    """``A @ x`` with the backward ``A @ grad`` (A is symmetric)."""

    @staticmethod
    def forward(ctx, adj: NormAdj, x: Tensor, backend: str) -> Tensor:
        ctx.adj = adj
        ctx.backend = backend
        return adj._spmm(x, backend)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, ctx.adj._spmm(grad.contiguous(), ctx.backend), None
