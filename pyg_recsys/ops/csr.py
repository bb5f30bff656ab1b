"""A minimal compressed-sparse-row index of user -> item sets.

Used wherever a per-user item set is needed in vectorized form: items to
mask when ranking (known positives), held-out targets, and positives to
avoid when sampling negatives.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


def isin_sorted(query: Tensor, sorted_keys: Tensor) -> Tensor:
    """``torch.isin(query, sorted_keys)`` for sorted 1-D keys, by binary
    search (much faster than :func:`torch.isin` on CPU); keeps the shape of
    ``query``."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(query, dtype=torch.bool)
    idx = torch.searchsorted(sorted_keys, query.reshape(-1))
    idx.clamp_(max=sorted_keys.numel() - 1)
    return (sorted_keys.index_select(0, idx) == query.reshape(-1)).view(
        query.shape)


class CSR(NamedTuple):
    """Rows are users, columns items; ``col[rowptr[u]:rowptr[u+1]]`` are the
    sorted, unique items of user ``u``."""

    rowptr: Tensor  # [num_rows + 1] long
    col: Tensor  # [nnz] long
    num_cols: int

    @property
    def num_rows(self) -> int:
        return self.rowptr.numel() - 1

    @property
    def nnz(self) -> int:
        return self.col.numel()

    @classmethod
    def from_pairs(cls, rows: Tensor, cols: Tensor, num_rows: int,
                   num_cols: int) -> CSR:
        """Builds the index from (row, col) pairs; duplicates are dropped."""
        rows = rows.long().view(-1)
        cols = cols.long().view(-1)
        if rows.numel() != cols.numel():
            raise ValueError(f'CSR.from_pairs: got {rows.numel()} rows but '
                             f'{cols.numel()} cols; pass one of each per pair')
        if rows.numel() > 0:
            if int(rows.min()) < 0 or int(rows.max()) >= num_rows:
                raise ValueError(f'CSR.from_pairs: row ids must lie in '
                                 f'[0, {num_rows}), got [{int(rows.min())}, '
                                 f'{int(rows.max())}]')
            if int(cols.min()) < 0 or int(cols.max()) >= num_cols:
                raise ValueError(f'CSR.from_pairs: col ids must lie in '
                                 f'[0, {num_cols}), got [{int(cols.min())}, '
                                 f'{int(cols.max())}]')
        key = torch.unique(rows * num_cols + cols)  # sorted, deduplicated
        rows, cols = key // num_cols, key % num_cols
        count = torch.bincount(rows, minlength=num_rows)
        rowptr = torch.zeros(num_rows + 1, dtype=torch.long,
                             device=rows.device)
        torch.cumsum(count, 0, out=rowptr[1:])
        return cls(rowptr, cols, num_cols)

    @property
    def device(self) -> torch.device:
        return self.col.device

    def to(self, device: torch.device | str | None) -> CSR:
        """This index on ``device`` (itself when it is there already)."""
        if device is None or self.col.device == torch.device(device):
            return self
        return CSR(self.rowptr.to(device), self.col.to(device),
                   self.num_cols)

    @classmethod
    def union(cls, *parts: CSR) -> CSR:
        rows = torch.cat([p.rows() for p in parts])
        cols = torch.cat([p.col for p in parts])
        return cls.from_pairs(rows, cols, parts[0].num_rows, parts[0].num_cols)

    def degree(self, rows: Tensor | None = None) -> Tensor:
        """Entries per row, of all rows or of the given ``rows``."""
        if rows is None:
            return self.rowptr[1:] - self.rowptr[:-1]
        return (self.rowptr.index_select(0, rows + 1) -
                self.rowptr.index_select(0, rows))

    def rows(self) -> Tensor:
        """The row id of every stored entry (COO row vector)."""
        return torch.repeat_interleave(
            torch.arange(self.num_rows, device=self.col.device),
            self.degree(), output_size=self.nnz)

    def keys(self) -> Tensor:
        """Sorted ``row * num_cols + col`` keys, for membership tests with
        :func:`torch.searchsorted`."""
        return self.rows() * self.num_cols + self.col

    def row(self, i: int) -> Tensor:
        return self.col[self.rowptr[i]:self.rowptr[i + 1]]

    def select(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """Entries of the given rows as COO ``(position in rows, col)``,
        without a Python loop over rows."""
        rows = rows.long().view(-1)
        device = self.col.device
        rows = rows.to(device)
        start = self.rowptr[rows]
        count = self.rowptr[rows + 1] - start
        # offset of each entry inside its row
        first = torch.zeros(rows.numel() + 1, dtype=torch.long,
                            device=device)
        torch.cumsum(count, 0, out=first[1:])
        total = int(first[-1])
        pos = torch.repeat_interleave(
            torch.arange(rows.numel(), device=device), count,
            output_size=total)
        offset = torch.arange(total, device=device) - first[:-1][pos]
        return pos, self.col[start[pos] + offset]

    def contains(self, rows: Tensor, cols: Tensor,
                 keys: Tensor | None = None) -> Tensor:
        """Boolean mask, same shape as ``cols``: is ``cols[..]`` in the row
        given by ``rows`` (broadcast against ``cols``)?

        ``keys`` may pass a cached :meth:`keys` for repeated queries.
        """
        rows = rows.long().to(cols.device)
        cols = cols.long()
        if rows.dim() < cols.dim():
            rows = rows.view(*rows.shape,
                             *([1] * (cols.dim() - rows.dim())))
        q = (rows * self.num_cols + cols).expand_as(cols)
        if keys is None:
            keys = self.keys()
        return isin_sorted(q, keys)
