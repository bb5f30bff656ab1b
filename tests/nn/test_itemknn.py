import math

import pytest
import torch

from pyg_recsys.metrics import evaluate_ranking
from pyg_recsys.nn.models import (
    ItemKNN,
    ItemToItemRanker,
    PairwiseRanker,
    Popularity,
)
from pyg_recsys.ops.csr import CSR
from pyg_recsys.testing import clustered_split

# 5 users, 6 items; item 5 has no user; (0, 1) is repeated
EDGES = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 0],
                      [0, 1, 2, 0, 1, 1, 2, 3, 3, 4, 0, 1]])
NU, NI = 5, 6


def dense_sim(edge_index, num_users, num_items, shrink=0.0):
    """sim(a, b) = (R^T R)_ab / (sqrt(d_a d_b) + shrink), 0 on the
    diagonal and for items without users."""
    R = torch.zeros(num_users, num_items, dtype=torch.float64)
    R[edge_index[0], edge_index[1]] = 1
    C = R.t() @ R
    d = R.sum(0)
    S = C / (torch.sqrt(d.unsqueeze(1) * d.unsqueeze(0)) + shrink)
    S = torch.nan_to_num(S)
    S.fill_diagonal_(0)
    return R, S


def topk_ref(S, k):
    """Row-wise top-k of S (nonzero only; ties: lower item id)."""
    out = torch.zeros_like(S)
    for a in range(S.size(0)):
        cand = [(-S[a, b].item(), b) for b in range(S.size(1))
                if S[a, b] > 0]
        for _, b in sorted(cand)[:k]:
            out[a, b] = S[a, b]
    return out


def table(model):
    dense = torch.zeros(model.num_items, model.num_items,
                        dtype=torch.float64)
    for a in range(model.num_items):
        for b, v in zip(model.neighbors[a].tolist(),
                        model.similarity[a].tolist()):
            if b >= 0:
                dense[a, b] = v
    return dense


@pytest.mark.parametrize('max_pairs', [1 << 22, 3, 1])
def test_similarity_matches_dense_cosine(max_pairs):
    model = ItemKNN(NU, NI, EDGES, k=10, max_pairs=max_pairs)
    _, S = dense_sim(EDGES, NU, NI)
    assert torch.allclose(table(model), S, atol=1e-6)
    # rows best first, padded with -1 / 0; the item without users is empty
    assert model.neighbors[5].eq(-1).all()
    assert model.similarity[5].eq(0).all()
    assert model.neighbors[0, :2].tolist() == [1, 2]  # 2/3 > 1/sqrt(6)
    assert not (model.neighbors == torch.arange(NI).unsqueeze(1)).any()
    assert model.similarity.dtype == torch.float32


def test_top_k_truncation_and_ties():
    # items 1 and 2 tie for item 0 (one user each, same degree): lower id
    edges = torch.tensor([[0, 0, 1, 1, 2], [0, 1, 0, 2, 3]])
    model = ItemKNN(3, 4, edges, k=1)
    assert model.neighbors.tolist() == [[1], [0], [0], [-1]]
    gen = torch.Generator().manual_seed(0)
    edges = torch.stack([torch.randint(0, 30, (200,), generator=gen),
                         torch.randint(0, 25, (200,), generator=gen)])
    _, S = dense_sim(edges, 30, 25)
    for k in (1, 3, 7):
        model = ItemKNN(30, 25, edges, k=k, max_pairs=50)
        assert model.neighbors.size(1) <= k
        assert torch.allclose(table(model), topk_ref(S, k), atol=1e-6)


def test_shrink_lowers_rare_pairs():
    model = ItemKNN(NU, NI, EDGES, k=10, shrink=2.0)
    _, S = dense_sim(EDGES, NU, NI, shrink=2.0)
    assert torch.allclose(table(model), S, atol=1e-6)
    # item 4 (one user) against item 3 (two users): 1 / (sqrt(2) + 2)
    assert table(model)[4, 3].item() == pytest.approx(
        1 / (math.sqrt(2) + 2), rel=1e-6)


def test_score_matches_per_user_loop():
    gen = torch.Generator().manual_seed(1)
    edges = torch.stack([torch.randint(0, 12, (60,), generator=gen),
                         torch.randint(0, 15, (60,), generator=gen)])
    model = ItemKNN(12, 15, edges, k=4)
    S = table(model)
    users = torch.tensor([3, 0, 11, 3, 7])
    full = model.score(users)
    for row, u in enumerate(users.tolist()):
        mine = set(edges[1][edges[0] == u].tolist())
        want = [sum(S[j, i].item() for j in mine) for i in range(15)]
        assert full[row].tolist() == pytest.approx(want, abs=1e-6)
    assert torch.equal(model.score(users, torch.tensor([4, 1, 1])),
                       full[:, [4, 1, 1]])
    per_user = torch.randint(0, 15, (5, 3), generator=gen)
    assert torch.equal(model.score(users, per_user),
                       full.gather(1, per_user))
    # a user without training items scores 0 everywhere
    lonely = ItemKNN(3, 4, torch.tensor([[0, 0], [1, 2]]))
    assert lonely.score(torch.tensor([2])).eq(0).all()


