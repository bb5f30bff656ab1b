import pytest
import torch

from pyg_recsys.nn.models import Popularity
from pyg_recsys.ops.csr import CSR
from pyg_recsys.testing import clustered_split, popularity_metrics


def test_popularity_scores_counts_and_excludes():
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 2], [2, 2, 0, 2, 0, 1]])
    model = Popularity(3, 4, edge_index)
    assert model.count.tolist() == [2.0, 1.0, 3.0, 0.0]
    assert model.score(torch.tensor([0, 1])).tolist() == [[2, 1, 3, 0]] * 2
    assert model.score(torch.tensor([0]), torch.tensor([3, 2])).tolist() \
        == [[0, 3]]
    exclude = CSR.from_pairs(edge_index[0], edge_index[1], 3, 4)
    _, items = model.recommend(torch.tensor([0, 2]), 2, exclude=exclude)
    # user 0 knows item 2, user 2 knows items 0, 1, 2
    assert items.tolist() == [[0, 1], [3, -1]]


def test_popularity_item_scores_repeat_the_counts():
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 2], [2, 2, 0, 2, 0, 1]])
    model = Popularity(3, 4, edge_index)
    got = model.item_scores(torch.tensor([1, 3, 1]))
    assert got.tolist() == [[2, 1, 3, 0]] * 3
    got[0, 0] = -1  # a real copy per query: callers mask in place
    assert model.count[0].item() == 2
    assert model.item_scores(torch.tensor([], dtype=torch.long)).shape \
        == (0, 4)
    with pytest.raises(ValueError, match=r'Popularity.item_scores: items '
                       r'must be \[n\] item ids'):
        model.item_scores(torch.zeros(1, 2, dtype=torch.long))


def test_popularity_rejects_bad_ids():
    with pytest.raises(ValueError, match='Popularity: item ids'):
        Popularity(2, 2, torch.tensor([[0], [5]]))
    with pytest.raises(ValueError, match=r'Popularity: edge_index must'):
        Popularity(2, 2, torch.tensor([0, 1]))


def test_clustered_split_is_hard_for_popularity():
    split = clustered_split()
    split.audit()
    pop = popularity_metrics(split)
    # flat popularity: the baseline is near chance (20 of 60 items)
    assert pop['recall@20'] < 0.5
    assert set(pop) >= {'recall@20', 'ndcg@20'}
