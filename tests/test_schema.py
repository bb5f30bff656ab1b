import numpy as np
import pytest
import torch

from pyg_recsys.schema import (
    CO_INTERACTS,
    ITEM,
    ITEM_ITEM,
    ITEM_USER,
    USER,
    USER_ITEM,
    USER_USER,
    build_graph,
    is_reverse,
    node_offsets,
    relation_key,
    reverse,
)


def test_names_and_reverse():
    assert USER_ITEM == ('user', 'interacts', 'item')
    assert ITEM_USER == ('item', 'rev_interacts', 'user')
    assert reverse(USER_ITEM) == ITEM_USER and reverse(ITEM_USER) == USER_ITEM
    assert reverse(USER_USER) == ('user', 'rev_trusts', 'user')
    assert is_reverse(ITEM_USER) and not is_reverse(USER_ITEM)
    assert node_offsets({'user': 3, 'item': 4, 'entity': 2}) == {
        'user': 0, 'item': 3, 'entity': 7}


@pytest.mark.parametrize('name,key', [
    ('/film/film/genre', 'film_film_genre'), ('_hypernym', 'hypernym'),
    ('music.artist.origin', 'music_artist_origin'), ('a__b', 'a_b'),
    ('term6', 'term6'), ('...', 'relation')])
def test_relation_key_is_safe_for_pyg(name, key):
    assert relation_key(name) == key
    assert '__' not in reverse(('entity', relation_key(name), 'entity'))[1]


def test_build_graph_adds_reverse_edges_attrs_and_ids():
    ui = torch.tensor([[0, 1, 1], [2, 0, 1]])
    trust = torch.tensor([[0], [1]])
    co = torch.tensor([[0, 1], [1, 0]])
    data = build_graph(
        {USER: 2, ITEM: 3}, {USER_ITEM: ui, USER_USER: trust,
                             ITEM_ITEM: co},
        {USER_ITEM: {'rating': torch.tensor([1., 2., 3.])}},
        x={ITEM: torch.eye(3)}, ids={USER: ['a', 'b'], ITEM: [7, 8, 9]})
    assert torch.equal(data[ITEM_USER].edge_index, ui.flip(0))
    assert data[ITEM_USER].rating.tolist() == [1., 2., 3.]
    assert torch.equal(data['user', 'rev_trusts', 'user'].edge_index,
                       trust.flip(0))
    # a symmetric relation has no reverse type
    assert ('item', 'rev_' + CO_INTERACTS, 'item') not in data.edge_types
    assert data[ITEM].x.shape == (3, 3) and data[USER].num_nodes == 2
    assert data.orig_ids['user'].tolist() == ['a', 'b']
    assert isinstance(data.orig_ids['item'], np.ndarray)
    # a reverse given explicitly is kept as given
    given = build_graph({USER: 2, ITEM: 3},
                        {USER_ITEM: ui, ITEM_USER: ui[:, :1].flip(0)})
    assert given[ITEM_USER].edge_index.size(1) == 1


def test_build_graph_errors():
    ui = torch.tensor([[0], [3]])
    with pytest.raises(ValueError, match=r"build_graph: \('user', "
                       r"'interacts', 'item'\) item ids must lie in "
                       r"\[0, 3\), got \[3, 3\]"):
        build_graph({USER: 1, ITEM: 3}, {USER_ITEM: ui})
    with pytest.raises(ValueError, match=r"names node type 'entity', which "
                       r"has no nodes"):
        build_graph({USER: 1, ITEM: 3},
                    {('item', 'r', 'entity'): torch.zeros(2, 1).long()})
    with pytest.raises(ValueError, match=r'must be a \[2, E\] integer'):
        build_graph({USER: 1, ITEM: 3}, {USER_ITEM: torch.zeros(3, 1)})
    with pytest.raises(ValueError, match='item features have 2 rows for 3'):
        build_graph({USER: 1, ITEM: 3}, {}, x={ITEM: torch.zeros(2, 1)})
    with pytest.raises(ValueError, match="features for unknown node type"):
        build_graph({USER: 1}, {}, x={ITEM: torch.zeros(2, 1)})
