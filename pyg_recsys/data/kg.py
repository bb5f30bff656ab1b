r"""Knowledge graphs: triples to :class:`~torch_geometric.data.HeteroData`,
the collaborative knowledge graph, and knowledge-graph completion splits.

A knowledge graph is a set of triples :math:`(h, r, t)`: head entity
:math:`h`, relation :math:`r`, tail entity :math:`t`
(:class:`KnowledgeGraph`).  Recommendation data sets link items to
entities (an artist to its Freebase node); :func:`link_items` then makes
every linked entity *the item node itself*, so the relations of the
knowledge graph become typed edges ``('item' | 'entity', <relation>,
'item' | 'entity')`` next to the user-item interactions (one edge type per
relation; :meth:`~pyg_recsys.data.split.Split.graph` adds the reverse
ones), and the remaining entities are the ``'entity'`` nodes.

:func:`collaborative_kg` flattens such a graph into the collaborative
knowledge graph of KGAT (Wang et al., KDD 2019): one node set (users, then
items, then entities, with :func:`~pyg_recsys.schema.node_offsets`), one
``edge_index`` and an ``edge_type`` vector in which the interactions are
one more relation.

:class:`KGSplit` holds a knowledge-graph completion benchmark (train /
validation / test triples over one entity set) with the index of all known
true triples that filtered ranking needs (:meth:`KGSplit.filter_index`).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

from pyg_recsys.data.interactions import undecodable
from pyg_recsys.io import BadDataError
from pyg_recsys.ops.csr import CSR
from pyg_recsys.schema import (
    CO_INTERACTS,
    ENTITY,
    INTERACTS,
    ITEM,
    REV,
    TRUSTS,
    USER,
    USER_ITEM,
    EdgeType,
    build_graph,
    node_offsets,
    relation_key,
    reverse,
)

log = logging.getLogger(__name__)

KG_PARTS = ('train', 'val', 'test')


# ---------------------------------------------------------------------------
# Reading triples
# ---------------------------------------------------------------------------

def read_triples(open_text: Callable[[], TextIO], label: str,
                 sep: str | None = '\t', skip: int = 0
                 ) -> tuple[list[str], list[str], list[str]]:
    """Reads ``head<sep>relation<sep>tail`` lines (``sep=None``: runs of
    whitespace); blank lines are skipped, ``\\r\\n`` endings and a leading
    byte-order mark are fine.

    Args:
        open_text: Opens the file as text.
        label: Name of the file in error messages.
        sep: Field separator.
        skip: Header lines to skip.

    Returns:
        Heads, relations and tails as strings, in file order.

    Raises:
        BadDataError: Naming the file and line of a line without exactly
            three fields, of bytes that are not text in the opener's
            encoding, or of an empty file.
    """
    heads: list[str] = []
    rels: list[str] = []
    tails: list[str] = []
    try:
        with open_text() as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip('\r\n')
                if lineno == 1:
                    line = line.removeprefix('\ufeff')
                if lineno <= skip or not line.strip():
                    continue
                fields = line.split(sep)
                if sep is not None:
                    fields = [x.strip() for x in fields]
                if len(fields) != 3 or not all(fields):
                    raise BadDataError(
                        f'{label}: line {lineno}: expected "head relation '
                        f'tail" ({len(fields)} fields found: {line!r})')
                heads.append(fields[0])
                rels.append(fields[1])
                tails.append(fields[2])
    except UnicodeDecodeError as e:
        raise undecodable(label, open_text, e) from None
    if not heads:
        raise BadDataError(f'{label}: line 1: file is empty; expected one '
                           f'"head relation tail" triple per line')
    return heads, rels, tails


def _first_appearance(values: Iterable[str], table: dict[str, int]
                      ) -> list[int]:
    return [table.setdefault(v, len(table)) for v in values]


def _number(heads: Sequence[str], rels: Sequence[str], tails: Sequence[str],
            ent: dict[str, int], rel: dict[str, int]) -> Tensor:
    """``[3, T]`` ids of string triples; new entities and relations get
    the next ids of ``ent`` / ``rel`` in order of first appearance, the
    head before the tail of each triple."""
    h = np.empty(len(heads), dtype=np.int64)
    t = np.empty(len(heads), dtype=np.int64)
    for n, (a, b) in enumerate(zip(heads, tails)):
        h[n] = ent.setdefault(a, len(ent))
        t[n] = ent.setdefault(b, len(ent))
    r = np.asarray(_first_appearance(rels, rel), dtype=np.int64)
    return torch.from_numpy(np.stack([h, r, t]))


# ---------------------------------------------------------------------------
# A knowledge graph
# ---------------------------------------------------------------------------

class _Vocabulary:
    """Sizes of the entity and relation numbering of a knowledge graph
    (``entity_ids``, ``relation_names``)."""

    entity_ids: np.ndarray
    relation_names: list[str]

    @property
    def num_entities(self) -> int:
        return len(self.entity_ids)

    @property
    def num_relations(self) -> int:
        return len(self.relation_names)


@dataclass
class KnowledgeGraph(_Vocabulary):
    """Triples over contiguous entity and relation ids.

    Attributes:
        triples: ``[3, T]`` long tensor of (head, relation, tail).
        entity_ids: Original id of every entity (``[num_entities]``).
        relation_names: Original name of every relation.
        info: Provenance.
    """

    triples: Tensor
    entity_ids: np.ndarray
    relation_names: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_strings(cls, heads: Sequence[str], rels: Sequence[str],
                     tails: Sequence[str],
                     relations: Sequence[str] | None = None,
                     entities: Sequence[str] | None = None,
                     label: str = 'triples') -> KnowledgeGraph:
        """Numbers entities and relations by first appearance (head before
        tail, in the order given), after the ``entities`` / ``relations``
        given up front (e.g. the entities linked to items first).

        Raises:
            BadDataError: With ``relations`` given, for a triple naming
                another relation.
        """
        ent: dict[str, int] = {}
        rel: dict[str, int] = {}
        _first_appearance(entities or (), ent)
        _first_appearance(relations or (), rel)
        if relations is not None:
            known = set(rel)
            for n, r in enumerate(rels):
                if r not in known:
                    raise BadDataError(
                        f'{label}: triple {n + 1} names the unknown '
                        f'relation {r!r}; known relations: '
                        f'{sorted(known)[:10]}'
                        f'{" ..." if len(known) > 10 else ""}')
        triples = _number(heads, rels, tails, ent, rel)
        return cls(triples, np.asarray(list(ent), dtype=str), list(rel),
                   {'source': label})

    def relation_keys(self) -> list[str]:
        """Edge-type names of the relations
        (:func:`~pyg_recsys.schema.relation_key`), made unique."""
        return _unique_keys(self.relation_names)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_entities={self.num_entities}, '
                f'num_relations={self.num_relations}, '
                f'num_triples={self.triples.size(1)})')


_RESERVED = frozenset({INTERACTS, TRUSTS, CO_INTERACTS})


def _unique_keys(names: Sequence[str]) -> list[str]:
    """Edge-type names of relations: :func:`relation_key`, made unique and
    kept off the schema's own relations and reverse prefix (``'kg_'`` in
    front of those)."""
    keys: list[str] = []
    seen: set[str] = set()
    for name in names:
        key = relation_key(name)
        if key in _RESERVED or key.startswith(REV):
            key = 'kg_' + key
        if key in seen:
            n = 2
            while f'{key}_{n}' in seen:
                n += 1
            key = f'{key}_{n}'
        seen.add(key)
        keys.append(key)
    return keys


def link_index(kg: KnowledgeGraph, entity_of_item: Sequence[str | None],
               items: Sequence[Any], label: str = 'links') -> Tensor:
    """The entity id of every item from the entity *names* items link to.

    Args:
        kg: The knowledge graph.
        entity_of_item: Per item, the original id of its entity, or
            ``None`` for an item without one.
        items: Original item ids, for error messages.
        label: The link file, for error messages.

    Returns:
        ``[num_items]`` entity ids, ``-1`` for unlinked items (the input of
        :func:`link_items`).

    Raises:
        BadDataError: For a link to an entity that is in no triple of
            ``kg`` (a link to a missing entity).
    """
    index = {e: n for n, e in enumerate(kg.entity_ids.tolist())}
    out = torch.full((len(entity_of_item),), -1, dtype=torch.long)
    for i, entity in enumerate(entity_of_item):
        if entity is None:
            continue
        if entity not in index:
            raise BadDataError(f'{label}: item {items[i]} links to entity '
                               f'{entity!r}, which is in no triple of the '
                               f'knowledge graph; fix the link file')
        out[i] = index[entity]
    return out


@dataclass
class ItemKG:
    """A knowledge graph whose item entities are the items (see
    :func:`link_items`).

    Attributes:
        edges: Edge type -> ``[2, E]`` local ids, one edge type per
            relation and node-type pair, no reverse types.
        num_entities: Number of ``'entity'`` nodes (entities not linked to
            an item).
        entity_ids: Original ids of the ``'entity'`` nodes.
        item_entity_ids: Original entity id of every item (``''`` where an
            item has none).
        relations: Edge-type name -> original relation name.
    """

    edges: dict[EdgeType, Tensor]
    num_entities: int
    entity_ids: np.ndarray
    item_entity_ids: np.ndarray
    relations: dict[str, str]

    @property
    def num_triples(self) -> int:
        return sum(int(e.size(1)) for e in self.edges.values())


def link_items(kg: KnowledgeGraph, item_entity: Tensor,
               label: str = 'link_items') -> ItemKG:
    """Merges the entities linked to items into the item nodes.

    Entity ``item_entity[i]`` becomes item ``i``; the other entities become
    ``'entity'`` nodes ``0 .. n-1`` in increasing entity id; triple
    :math:`(h, r, t)` becomes an edge of type ``(type(h), key(r),
    type(t))`` with :func:`~pyg_recsys.schema.relation_key` names.

    Args:
        kg: The knowledge graph.
        item_entity: ``[num_items]`` entity id of every item, ``-1`` for an
            item without one.
        label: Name of the link source in error messages.

    Raises:
        BadDataError: For a link to an entity id outside ``kg`` (a link to a
            missing entity), or two items linked to one entity.
    """
    item_entity = torch.as_tensor(item_entity).long().view(-1)
    num_items = item_entity.numel()
    linked = item_entity >= 0
    ents = item_entity[linked]
    if ents.numel() and int(ents.max()) >= kg.num_entities:
        bad = int(torch.nonzero(item_entity >= kg.num_entities)[0])
        raise BadDataError(f'{label}: item {bad} links to entity '
                           f'{int(item_entity[bad])}, which is in no triple '
                           f'of the knowledge graph ({kg.num_entities} '
                           f'entities); fix the link file')
    uniq, count = torch.unique(ents, return_counts=True)
    if bool((count > 1).any()):
        e = int(uniq[count > 1][0])
        items = torch.nonzero(item_entity == e).view(-1).tolist()
        name = str(kg.entity_ids[e])
        raise BadDataError(f'{label}: items {items} all link to entity '
                           f'{name!r}; every entity may stand for one item '
                           f'only')
    # node type (0 item, 1 entity) and local id of every entity
    is_item = torch.zeros(kg.num_entities, dtype=torch.bool)
    is_item[ents] = True
    local = torch.empty(kg.num_entities, dtype=torch.long)
    local[ents] = torch.nonzero(linked).view(-1)
    others = torch.nonzero(~is_item).view(-1)
    local[others] = torch.arange(others.numel())
    keys = kg.relation_keys()
    h, r, t = kg.triples
    edges: dict[EdgeType, Tensor] = {}
    for rel in torch.unique(r).tolist():
        sel = r == rel
        for h_item in (True, False):
            for t_item in (True, False):
                m = sel & (is_item[h] == h_item) & (is_item[t] == t_item)
                if not bool(m.any()):
                    continue
                etype = (ITEM if h_item else ENTITY, keys[rel],
                         ITEM if t_item else ENTITY)
                edges[etype] = torch.stack([local[h[m]], local[t[m]]])
    item_ids = np.full(num_items, '', dtype=object)
    item_ids[linked.numpy()] = kg.entity_ids[ents.numpy()]
    return ItemKG(edges, int(others.numel()),
                  kg.entity_ids[others.numpy()], item_ids.astype(str),
                  dict(zip(keys, kg.relation_names)))


def item_entity_triples(side: Mapping[EdgeType, Tensor], num_items: int
                        ) -> tuple[Tensor, list[str]]:
    """The knowledge graph of a split's side relations as triples over
    one entity numbering: items ``0 .. num_items - 1``, then the
    ``'entity'`` nodes (``num_items + e``); one relation id per relation
    name (the edge types of a relation between items and entities share
    it).  Edge types touching other node types (users, trust) are left
    out; reverse types are not in ``side``.

    Returns:
        ``[3, T]`` (head, relation, tail) and the relation names, in order
        of first appearance.

    Raises:
        ValueError: Where ``side`` has no item-entity relation.
    """
    offset = {ITEM: 0, ENTITY: num_items}
    names: dict[str, int] = {}
    parts = []
    for (src, rel, dst), ei in side.items():
        if src not in offset or dst not in offset:
            continue
        r = names.setdefault(rel, len(names))
        parts.append(torch.stack([ei[0] + offset[src],
                                  torch.full_like(ei[0], r),
                                  ei[1] + offset[dst]]))
    if not parts:
        raise ValueError('item_entity_triples: the split has no knowledge '
                         'graph (no side relation between items and '
                         'entities); use a data set with one, e.g. '
                         'lastfm-kg or movielens-100k-kg')
    return torch.cat(parts, 1), list(names)


def kg_graph(kg: KnowledgeGraph) -> HeteroData:
    """The knowledge graph as a :class:`HeteroData` over ``'entity'``
    nodes, one edge type ``('entity', key(r), 'entity')`` per relation and
    its reverse, original entity ids in ``data.orig_ids``."""
    keys = kg.relation_keys()
    h, r, t = kg.triples
    edges = {(ENTITY, keys[rel], ENTITY): torch.stack([h[r == rel],
                                                       t[r == rel]])
             for rel in torch.unique(r).tolist()}
    return build_graph({ENTITY: kg.num_entities}, edges,
                       ids={ENTITY: kg.entity_ids})


def collaborative_kg(graph: HeteroData,
                     node_types: Sequence[str] = (USER, ITEM, ENTITY),
                     relation_first: EdgeType = USER_ITEM) -> Data:
    r"""The collaborative knowledge graph of KGAT: one node set and one
    edge list with a relation id per edge.

    Node :math:`v` of type :math:`\tau` gets the global id
    ``offsets[tau] + v`` (users, then items, then entities).  Relation ids
    number the edge types of ``graph`` (reverse types included, so a model
    sees both directions with their own relations, as KGAT's code adds
    inverse relations), with ``relation_first`` (the interactions) as
    relation 0.

    Args:
        graph: E.g. :meth:`~pyg_recsys.data.split.Split.graph` of a data
            set with a knowledge graph (training interactions only).
        node_types: The node types to keep, in the order of global ids
            (types absent from ``graph`` are skipped).
        relation_first: The edge type numbered 0.

    Returns:
        A :class:`~torch_geometric.data.Data` with ``edge_index`` ``[2, E]``
        (global ids), ``edge_type`` ``[E]``, ``node_type`` ``[N]`` (index
        into ``node_types``), ``num_nodes``, and the plain attributes
        ``offsets`` (node type -> first id), ``relations`` (list of edge
        types, position = relation id) and ``node_types``.
    """
    types = [t for t in node_types if t in graph.node_types]
    counts = {t: graph[t].num_nodes for t in types}
    offsets = node_offsets(counts)
    rels = [e for e in graph.edge_types
            if e[0] in counts and e[2] in counts]
    if relation_first in rels:
        rels.remove(relation_first)
        rels.insert(0, relation_first)
        rev = reverse(relation_first)
        if rev in rels:
            rels.remove(rev)
            rels.insert(1, rev)
    index, kind = [], []
    for rel_id, etype in enumerate(rels):
        ei = graph[etype].edge_index
        index.append(torch.stack([ei[0] + offsets[etype[0]],
                                  ei[1] + offsets[etype[2]]]))
        kind.append(torch.full((ei.size(1),), rel_id, dtype=torch.long))
    node_type = torch.cat([torch.full((n,), i, dtype=torch.long)
                           for i, n in enumerate(counts.values())])
    data = Data(edge_index=torch.cat(index, 1) if index else
                torch.zeros(2, 0, dtype=torch.long),
                edge_type=torch.cat(kind) if kind else
                torch.zeros(0, dtype=torch.long),
                node_type=node_type, num_nodes=sum(counts.values()))
    data.offsets = offsets
    data.relations = rels
    data.node_types = types
    return data


# ---------------------------------------------------------------------------
# Knowledge-graph completion splits
# ---------------------------------------------------------------------------

@dataclass
class KGSplit(_Vocabulary):
    """A knowledge-graph completion benchmark: training, validation and
    test triples over one entity and relation numbering.

    Attributes:
        train: ``[3, T_train]`` (head, relation, tail).
        val: ``[3, T_val]``.
        test: ``[3, T_test]``.
        entity_ids: Original entity ids.
        relation_names: Original relation names.
        info: Provenance and counts (triples whose head or tail never
            occurs in training: ``val_unseen_entity_triples`` /
            ``test_unseen_entity_triples``; they stay in the parts and are
            ranked like the others).
    """

    train: Tensor
    val: Tensor
    test: Tensor
    entity_ids: np.ndarray
    relation_names: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def part(self, name: str) -> Tensor:
        if name not in KG_PARTS:
            raise ValueError(f"KGSplit.part: unknown part '{name}'; use one "
                             f'of {KG_PARTS}')
        return getattr(self, name)

    def known(self) -> Tensor:
        """``[3, T]`` every known true triple (train, val and test)."""
        return torch.cat([self.train, self.val, self.test], 1)

    def filter_index(self) -> tuple[CSR, CSR]:
        r"""The true triples that filtered ranking masks, as two CSR
        indexes over all known triples (train, validation and test):

        * ``tails``: row ``h * R + r`` holds every :math:`t` with
          :math:`(h, r, t)` known (for ranking tails);
        * ``heads``: row ``t * R + r`` holds every :math:`h` with
          :math:`(h, r, t)` known (for ranking heads).

        Cached; built once in a few tensor operations.
        """
        cache = self.__dict__.setdefault('_filter', None)
        if cache is None:
            h, r, t = self.known()
            R, E = self.num_relations, self.num_entities
            cache = (CSR.from_pairs(h * R + r, t, E * R, E),
                     CSR.from_pairs(t * R + r, h, E * R, E))
            self.__dict__['_filter'] = cache
        return cache

    def graph(self) -> HeteroData:
        """The training triples as a :class:`HeteroData` (see
        :func:`kg_graph`); validation and test triples are not in it."""
        return kg_graph(KnowledgeGraph(self.train, self.entity_ids,
                                       self.relation_names))

    def meta(self) -> dict[str, Any]:
        return dict(kind='kg', num_entities=self.num_entities,
                    num_relations=self.num_relations,
                    num_train=int(self.train.size(1)),
                    num_val=int(self.val.size(1)),
                    num_test=int(self.test.size(1)), **self.info)

    def to_dict(self) -> dict[str, Any]:
        return dict(train=self.train, val=self.val, test=self.test,
                    entity_ids=np.asarray(self.entity_ids).tolist(),
                    relation_names=list(self.relation_names),
                    info=self.info)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KGSplit:
        d = dict(d)
        d['entity_ids'] = np.asarray(d['entity_ids'], dtype=str)
        return cls(**d)


def kg_split(parts: Mapping[str, tuple[list[str], list[str], list[str]]],
             label: str = 'kg_split',
             where: Callable[[str, int], str] | None = None) -> KGSplit:
    """A :class:`KGSplit` from string triples per part (``'train'``,
    ``'val'``, ``'test'``).  Entities and relations are numbered by first
    appearance over train, validation and test, head before tail (the
    numbering of PyG's ``FB15k_237``); triples repeated within a part are
    kept once (counted in ``info``).

    Args:
        parts: Part name -> (heads, relations, tails).
        label: Name of the source in messages and ``info``.
        where: Locates triple ``n`` (0-based, as given) of a part for error
            messages, e.g. ``'train.txt: line 7'``; default
            ``'<label>: <part> triple <n + 1>'``.

    Raises:
        BadDataError: For a missing part, or a validation or test triple
            whose relation no training triple has.
    """
    missing = [p for p in KG_PARTS if p not in parts]
    if missing:
        raise BadDataError(f'{label}: missing parts {missing}')
    ent: dict[str, int] = {}
    rel: dict[str, int] = {}
    out: dict[str, Tensor] = {}
    info: dict[str, Any] = {'source': label}
    for name in KG_PARTS:
        out[name] = _number(*parts[name], ent, rel)
    E, R = len(ent), len(rel)
    for name, triples in out.items():
        key = (triples[0] * R + triples[1]) * E + triples[2]
        uniq, first = np.unique(key.numpy(), return_index=True)
        info[f'{name}_duplicates'] = int(key.numel() - uniq.size)
        out[name] = triples[:, np.sort(first)]
    seen = torch.zeros(E, dtype=torch.bool)
    seen[out['train'][0]] = True
    seen[out['train'][2]] = True
    rel_seen = torch.zeros(R, dtype=torch.bool)
    rel_seen[out['train'][1]] = True
    names = list(rel)
    for name in ('val', 'test'):
        h, r, t = out[name]
        info[f'{name}_unseen_entity_triples'] = int(
            (~(seen[h] & seen[t])).sum())
        unseen = torch.nonzero(~rel_seen[r]).view(-1)
        if unseen.numel():
            bad = names[int(r[int(unseen[0])])]
            n = parts[name][1].index(bad)  # position as given, not deduped
            at = (where(name, n) if where is not None
                  else f'{label}: {name} triple {n + 1}')
            raise BadDataError(
                f'{at}: the triple names the relation {bad!r}, which no '
                f'training triple has; a model cannot learn it (remove '
                f'the triple or add training triples of the relation)')
    return KGSplit(out['train'], out['val'], out['test'],
                   np.asarray(list(ent), dtype=str), list(rel), info)


__all__ = ['KnowledgeGraph', 'ItemKG', 'KGSplit', 'read_triples',
           'link_index', 'link_items', 'kg_graph', 'collaborative_kg',
           'item_entity_triples',
           'kg_split', 'KG_PARTS']