def test_recommend_excludes_known_items():
    model = ItemKNN(NU, NI, EDGES, k=10)
    exclude = CSR.from_pairs(EDGES[0], EDGES[1], NU, NI)
    users = torch.arange(NU)
    scores, items = model.recommend(users, 2, exclude=exclude, batch_size=2)
    full = model.score(users)
    for u in range(NU):
        known = set(exclude.row(u).tolist())
        assert not known & set(items[u].tolist())
        free = [i for i in range(NI) if i not in known]
        best = max(full[u, i].item() for i in free)
        assert scores[u, 0].item() == pytest.approx(best)
    # user 0 has items 0, 1, 2; item 3 shares user 2 with items 1 and 2
    assert items[0, 0].item() == 3
    again = model.recommend(users, 2, exclude=exclude, batch_size=4096)
    assert torch.equal(again[1], items)


def test_item_scores_are_similarity_rows():
    model = ItemKNN(NU, NI, EDGES, k=2)
    S = table(model)
    items = torch.tensor([3, 0, 5, 0])
    rows = model.item_scores(items)
    assert rows.shape == (4, NI)
    assert torch.allclose(rows.double(), S[items])
    assert rows[torch.arange(4), items].eq(0).all()  # never itself
    assert isinstance(model, ItemToItemRanker)
    assert isinstance(model, PairwiseRanker)


def test_beats_popularity_on_clustered_data():
    split = clustered_split()
    targets, exclude = split.targets('test'), split.exclude('test')
    knn = ItemKNN(split.num_users, split.num_items, split.train, k=20)
    pop = Popularity(split.num_users, split.num_items, split.train)
    ks = (10,)
    knn_m = evaluate_ranking(knn.score, targets, exclude, ks=ks)
    pop_m = evaluate_ranking(pop.score, targets, exclude, ks=ks)
    assert knn_m['recall@10'] > pop_m['recall@10'] + 0.2


def test_to_moves_buffers_and_state_dict():
    model = ItemKNN(NU, NI, EDGES, k=3)
    names = {n for n, _ in model.named_buffers()}
    assert names == {'neighbors', 'similarity', 'user_rowptr', 'user_col'}
    assert set(model.state_dict()) == names
    double = model.double()
    assert double.similarity.dtype == torch.float64
    assert double.score(torch.tensor([0])).dtype == torch.float64
    moved = ItemKNN(NU, NI, EDGES, k=3).to('meta')
    assert {b.device.type for b in moved.buffers()} == {'meta'}


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_cuda_agrees_with_cpu():
    cpu = ItemKNN(NU, NI, EDGES, k=3)
    gpu = ItemKNN(NU, NI, EDGES.cuda(), k=3)  # built where edge_index is
    assert gpu.neighbors.is_cuda
    moved = ItemKNN(NU, NI, EDGES, k=3).to('cuda')
    users, items = torch.arange(NU), torch.tensor([0, 3])
    for model in (gpu, moved):
        assert torch.allclose(model.score(users).cpu(), cpu.score(users))
        assert torch.allclose(model.item_scores(items).cpu(),
                              cpu.item_scores(items))
        exclude = CSR.from_pairs(EDGES[0], EDGES[1], NU, NI)
        got = model.recommend(users, 2, exclude=exclude.to('cuda'))
        want = cpu.recommend(users, 2, exclude=exclude)
        assert torch.allclose(got[0].cpu(), want[0])


def test_repr_and_errors():
    assert repr(ItemKNN(NU, NI, EDGES, k=3, shrink=1.5)) == \
        'ItemKNN(5 users, 6 items, k=3, shrink=1.5)'
    with pytest.raises(ValueError, match='ItemKNN: num_users and num_items '
                       'must be positive'):
        ItemKNN(0, NI, EDGES)
    with pytest.raises(ValueError, match=r'ItemKNN: edge_index must have '
                       r'shape \[2, E\]'):
        ItemKNN(NU, NI, EDGES[0])
    with pytest.raises(ValueError, match=r'ItemKNN: item ids must lie in '
                       r'\[0, 6\), got \[0, 9\]'):
        ItemKNN(NU, NI, torch.tensor([[0, 1], [0, 9]]))
    with pytest.raises(ValueError, match=r'ItemKNN: user ids must lie in'):
        ItemKNN(NU, NI, torch.tensor([[-1], [0]]))
    with pytest.raises(ValueError, match='ItemKNN: k must be >= 1'):
        ItemKNN(NU, NI, EDGES, k=0)
    with pytest.raises(ValueError, match='ItemKNN: shrink must be >= 0'):
        ItemKNN(NU, NI, EDGES, shrink=-1.0)
    with pytest.raises(ValueError, match='ItemKNN: max_pairs must be >= 1'):
        ItemKNN(NU, NI, EDGES, max_pairs=0)
    model = ItemKNN(NU, NI, EDGES)
    with pytest.raises(ValueError, match=r'ItemKNN.score: items must be '
                       r'None, \[n\] or \[len\(users\), n\]'):
        model.score(torch.tensor([0, 1]), torch.zeros(3, 2,
                                                      dtype=torch.long))
    with pytest.raises(ValueError, match=r'ItemKNN.item_scores: items must '
                       r'be \[n\] item ids'):
        model.item_scores(torch.zeros(2, 2, dtype=torch.long))
