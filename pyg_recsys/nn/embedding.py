r"""One embedding table per node type, stored as blocks of one matrix; an
embedding lookup that does not wait for the device."""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from pyg_recsys.ops import device as ops_device
from pyg_recsys.schema import node_offsets


class HeteroEmbedding(torch.nn.Module):
    r"""Learnable embeddings of several node types (users, items,
    entities): one ``[num_nodes[t], d]`` table per node type ``t``.

    The tables are row blocks of one parameter :attr:`weight`
    (``[sum_t num_nodes[t], d]``, the types in the order of ``num_nodes``),
    because graph propagation over all node types
    (:class:`~pyg_recsys.ops.adj.NormAdj`, whose rows use the same order)
    multiplies the stacked matrix: separate parameters would be
    concatenated, and the gradient split again, at every step.
    :meth:`table` (``emb['item']``) returns a type's table as a view, so
    per-type reads, writes and initialisation touch that block only;
    :meth:`forward` looks up global ids (``offsets[t] + local``) or, with
    ``node_type``, local ids of one type.

    Args:
        num_nodes: Node type -> number of nodes, in the order of the rows.
        embedding_dim: Embedding size :math:`d`.
    """

    def __init__(self, num_nodes: Mapping[str, int],
                 embedding_dim: int) -> None:
        super().__init__()
        counts = {t: int(n) for t, n in num_nodes.items()}
        if not counts or min(counts.values()) <= 0:
            raise ValueError(f'HeteroEmbedding: every node type needs a '
                             f'positive count, got {counts}')
        if embedding_dim <= 0:
            raise ValueError(f'HeteroEmbedding: embedding_dim must be '
                             f'positive, got {embedding_dim}')
        self.num_nodes = counts
        self.offsets = node_offsets(counts)
        self.embedding_dim = embedding_dim
        self.weight = Parameter(torch.empty(sum(counts.values()),
                                            embedding_dim))
        self.reset_parameters()

    @property
    def node_types(self) -> list[str]:
        return list(self.num_nodes)

    def reset_parameters(self) -> None:
        r"""Draws every table from :math:`\mathcal{N}(0, 1)`, as
        :class:`torch.nn.Embedding` (owners re-initialise as their paper
        does)."""
        torch.nn.init.normal_(self.weight)

    def table(self, node_type: str) -> Tensor:
        """The ``[num_nodes[node_type], d]`` table of ``node_type`` (a view
        of :attr:`weight`)."""
        if node_type not in self.offsets:
            raise KeyError(f'HeteroEmbedding: no node type {node_type!r}; '
                           f'have {self.node_types}')
        start = self.offsets[node_type]
        return self.weight[start:start + self.num_nodes[node_type]]

    def __getitem__(self, node_type: str) -> Tensor:
        return self.table(node_type)

    def global_index(self, node_type: str, index: Tensor) -> Tensor:
        """Rows of :attr:`weight` of the local ids ``index`` of
        ``node_type``."""
        return index + self.offsets[node_type]

    def forward(self, index: Tensor, node_type: str | None = None) -> Tensor:
        """Embeddings of global ids ``index`` (any shape), or of local ids
        of ``node_type``."""
        if node_type is not None:
            index = self.global_index(node_type, index)
        if ops_device.sync_free(self.weight.device):  # see Embedding
            return self.weight.index_select(0, index.reshape(-1)).view(
                *index.shape, self.weight.size(1))
        return F.embedding(index, self.weight)

    def extra_repr(self) -> str:
        counts = ', '.join(f'{t}={n}' for t, n in self.num_nodes.items())
        return f'{counts}, embedding_dim={self.embedding_dim}'


class Embedding(torch.nn.Embedding):
    """:class:`torch.nn.Embedding` (same parameters, same ``state_dict``)
    whose lookup never makes the host wait for the device.

    The backward pass of ``F.embedding`` on CUDA reads the number of
    distinct ids back to the host in every step.  On such devices
    (:func:`~pyg_recsys.ops.device.sync_free`) the lookup is an
    ``index_select``, whose backward is a scatter-add, and the padding rows
    are multiplied by zero, which gives ``padding_idx`` the same zero
    output and zero gradient.  On the CPU it is ``F.embedding``.  Only the
    plain lookup is supported (no ``max_norm``, no sparse gradients).
    """

    def forward(self, index: Tensor) -> Tensor:
        if not ops_device.sync_free(self.weight.device):
            return super().forward(index)
        if self.max_norm is not None or self.sparse:
            raise ValueError('Embedding: max_norm and sparse=True are not '
                             'supported; use torch.nn.Embedding')
        out = self.weight.index_select(0, index.reshape(-1))
        if self.padding_idx is not None:
            keep = (index.reshape(-1, 1) != self.padding_idx)
            out = out * keep.to(out.dtype)
        return out.view(*index.shape, self.embedding_dim)


__all__ = ['Embedding', 'HeteroEmbedding']
