import math

import pytest
import torch
import torch.nn.functional as F

import pyg_recsys.nn.models.simgcl as simgcl_module
from pyg_recsys.data.loader import PairBatch, PairLoader
from pyg_recsys.nn.models import LightGCN, SimGCL
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.perturb import perturbed_propagate
from pyg_recsys.sampling import UniformSampler
from pyg_recsys.testing import clustered_split, fit_batch, popularity_metrics
from pyg_recsys.train import RankingEvaluator, Trainer, seed_everything

NU, NI = 4, 6
EDGES = torch.tensor([[0, 0, 1, 1, 2, 3, 3, 3],
                      [0, 1, 1, 2, 3, 4, 5, 0]])


def dense_adj():
    R = torch.zeros(NU, NI, dtype=torch.float64)
    R[EDGES[0], EDGES[1]] = 1.0
    A = torch.zeros(NU + NI, NU + NI, dtype=torch.float64)
    A[:NU, NU:], A[NU:, :NU] = R, R.t()
    inv = A.sum(1).pow(-0.5)
    return inv[:, None] * A * inv[None, :]


def dense_view(weight, num_layers, eps=0.0, noise=None):
    """SELFRec's SimGCL_Encoder.forward on a dense matrix: mean of layers
    1..K, noise added after every layer (raw draws ``noise[k]``)."""
    A = dense_adj().to(weight.dtype)
    h, layers = weight, []
    for k in range(num_layers):
        h = A @ h
        if eps:
            u = noise[k]
            h = h + torch.sign(h) * F.normalize(u, dim=-1) * eps
        layers.append(h)
    return torch.stack(layers).mean(0)


def make(**kwargs):
    torch.manual_seed(0)
    return SimGCL(NU, NI, EDGES, embedding_dim=8, **kwargs)


BATCH = PairBatch(torch.tensor([0, 3, 3, 1]), torch.tensor([1, 4, 4, 2]),
                  torch.tensor([5, 1, 2, 0]))


def test_forward_is_mean_of_layers_one_to_k():
    model = make(num_layers=3).double()
    w = model.embedding.weight
    ref = dense_view(w, 3)
    assert torch.allclose(model(), ref)
    index = torch.tensor([[0, 9, 9], [4, 0, 1]])
    assert torch.allclose(model(index), ref[index])
    assert model.alpha == (0.0, 1 / 3, 1 / 3, 1 / 3)
    # equals LightGCN with the same table and layer weights (0, 1/K, ...)
    lgn = LightGCN(NU, NI, EDGES, embedding_dim=8, num_layers=3,
                   alpha=model.alpha).double()
    lgn.embedding.weight.data.copy_(w.data)
    assert torch.allclose(lgn(), model())


def test_xavier_init_per_table():
    torch.manual_seed(0)
    model = SimGCL(300, 20, torch.tensor([[0, 299], [0, 19]]),
                   embedding_dim=16)
    w = model.embedding.weight.detach()
    users, items = w[:300], w[300:]
    bound_u, bound_i = math.sqrt(6 / 316), math.sqrt(6 / 36)
    assert users.abs().max() <= bound_u
    assert users.abs().max() > 0.9 * bound_u
    assert items.abs().max() <= bound_i
    assert items.abs().max() > 0.8 * bound_i  # items' bound is wider


@pytest.mark.parametrize('neg', [torch.tensor([5, 1, 2, 0]),
                                 torch.tensor([[5, 2], [1, 2], [1, 2],
                                               [0, 3]])])
def test_loss_matches_hand_reference_and_gradients(monkeypatch, neg):
    model = make(num_layers=2, reg_weight=0.01, cl_weight=0.3, eps=0.2,
                 cl_temperature=0.5).double()
    batch = PairBatch(BATCH.user, BATCH.pos, neg)
    gen = torch.Generator().manual_seed(0)
    noise = [torch.rand(3, NU + NI, 8, generator=gen, dtype=torch.float64)
             for _ in range(2)]
    seen = []

    def fixed(*args, **kwargs):
        seen.append(args[3])
        return perturbed_propagate(*args, noise=noise, **kwargs)

    monkeypatch.setattr(simgcl_module, 'perturbed_propagate', fixed)
    loss = model.loss(batch)
    assert seen == [(0.0, 0.2, 0.2)]

    w = model.embedding.weight.detach().clone().requires_grad_()
    E = dense_view(w, 2)
    V1 = dense_view(w, 2, 0.2, [u[1] for u in noise])
    V2 = dense_view(w, 2, 0.2, [u[2] for u in noise])
    u, p = E[batch.user], E[batch.pos + NU]
    n = E[batch.neg + NU]
    if neg.dim() == 2:
        pos = (u * p).sum(-1, keepdim=True)
        neg_s = (u.unsqueeze(1) * n).sum(-1)
    else:
        pos, neg_s = (u * p).sum(-1), (u * n).sum(-1)
    bpr = -torch.log(torch.sigmoid(pos - neg_s)).mean()
    e0 = w[torch.cat([batch.user, batch.pos + NU, batch.neg.view(-1) + NU])]
    l2 = 0.5 * e0.pow(2).sum() / 4

    def nce(a, b):  # a plain loop, one direction, cosine / tau
        total = 0.0
        for i in range(a.size(0)):
            sims = torch.stack([F.cosine_similarity(a[i], b[j], dim=0)
                                for j in range(a.size(0))]) / 0.5
            total = total - (sims[i] - torch.logsumexp(sims, 0))
        return total / a.size(0)

    users = [0, 1, 3]  # distinct users of the batch
    items = [NU + 1, NU + 2, NU + 4]  # distinct positives (not negatives)
    cl = nce(V1[users], V2[users]) + nce(V1[items], V2[items])
    ref = bpr + 0.01 * l2 + 0.3 * cl
    assert torch.allclose(loss, ref)
    loss.backward()
    ref.backward()
    assert torch.allclose(model.embedding.weight.grad, w.grad)


