r"""Node and edge type names, and the one builder of the package's graphs.

This module sits at the root of the package and imports nothing from it, so
every layer (``ops``, ``data``, ``nn``, ``train``, ``cli``) can use the names
without an import cycle.

Every graph of the package is a :class:`~torch_geometric.data.HeteroData`
over the node types :data:`USER`, :data:`ITEM` and, for knowledge graphs,
:data:`ENTITY`.  Interactions are on :data:`USER_ITEM`
(``('user', 'interacts', 'item')``) and their reverse on :data:`ITEM_USER`;
side relations that are never held out are user-user trust
(:data:`USER_USER`), the item-item co-interaction graph (:data:`ITEM_ITEM`)
and knowledge-graph relations ``('item' | 'entity', <relation>, 'item' |
'entity')`` (see :mod:`pyg_recsys.data.kg`).  Modules import these names
instead of spelling the strings.

:func:`build_graph` is the one place a graph is assembled, for the full
log (:meth:`~pyg_recsys.data.interactions.Interactions.to_hetero`, a data
set's ``ds[0]``) and for the message-passing graph of a split
(:meth:`~pyg_recsys.data.split.Split.graph`) alike.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

EdgeType = tuple[str, str, str]

USER = 'user'
ITEM = 'item'
ENTITY = 'entity'
#: Node types of the user-item graph, in the order of global node ids
#: (users first, then items, then entities).
NODE_TYPES = (USER, ITEM, ENTITY)

INTERACTS = 'interacts'
TRUSTS = 'trusts'
CO_INTERACTS = 'co_interacts'
#: Prefix of a reverse relation's name.
REV = 'rev_'

USER_ITEM: EdgeType = (USER, INTERACTS, ITEM)
ITEM_USER: EdgeType = (ITEM, REV + INTERACTS, USER)
USER_USER: EdgeType = (USER, TRUSTS, USER)
ITEM_ITEM: EdgeType = (ITEM, CO_INTERACTS, ITEM)
#: Relations that hold both directions of every edge, so they have no
#: reverse edge type.
SYMMETRIC = frozenset({CO_INTERACTS})


def reverse(edge_type: EdgeType) -> EdgeType:
    """The reverse edge type: ``(dst, 'rev_' + rel, src)``, and back."""
    src, rel, dst = edge_type
    if rel.startswith(REV):
        return dst, rel[len(REV):], src
    return dst, REV + rel, src


def relation_key(name: str) -> str:
    """The edge-type name of a relation called ``name`` in a source file:
    runs of characters other than letters and digits become one ``'_'``
    and leading / trailing ones are dropped (``'/film/film/genre'`` ->
    ``'film_film_genre'``, ``'_hypernym'`` -> ``'hypernym'``), because PyG
    joins edge types with ``'__'`` and module names may not hold ``'.'``
    (:class:`~torch_geometric.nn.HeteroConv`)."""
    key = re.sub(r'[^0-9A-Za-z]+', '_', str(name)).strip('_')
    return key or 'relation'


def is_reverse(edge_type: EdgeType) -> bool:
    """Whether ``edge_type`` is the reverse of another edge type."""
    return edge_type[1].startswith(REV)


def node_offsets(num_nodes: Mapping[str, int]) -> dict[str, int]:
    """Start of every node type in the global numbering of
    ``num_nodes``'s order (users first, then items, ...)."""
    out, start = {}, 0
    for node_type, count in num_nodes.items():
        out[node_type] = start
        start += int(count)
    return out


