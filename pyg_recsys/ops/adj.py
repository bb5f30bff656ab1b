r"""The symmetric normalised adjacency of LightGCN, built once.

LightGCN (He et al., SIGIR 2020, Eq. 7-8) propagates embeddings over

.. math::
    \mathbf{A} = \mathbf{D}^{-1/2}
    \begin{pmatrix} \mathbf{0} & \mathbf{R} \\ \mathbf{R}^\top & \mathbf{0}
    \end{pmatrix} \mathbf{D}^{-1/2},

where :math:`\mathbf{R} \in \{0, 1\}^{U \times I}` holds the training
interactions, nodes are the :math:`U` users followed by the :math:`I` items,
and :math:`\mathbf{D}` is the diagonal degree matrix of the bipartite graph.
The same matrix over more node types (users, items and entities of a
collaborative knowledge graph, KGAT) is the symmetric normalised adjacency
of the union of every relation, both directions, with each node type in a
block of rows (:meth:`NormAdj.from_edges`, :meth:`NormAdj.from_hetero`).
:class:`NormAdj` holds :math:`\mathbf{A}` in CSR form, built once per graph
(GUIDE §5: never re-normalise inside a training step), and multiplies it
with dense matrices.

Backends of :meth:`NormAdj.spmm` (``benchmarks/lightgcn_gowalla.py``
measures them; figures in ``benchmarks/results/``):

==================  ==================================================
backend             kernel
==================  ==================================================
``'csr'``           MKL (CPU) / cuSPARSE (GPU) CSR, 32-bit indices,
                    ``torch.addmm`` into an uninitialised output
                    (``beta=0``): no index conversion, no zero-fill, no
                    result copy
``'torch_sparse'``  ``torch_sparse.matmul`` (``SparseTensor``)
``'scatter'``       gather + ``index_add_``
==================  ==================================================

``'csr'`` is the default and the fastest measured; it is plain PyTorch, so
it is also the fallback and needs no optional dependency.
``'torch_sparse'`` is kept for comparison and needs ``torch_sparse``;
``'scatter'`` is the reference the tests use and the path for devices
without sparse CSR kernels.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping

import torch
from torch import Tensor

from pyg_recsys import typing as pt
from pyg_recsys.schema import (
    ITEM,
    USER,
    USER_ITEM,
    EdgeType,
    check_edge_index,
    node_offsets,
)

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

    def spmm(self, x: Tensor, backend: str | None = None) -> Tensor:
        r""":math:`\mathbf{A}[\text{index}] \, \mathbf{X}`, differentiable
        in ``x`` (the backward pass is :meth:`t_matmul`): the last layer of
        a propagation computed for the rows a loss reads only."""
        if torch.is_grad_enabled() and x.requires_grad:
            return _RowSpMM.apply(self, x, backend)
        return self.matmul(x, backend)

    def t_matmul(self, g: Tensor, backend: str | None = None) -> Tensor:
        r""":math:`\mathbf{A}[\text{index}]^\top \mathbf{G}`, shape
        ``[num_nodes, g.size(1)]``: row ``j`` collects
        :math:`\sum_r A_{\text{index}_r, j} \mathbf{g}_r`.

        The slice is transposed by one stable sort of its column indices
        and multiplied as CSR, which measured faster than ``index_add_``,
        a dense-sparse ``G^T A[index]`` and a full SpMM.  ``backend`` as
        in :meth:`matmul`."""
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
    r"""The symmetric normalised adjacency
    :math:`\mathbf{A} = \mathbf{D}^{-1/2} \mathbf{B} \mathbf{D}^{-1/2}` of a
    typed graph, as CSR: :math:`\mathbf{B}` is the binary adjacency of
    every relation in both directions, :math:`\mathbf{D}` its degree
    matrix.  On the user-item graph it is LightGCN's
    :math:`\mathbf{D}^{-1/2} [[\mathbf{0}, \mathbf{R}], [\mathbf{R}^\top,
    \mathbf{0}]] \mathbf{D}^{-1/2}`.

    Nodes are numbered by type in the order of ``num_nodes`` (users
    ``0 .. U-1``, items ``U .. U+I-1``, then e.g. entities);
    :attr:`offsets` gives each type's first row.  :math:`\mathbf{A}` is
    symmetric, so products with :math:`\mathbf{A}^\top` are products with
    :math:`\mathbf{A}`: the gradient of :meth:`spmm` is one more
    :meth:`spmm`, never a transpose.

    Build it with :meth:`from_edge_index` (user-item pairs),
    :meth:`from_edges` (any node and edge types) or :meth:`from_hetero`.

    Args:
        rowptr: ``[num_nodes + 1]`` CSR row pointer.
        col: ``[nnz]`` column indices, sorted within each row.
        value: ``[nnz]`` normalised edge weights.
        num_nodes: Node type -> count, in the order of the rows.
    """

    def __init__(self, rowptr: Tensor, col: Tensor, value: Tensor,
                 num_nodes: Mapping[str, int]) -> None:
        counts = {t: int(n) for t, n in num_nodes.items()}
        total = sum(counts.values())
        if rowptr.numel() != total + 1:
            raise ValueError(
                f'NormAdj: rowptr has {rowptr.numel()} entries but the node '
                f'types {counts} need {total + 1}; build it with '
                f'NormAdj.from_edges')
        if col.numel() != value.numel():
            raise ValueError(
                f'NormAdj: col has {col.numel()} entries but value has '
                f'{value.numel()}; pass one value per stored entry')
        self.rowptr = rowptr
        self.col = col
        self.value = value
        self.node_counts = counts
        self.offsets = node_offsets(counts)
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
        try:
            return cls.from_edges({USER: num_users, ITEM: num_items},
                                  {USER_ITEM: edge_index}, dtype)
        except ValueError as e:
            raise ValueError(
                f'NormAdj.from_edge_index: {str(e).partition(": ")[2]}; '
                f'items are numbered from 0, not offset by '
                f'num_users') from None

    @classmethod
    def from_edges(cls, num_nodes: Mapping[str, int],
                   edges: Mapping[EdgeType, Tensor],
                   dtype: torch.dtype = torch.float32) -> NormAdj:
        """Builds :math:`\\mathbf{A}` over node types ``num_nodes`` (their
        order is the order of the rows) from ``edges``: edge type ->
        ``[2, E]`` local (source, target) ids.  Every edge enters both
        directions; an edge given twice (in two relations, or as a relation
        and its reverse) counts once; a self-loop is one diagonal entry.
        All index work runs on the CPU; the result moves to the device of
        the edges."""
        where = 'NormAdj.from_edges'
        counts = {t: int(n) for t, n in num_nodes.items()}
        if not counts or min(counts.values()) <= 0:
            raise ValueError(f'{where}: every node type needs a positive '
                             f'count, got {counts}')
        offsets = node_offsets(counts)
        total = sum(counts.values())
        rows, cols, device = [], [], None
        for edge_type, edge_index in edges.items():
            edge_type = tuple(edge_type)
            edge_index = check_edge_index(edge_index, edge_type, counts,
                                          where)
            device = edge_index.device
            src = edge_index[0].cpu() + offsets[edge_type[0]]
            dst = edge_index[1].cpu() + offsets[edge_type[2]]
            rows += [src, dst]
            cols += [dst, src]
        if rows:
            key = torch.unique(torch.cat(rows) * total + torch.cat(cols))
        else:
            key = torch.zeros(0, dtype=torch.long)
        row, col = key // total, key % total
        deg = torch.bincount(row, minlength=total)
        rowptr = torch.zeros(total + 1, dtype=torch.long)
        torch.cumsum(deg, 0, out=rowptr[1:])
        dis = deg.double().pow(-0.5)
        dis.masked_fill_(deg == 0, 0.0)
        value = (dis[row] * dis[col]).to(dtype)
        # 32-bit indices where they fit: MKL takes them without a
        # conversion (which costs more than the product on small slices).
        if max(key.numel(), total) < 2**31 - 1:
            rowptr, col = rowptr.int(), col.int()
        return cls(rowptr.to(device), col.to(device), value.to(device),
                   counts)

    @classmethod
    def from_hetero(cls, data, edge_types: list[EdgeType] | None = None,
                    dtype: torch.dtype = torch.float32) -> NormAdj:
        """Builds :math:`\\mathbf{A}` from a
        :class:`~torch_geometric.data.HeteroData` (e.g.
        :meth:`Split.graph`): all its node types in their order and the
        given edge types (default: all; reverse edge types add nothing, the
        matrix is symmetric)."""
        num_nodes = {t: data[t].num_nodes for t in data.node_types}
        types = data.edge_types if edge_types is None else edge_types
        return cls.from_edges(
            num_nodes, {t: data[t].edge_index for t in types}, dtype)

    @property
    def num_users(self) -> int:
        return self.node_counts.get(USER, 0)

    @property
    def num_items(self) -> int:
        return self.node_counts.get(ITEM, 0)

    def node_slice(self, node_type: str) -> slice:
        """The rows of ``node_type``."""
        start = self.offsets[node_type]
        return slice(start, start + self.node_counts[node_type])

    # ------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return sum(self.node_counts.values())

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
                       self.node_counts)

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
        counts = ', '.join(f'num_{t[:-1]}ies={n}' if t.endswith('y')
                           else f'num_{t}s={n}'
                           for t, n in self.node_counts.items())
        return f'{type(self).__name__}({counts}, nnz={self.nnz})'


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


class _RowSpMM(torch.autograd.Function):
    """``A[index] @ x`` with the backward ``A[index]^T @ grad``."""

    @staticmethod
    def forward(ctx, sub: RowSlice, x: Tensor, backend: str | None
                ) -> Tensor:
        ctx.sub, ctx.backend = sub, backend
        return sub.matmul(x, backend)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, ctx.sub.t_matmul(grad.contiguous(), ctx.backend), None
