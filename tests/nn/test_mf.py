import math

import pytest
import torch

from pyg_recsys.data.loader import PairBatch
from pyg_recsys.nn.models import MF, EmbeddingRecommender
from pyg_recsys.ops.csr import CSR
from pyg_recsys.testing import fit_batch


def test_loss_matches_hand_written_reference():
    model = MF(2, 3, embedding_dim=2, reg_weight=0.5)
    with torch.no_grad():
        model.embedding.weight.copy_(torch.tensor(
            [[1., 0.], [0., 1.],  # users
             [1., 1.], [2., 0.], [0., -1.]]))  # items
    batch = PairBatch(torch.tensor([0, 1]), torch.tensor([0, 1]),
                      torch.tensor([2, 0]))
    # u0.i0 = 1, u0.i2 = 0; u1.i1 = 0, u1.i0 = 1
    bpr = -(math.log(1 / (1 + math.exp(-1))) +
            math.log(1 / (1 + math.exp(1)))) / 2
    sq = (1 + 2 + 1) + (1 + 4 + 2)  # users, positives, negatives
    expected = bpr + 0.5 * 0.5 * sq / 2
    assert model.loss(batch).item() == pytest.approx(expected)
    # [B, N] negatives: the BPR mean over all pairs, every negative penalised
    batch2 = PairBatch(torch.tensor([0]), torch.tensor([0]),
                       torch.tensor([[1, 2]]))
    s = [1 - 2, 1 - 0]
    bpr2 = -sum(math.log(1 / (1 + math.exp(-d))) for d in s) / 2
    sq2 = 1 + 2 + 4 + 1
    assert model.loss(batch2).item() == pytest.approx(bpr2 + 0.25 * sq2)


def test_training_lowers_loss():
    torch.manual_seed(0)
    model = MF(4, 6, embedding_dim=8)
    batch = PairBatch(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3]),
                      torch.tensor([5, 4, 5, 4]))
    first, last = fit_batch(model, batch, steps=20)
    assert last < 0.5 * first


def test_score_shapes_and_values():
    torch.manual_seed(0)
    model = MF(3, 5, embedding_dim=4)
    w = model.embedding.weight.detach()
    users = torch.tensor([2, 0])
    full = model.score(users)
    assert full.shape == (2, 5)
    assert torch.allclose(full, w[users] @ w[3:].t())
    some = model.score(users, torch.tensor([4, 1, 1]))
    assert torch.allclose(some, full[:, [4, 1, 1]])
    per_user = model.score(users, torch.tensor([[0, 1], [2, 3]]))
    assert torch.allclose(per_user, torch.stack([full[0, :2], full[1, 2:4]]))
    assert not full.requires_grad
    with pytest.raises(ValueError, match=r'items must be None, \[n\]'):
        model.score(users, torch.zeros(3, 2, dtype=torch.long))


def test_recommend_excludes_seen_items():
    torch.manual_seed(0)
    model = MF(3, 5, embedding_dim=4).eval()
    seen = CSR.from_pairs(torch.tensor([0, 0, 2]), torch.tensor([1, 3, 0]),
                          3, 5)
    users = torch.arange(3)
    values, items = model.recommend(users, 3, exclude=seen)
    full = model.score(users)
    for u in range(3):
        allowed = [i for i in range(5) if i not in seen.row(u).tolist()]
        ref = sorted(allowed, key=lambda i: -full[u, i].item())[:3]
        assert items[u].tolist() == ref
        assert torch.allclose(values[u], full[u, ref])
    # a user with only two unseen items gets padding
    values, items = model.recommend(torch.tensor([0]), 4, exclude=seen)
    assert items[0, 3].item() == -1
    assert values[0, 3].item() == float('-inf')


def test_reset_parameters_and_repr():
    torch.manual_seed(0)
    model = MF(300, 200, embedding_dim=16)
    std = model.embedding.weight.std().item()
    assert 0.09 < std < 0.11  # N(0, 0.1^2), as the LightGCN code
    before = model.embedding.weight.detach().clone()
    model.reset_parameters()
    assert not torch.equal(before, model.embedding.weight)
    assert repr(model) == 'MF(300 users, 200 items, embedding_dim=16)'
    assert torch.equal(model(torch.tensor([3])), model.embedding.weight[[3]])
    assert model().shape == (500, 16)


def test_errors():
    with pytest.raises(ValueError, match='MF: num_users and num_items'):
        MF(0, 3)
    with pytest.raises(ValueError, match='MF: embedding_dim must be'):
        MF(2, 3, embedding_dim=0)
    with pytest.raises(ValueError, match='MF: reg_weight must be >= 0'):
        MF(2, 3, reg_weight=-1.0)
    model = MF(2, 3)
    bad = PairBatch(torch.tensor([0, 1]), torch.tensor([0]),
                    torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r'MF.loss: expected user and pos'):
        model.loss(bad)
    with pytest.raises(NotImplementedError, match='must implement forward'):
        EmbeddingRecommender(2, 3)()
