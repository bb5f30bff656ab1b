import io

import pytest
import torch

from pyg_recsys.data.kg import (
    KnowledgeGraph,
    collaborative_kg,
    kg_split,
    link_index,
    link_items,
    read_triples,
)
from pyg_recsys.data.split import Split
from pyg_recsys.schema import ENTITY, ITEM, USER, USER_ITEM


def opener(text):
    return lambda: io.StringIO(text)


def test_read_triples_crlf_blank_lines_and_errors():
    h, r, t = read_triples(opener('a\tr1\tb\r\n\r\nb\tr2\tc\r\n'), 'f.txt')
    assert (h, r, t) == (['a', 'b'], ['r1', 'r2'], ['b', 'c'])
    with pytest.raises(ValueError, match=r'f.txt: line 2: expected "head '
                       r'relation tail" \(2 fields found'):
        read_triples(opener('a\tr\tb\na\tr\n'), 'f.txt')
    with pytest.raises(ValueError, match=r'f.txt: line 1: file is empty'):
        read_triples(opener('\n\n'), 'f.txt')
    with pytest.raises(ValueError, match='line 1: expected'):
        read_triples(opener('a\t\tb\n'), 'f.txt')  # empty relation
    assert read_triples(opener('x y z\n'), 'w', sep=None) == (
        ['x'], ['y'], ['z'])


def test_knowledge_graph_numbering_and_unknown_relation():
    kg = KnowledgeGraph.from_strings(['a', 'c', 'b'], ['r', 's', 'r'],
                                     ['b', 'a', 'd'], entities=['d'])
    assert kg.entity_ids.tolist() == ['d', 'a', 'b', 'c']
    assert kg.relation_names == ['r', 's']
    assert kg.triples.tolist() == [[1, 3, 2], [0, 1, 0], [2, 1, 0]]
    with pytest.raises(ValueError, match=r"kg.txt: triple 2 names the "
                       r"unknown relation 's'"):
        KnowledgeGraph.from_strings(['a', 'c'], ['r', 's'], ['b', 'a'],
                                    relations=['r'], label='kg.txt')


def small_kg():
    # entities: i0, i1 (items), e0, e1; relations 'film.actor', '/genre'
    return KnowledgeGraph.from_strings(
        ['i0', 'i1', 'e0', 'i0', 'i0'],
        ['film.actor', 'film.actor', '/genre', '/genre', 'film.actor'],
        ['e0', 'e0', 'e1', 'i1', 'e1'])


def test_link_items_merges_item_entities():
    kg = small_kg()
    # three items: item 0 -> 'i1', item 1 none, item 2 -> 'i0'
    item_entity = link_index(kg, ['i1', None, 'i0'], ['a', 'b', 'c'])
    assert item_entity.tolist() == [2, -1, 0]
    g = link_items(kg, item_entity)
    assert g.num_entities == 2 and g.entity_ids.tolist() == ['e0', 'e1']
    assert g.item_entity_ids.tolist() == ['i1', '', 'i0']
    assert g.relations == {'film_actor': 'film.actor', 'genre': '/genre'}
    edges = {k: v.tolist() for k, v in g.edges.items()}
    assert edges == {
        (ITEM, 'film_actor', ENTITY): [[2, 0, 2], [0, 0, 1]],
        (ENTITY, 'genre', ENTITY): [[0], [1]],
        (ITEM, 'genre', ITEM): [[2], [0]],
    }
    assert g.num_triples == kg.triples.size(1)


def test_link_errors():
    kg = small_kg()
    with pytest.raises(ValueError, match=r"links.txt: item b links to "
                       r"entity 'zz', which is in no triple"):
        link_index(kg, ['i0', 'zz'], ['a', 'b'], label='links.txt')
    with pytest.raises(ValueError, match=r'items \[0, 1\] all link to '
                       r"entity 'i0'"):
        link_items(kg, torch.tensor([0, 0]))
    with pytest.raises(ValueError, match=r'item 1 links to entity 9, which '
                       r'is in no triple'):
        link_items(kg, torch.tensor([0, 9]))