def check_edge_index(edge_index: Any, edge_type: EdgeType,
                     num_nodes: Mapping[str, int], where: str) -> Tensor:
    """``edge_index`` as a ``[2, E]`` long tensor whose source and target
    ids lie in their node types' ranges; raises naming ``where`` and the
    edge type otherwise."""
    src, _, dst = edge_type
    for node_type in (src, dst):
        if node_type not in num_nodes:
            raise ValueError(f'{where}: edge type {edge_type} names node '
                             f'type {node_type!r}, which has no nodes; '
                             f'known node types: {list(num_nodes)}')
    edge_index = torch.as_tensor(edge_index)
    if (edge_index.dim() != 2 or edge_index.size(0) != 2
            or edge_index.is_floating_point()):
        raise ValueError(f'{where}: {edge_type} must be a [2, E] integer '
                         f'tensor, got shape {list(edge_index.shape)} and '
                         f'dtype {edge_index.dtype}')
    edge_index = edge_index.long()
    for row, node_type in ((0, src), (1, dst)):
        ids, size = edge_index[row], int(num_nodes[node_type])
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
            raise ValueError(f'{where}: {edge_type} {node_type} ids must lie '
                             f'in [0, {size}), got [{int(ids.min())}, '
                             f'{int(ids.max())}]')
    return edge_index


def build_graph(num_nodes: Mapping[str, int],
                edges: Mapping[EdgeType, Tensor],
                edge_attrs: Mapping[EdgeType, Mapping[str, Tensor]]
                | None = None,
                x: Mapping[str, Tensor] | None = None,
                ids: Mapping[str, Any] | None = None,
                add_reverse: bool = True) -> HeteroData:
    """Assembles a :class:`~torch_geometric.data.HeteroData`.

    Args:
        num_nodes: Node type -> number of nodes (every node type of
            ``edges``, ``x`` and ``ids`` must be here).
        edges: Edge type -> ``[2, E]`` (source, target) ids, local to each
            node type.
        edge_attrs: Edge type -> ``{name: [E] tensor}`` (e.g. ``rating``,
            ``time``, ``edge_weight``), copied to the reverse edge type.
        x: Node type -> ``[num_nodes, F]`` features.
        ids: Node type -> original ids (an array with one entry per node),
            kept on the graph as ``data.orig_ids`` (a dict; a graph-level
            attribute, so samplers and ``.to()`` leave it alone).
        add_reverse: Add ``reverse(edge_type)`` for every directed edge
            type whose reverse is not given (relations in
            :data:`SYMMETRIC` hold both directions already).
    """
    where = 'build_graph'
    data = HeteroData()
    for node_type, count in num_nodes.items():
        data[node_type].num_nodes = int(count)
    for node_type, value in (x or {}).items():
        if node_type not in num_nodes:
            raise ValueError(f'{where}: features for unknown node type '
                             f'{node_type!r}')
        if value.size(0) != int(num_nodes[node_type]):
            raise ValueError(f'{where}: {node_type} features have '
                             f'{value.size(0)} rows for '
                             f'{num_nodes[node_type]} nodes')
        data[node_type].x = value
    attrs = edge_attrs or {}
    for edge_type, edge_index in edges.items():
        edge_type = tuple(edge_type)
        edge_index = check_edge_index(edge_index, edge_type, num_nodes,
                                      where)
        store = data[edge_type]
        store.edge_index = edge_index
        for name, value in attrs.get(edge_type, {}).items():
            store[name] = value
        rev = reverse(edge_type)
        if (add_reverse and edge_type[1] not in SYMMETRIC
                and rev not in edges):
            rev_store = data[rev]
            rev_store.edge_index = edge_index.flip(0)
            for name, value in attrs.get(edge_type, {}).items():
                rev_store[name] = value
    if ids:
        data.orig_ids = {t: np.asarray(v) for t, v in ids.items()}
    return data


__all__ = ['EdgeType', 'USER', 'ITEM', 'ENTITY', 'NODE_TYPES', 'INTERACTS',
           'TRUSTS', 'CO_INTERACTS', 'REV', 'USER_ITEM', 'ITEM_USER',
           'USER_USER', 'ITEM_ITEM', 'SYMMETRIC', 'reverse', 'is_reverse',
           'node_offsets', 'check_edge_index', 'build_graph',
           'relation_key']