def test_cl_weight_zero_is_bpr_without_noise():
    model = make(cl_weight=0.0).double()
    torch.manual_seed(5)
    state = torch.get_rng_state()
    loss = model.loss(BATCH)
    assert torch.equal(torch.get_rng_state(), state)  # no noise drawn
    E = model().detach()
    u, p, n = E[BATCH.user], E[BATCH.pos + NU], E[BATCH.neg + NU]
    e0 = model.embedding.weight.detach()[
        torch.cat([BATCH.user, BATCH.pos + NU, BATCH.neg + NU])]
    ref = (-F.logsigmoid((u * p).sum(-1) - (u * n).sum(-1)).mean() +
           1e-4 * 0.5 * e0.pow(2).sum() / 4)
    assert torch.allclose(loss, ref)


def test_noise_is_seeded_by_the_global_generator():
    model = make()
    torch.manual_seed(1)
    a = model.loss(BATCH)
    b = model.loss(BATCH)
    torch.manual_seed(1)
    assert torch.equal(model.loss(BATCH), a)
    assert not torch.equal(a, b)


def test_training_lowers_loss():
    model = make()
    first, last = fit_batch(model, BATCH, steps=30)
    assert last < 0.7 * first


def test_trains_and_beats_popularity():
    split = clustered_split()
    seed_everything(0)
    model = SimGCL(split.num_users, split.num_items, split.train,
                   embedding_dim=32, num_layers=2)
    loader = PairLoader(split.train,
                        UniformSampler(split.num_items,
                                       exclude=split.csr('train')),
                        batch_size=256, seed=0)
    trainer = Trainer(model, loader, RankingEvaluator(split), lr=0.05,
                      epochs=20, eval_every=20, monitor='recall@20',
                      progress=False)
    result = trainer.fit()
    losses = [r['loss'] for r in result['epochs']]
    assert losses[-1] < 0.8 * losses[0]
    pop = popularity_metrics(split)
    assert result['test']['recall@20'] > pop['recall@20'] + 0.1


def test_eval_is_deterministic_and_cached():
    model = make().eval()
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    users = torch.arange(NU)
    first = model.score(users)
    torch.manual_seed(123)  # no noise at evaluation
    assert torch.equal(model.score(users), first)
    assert len(calls) == 1
    E = model().detach()
    assert torch.allclose(first, E[:NU] @ E[NU:].t())
    seen = CSR.from_pairs(EDGES[0], EDGES[1], NU, NI)
    _, items = model.recommend(users, 2, exclude=seen)
    for u in range(NU):
        assert not set(items[u].tolist()) & set(seen.row(u).tolist())
    # an update invalidates the cache
    model.reset_parameters()
    assert not torch.allclose(model.score(users), first)


def test_adjacency_is_not_state():
    model = make()
    assert list(model.state_dict()) == ['embedding.weight']
    model = model.double()
    assert model().dtype == torch.float64
    assert model.loss(BATCH).dtype == torch.float64


def test_repr_and_errors():
    model = make(num_layers=3, eps=0.2)
    assert repr(model) == ('SimGCL(4 users, 6 items, embedding_dim=8, '
                           'num_layers=3, eps=0.2)')
    with pytest.raises(ValueError, match='SimGCL: num_layers must be >= 1'):
        SimGCL(NU, NI, EDGES, num_layers=0)
    with pytest.raises(ValueError, match='SimGCL: cl_weight and eps must'):
        SimGCL(NU, NI, EDGES, eps=-0.1)
    with pytest.raises(ValueError, match='SimGCL: cl_weight and eps must'):
        SimGCL(NU, NI, EDGES, cl_weight=-1.0)
    with pytest.raises(ValueError,
                       match='SimGCL: cl_temperature must be > 0'):
        SimGCL(NU, NI, EDGES, cl_temperature=0.0)
    with pytest.raises(ValueError, match='SimGCL: num_users and num_items'):
        SimGCL(0, NI, EDGES)
    with pytest.raises(ValueError, match='SimGCL.loss: expected user and'):
        model.loss(PairBatch(torch.tensor([0, 1]), torch.tensor([1]),
                             torch.tensor([2, 3])))


def test_shared_and_masked_negatives_match_per_pair_loss():
    # cl_weight=0: no noise, so the two forms must agree exactly
    model = make(cl_weight=0.0, reg_weight=0.0)
    user, pos = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2])
    shared = torch.tensor([3, 1, 2])
    mask = torch.tensor([[True, False, True], [True, True, True],
                         [False, True, False]])
    got = model.loss(PairBatch(user, pos, shared, mask, True))
    per_pair = PairBatch(user, pos, shared.expand(3, -1), mask)
    assert torch.allclose(got, model.loss(per_pair))
    e_u, e_i = model.embeddings()
    s_pos = (e_u[user] * e_i[pos]).sum(-1, keepdim=True)
    s_neg = e_u[user] @ e_i[shared].t()
    ref = -F.logsigmoid(s_pos - s_neg)[mask].mean()
    assert torch.allclose(got, ref.detach(), atol=1e-6)
    with pytest.raises(ValueError, match=r'SimGCL.loss: shared negatives '
                       r'need .* neg_mask of shape \[B, N\], got .* \[2, 3\]'):
        model.loss(PairBatch(user, pos, shared, mask[:2], True))
    with pytest.raises(ValueError, match=r'SimGCL.loss: shared negatives '
                       r'need .* neg of shape \[N\]'):
        model.loss(PairBatch(user, pos, shared.view(3, 1), None, True))