def test_collaborative_kg_offsets_and_relations():
    kg = small_kg()
    g = link_items(kg, torch.tensor([0, 2]))  # item 0 = i0, item 1 = i1
    split = Split(2, 2, torch.tensor([[0, 1], [1, 0]]),
                  torch.zeros(2, 0, dtype=torch.long),
                  torch.zeros(2, 0, dtype=torch.long), 'fixed',
                  num_nodes={ENTITY: g.num_entities}, side=g.edges)
    ckg = collaborative_kg(split.graph())
    assert ckg.offsets == {USER: 0, ITEM: 2, ENTITY: 4}
    assert ckg.num_nodes == 6 and ckg.node_type.tolist() == [0, 0, 1, 1,
                                                             2, 2]
    assert ckg.relations[0] == USER_ITEM
    assert ckg.relations[1] == ('item', 'rev_interacts', 'user')
    assert len(ckg.relations) == 2 + 2 * len(g.edges)
    # every typed edge appears once with its relation id, in global ids
    for rel, etype in enumerate(ckg.relations):
        ei = split.graph()[etype].edge_index
        got = ckg.edge_index[:, ckg.edge_type == rel]
        want = torch.stack([ei[0] + ckg.offsets[etype[0]],
                            ei[1] + ckg.offsets[etype[2]]])
        assert torch.equal(got, want)
    # user 0 interacts with item 1 (global 3)
    assert ckg.edge_index[:, ckg.edge_type == 0].tolist() == [[0, 1], [3, 2]]


def parts(**kw):
    base = dict(train=(['a', 'b', 'c'], ['r', 'r', 's'], ['b', 'c', 'a']),
                val=(['a'], ['s'], ['c']),
                test=(['d', 'a', 'a'], ['r', 'r', 'r'], ['a', 'c', 'c']))
    base.update(kw)
    return base


def test_kg_split_numbering_dedup_and_unseen_counts():
    s = kg_split(parts(), label='toy')
    assert s.entity_ids.tolist() == ['a', 'b', 'c', 'd']
    assert s.relation_names == ['r', 's']
    assert s.test.tolist() == [[3, 0], [0, 0], [0, 2]]  # repeat dropped
    assert s.info['test_duplicates'] == 1
    assert s.info['test_unseen_entity_triples'] == 1  # d
    assert s.info['val_unseen_entity_triples'] == 0
    g = s.graph()
    assert g[ENTITY].num_nodes == 4
    assert g[ENTITY, 'r', ENTITY].edge_index.size(1) == 2  # train only
    back = type(s).from_dict(s.to_dict())
    assert torch.equal(back.test, s.test)
    assert back.entity_ids.tolist() == s.entity_ids.tolist()


def test_kg_split_filter_index_matches_loop():
    s = kg_split(parts(), label='toy')
    tails, heads = s.filter_index()
    R, E = s.num_relations, s.num_entities
    known = {tuple(t) for t in s.known().t().tolist()}
    for h in range(E):
        for r in range(R):
            want = sorted(t for (a, b, t) in known if (a, b) == (h, r))
            assert tails.row(h * R + r).tolist() == want
            want = sorted(a for (a, b, t) in known if (b, t) == (r, h))
            assert heads.row(h * R + r).tolist() == want


def test_kg_split_rejects_relation_unseen_in_training():
    with pytest.raises(ValueError, match=r"toy: test triple 1: the triple "
                       r"names the relation 'q', which no training triple "
                       r'has'):
        kg_split(parts(test=(['a'], ['q'], ['b'])), label='toy')
    # the position as given, before duplicates are dropped
    test = (['a', 'a', 'b'], ['r', 'r', 'q'], ['b', 'b', 'a'])
    with pytest.raises(ValueError, match=r"toy: test triple 3: the triple "
                       r"names the relation 'q'"):
        kg_split(parts(test=test), label='toy')
    with pytest.raises(ValueError, match=r"here 2: the triple names the "
                       r"relation 'q'"):
        kg_split(parts(test=test), where=lambda part, n: f'here {n}')
    with pytest.raises(ValueError, match=r"missing parts \['val'\]"):
        kg_split({'train': parts()['train'], 'test': parts()['test']})


def test_relation_keys_stay_off_the_schema_names():
    kg = KnowledgeGraph.from_strings(['a', 'b', 'c', 'a'],
                                     ['interacts', 'rev_x', 'co.interacts',
                                      'trusts'], ['b', 'c', 'a', 'c'])
    assert kg.relation_keys() == ['kg_interacts', 'kg_rev_x',
                                  'kg_co_interacts', 'kg_trusts']
