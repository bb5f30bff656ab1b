import math

import pytest
import torch
import torch.nn.functional as F

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


def test_item_scores_are_item_embedding_products():
    torch.manual_seed(0)
    model = MF(3, 5, embedding_dim=4)
    items_w = model.embedding.weight.detach()[3:]
    query = torch.tensor([4, 0, 4])
    got = model.item_scores(query)
    assert got.shape == (3, 5) and not got.requires_grad
    assert torch.allclose(got, items_w[query] @ items_w.t())
    assert torch.allclose(got[1], torch.stack(
        [items_w[0] @ items_w[i] for i in range(5)]))
    with pytest.raises(ValueError, match=r'MF.item_scores: items must be '
                       r'\[n\] item ids'):
        model.item_scores(torch.zeros(2, 2, dtype=torch.long))


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


# Masked and shared negatives (EmbeddingRecommender.loss) #####################


def _model(reg_weight=0.0, pair_loss='bpr', temperature=1.0):
    torch.manual_seed(0)
    return MF(3, 6, embedding_dim=4, reg_weight=reg_weight,
              pair_loss=pair_loss, temperature=temperature)


def _reference(model, user, pos, neg, mask):
    """BPR mean over the valid (user, pos, neg) pairs, one at a time."""
    w = model.embedding.weight
    terms = []
    for b in range(user.numel()):
        for j in range(neg.size(1)):
            if mask[b, j]:
                e_u = w[user[b]]
                d = e_u @ w[3 + pos[b]] - e_u @ w[3 + neg[b, j]]
                terms.append(-F.logsigmoid(d))
    return torch.stack(terms).mean()


USER = torch.tensor([0, 1, 2, 1])
POS = torch.tensor([0, 1, 2, 3])
SHARED = torch.tensor([4, 5, 1, 4, 0])
MASK = torch.tensor([[1, 1, 1, 1, 0], [1, 0, 0, 1, 1], [1, 1, 1, 1, 1],
                     [0, 0, 0, 0, 0]], dtype=torch.bool)


def test_masked_and_shared_loss_equal_a_per_pair_reference():
    model = _model()
    per_pair = SHARED.expand(4, -1)
    ref = _reference(model, USER, POS, per_pair, MASK)
    masked = model.loss(PairBatch(USER, POS, per_pair, MASK))
    shared = model.loss(PairBatch(USER, POS, SHARED, MASK, shared=True))
    assert torch.allclose(masked, ref) and torch.allclose(shared, ref)
    # gradients agree with the reference too
    g_ref = torch.autograd.grad(ref, model.embedding.weight)[0]
    g = torch.autograd.grad(
        model.loss(PairBatch(USER, POS, SHARED, MASK, shared=True)),
        model.embedding.weight)[0]
    assert torch.allclose(g, g_ref)
    # no mask: the plain [B, N] path
    full = torch.ones(4, 5, dtype=torch.bool)
    assert torch.allclose(
        model.loss(PairBatch(USER, POS, SHARED, shared=True)),
        model.loss(PairBatch(USER, POS, per_pair)))
    assert torch.allclose(model.loss(PairBatch(USER, POS, per_pair)),
                          _reference(model, USER, POS, per_pair, full))
    # [B] negatives with a [B] mask
    neg = torch.tensor([5, 4, 0, 2])
    keep = torch.tensor([True, False, True, False])
    assert torch.allclose(
        model.loss(PairBatch(USER, POS, neg, keep)),
        _reference(model, USER, POS, neg.view(-1, 1), keep.view(-1, 1)))
    # all pairs masked: zero, not nan
    none = torch.zeros(4, 5, dtype=torch.bool)
    assert model.loss(PairBatch(USER, POS, SHARED, none, True)).item() == 0


def test_in_batch_negatives_reuse_the_positives():
    model = _model(reg_weight=0.5)
    mask = POS.view(1, -1) != POS.view(-1, 1)
    out = model.loss(PairBatch(USER, POS, POS, mask, shared=True))
    w = model.embedding.weight
    # the penalty counts users and positives once: no negatives of its own
    reg = 0.5 * 0.5 * (w[USER].pow(2).sum() + w[3 + POS].pow(2).sum()) / 4
    ref = _reference(model, USER, POS, POS.expand(4, -1), mask) + reg
    assert torch.allclose(out, ref)
    # shared negatives are penalised once each, not once per user
    out = model.loss(PairBatch(USER, POS, SHARED, MASK, shared=True))
    reg = 0.25 * (w[USER].pow(2).sum() + w[3 + POS].pow(2).sum() +
                  w[3 + SHARED].pow(2).sum()) / 4
    ref = _reference(model, USER, POS, SHARED.expand(4, -1), MASK) + reg
    assert torch.allclose(out, ref)


def test_softmax_pair_loss_leaves_masked_negatives_out():
    model = _model(pair_loss='softmax', temperature=0.5)
    w = model.embedding.weight
    ref = []
    for b in range(4):
        e_u = w[USER[b]]
        items = [POS[b]] + [SHARED[j] for j in range(5) if MASK[b, j]]
        logits = torch.stack([e_u @ w[3 + i] for i in items]) / 0.5
        ref.append(-F.log_softmax(logits, 0)[0])
    ref = torch.stack(ref).mean()
    out = model.loss(PairBatch(USER, POS, SHARED, MASK, shared=True))
    assert torch.allclose(out, ref)
    per_pair = model.loss(PairBatch(USER, POS, SHARED.expand(4, -1), MASK))
    assert torch.allclose(per_pair, ref)
    # one negative per pair at temperature 1: softmax == BPR
    model.temperature = 1.0
    neg = torch.tensor([5, 4, 0, 2])
    bpr = _model().loss(PairBatch(USER, POS, neg))
    assert torch.allclose(model.loss(PairBatch(USER, POS, neg)), bpr)


def test_masked_and_shared_errors():
    model = _model()
    with pytest.raises(ValueError, match=r'neg_mask must have the shape'):
        model.loss(PairBatch(USER, POS, SHARED.expand(4, -1), MASK[:, :2]))
    with pytest.raises(ValueError, match=r'MF.loss: shared negatives need'):
        model.loss(PairBatch(USER, POS, SHARED.expand(4, -1), shared=True))
    with pytest.raises(ValueError, match=r'MF.loss: shared negatives need'):
        model.loss(PairBatch(USER, POS, SHARED, MASK[:2], shared=True))
    with pytest.raises(ValueError, match="EmbeddingRecommender: unknown "
                                         "pair_loss 'hinge'"):
        EmbeddingRecommender(2, 3, pair_loss='hinge')
    with pytest.raises(ValueError, match='temperature must be positive'):
        EmbeddingRecommender(2, 3, temperature=0.0)
    soft = EmbeddingRecommender(2, 3, pair_loss='softmax', temperature=2.0)
    assert (soft.pair_loss, soft.temperature) == ('softmax', 2.0)
    model.pair_loss = 'hinge'  # set later: caught at the next loss
    with pytest.raises(ValueError, match="MF: unknown pair_loss 'hinge'"):
        model.loss(PairBatch(USER, POS, SHARED, MASK, shared=True))
