import pytest
import torch
import torch.nn.functional as F

from pyg_recsys.data.loader import PairBatch, PairLoader
from pyg_recsys.nn.models import NGCF
from pyg_recsys.ops.adj import NormAdj
from pyg_recsys.ops.csr import CSR
from pyg_recsys.sampling import UniformSampler
from pyg_recsys.testing import clustered_split, fit_batch, popularity_metrics
from pyg_recsys.train import RankingEvaluator, Trainer, seed_everything

NU, NI = 4, 6
EDGES = torch.tensor([[0, 0, 1, 1, 2, 3, 3, 3],
                      [0, 1, 1, 2, 3, 4, 5, 0]])


def dense_laplacian():
    R = torch.zeros(NU, NI, dtype=torch.float64)
    R[EDGES[0], EDGES[1]] = 1.0
    A = torch.zeros(NU + NI, NU + NI, dtype=torch.float64)
    A[:NU, NU:], A[NU:, :NU] = R, R.t()
    inv = A.sum(1).pow(-0.5)
    return inv[:, None] * A * inv[None, :]


def dense_final(weight, layers, normalize=True):
    """The NGCF stack in matrix form: layers are (W1, b1, W2, b2)."""
    L = dense_laplacian().to(weight.dtype)
    h, outs = weight, [weight]
    for W1, b1, W2, b2 in layers:
        side = L @ h
        h = F.leaky_relu((side + h) @ W1 + b1 + (side * h) @ W2 + b2, 0.2)
        outs.append(F.normalize(h, dim=-1) if normalize else h)
    return torch.cat(outs, dim=-1)


def layer_params(model):
    return [(c.lin_gc.weight.t(), c.lin_gc.bias, c.lin_bi.weight.t(),
             c.lin_bi.bias) for c in model.convs]


def make(**kwargs):
    torch.manual_seed(0)
    kwargs.setdefault('message_dropout', 0.0)
    return NGCF(NU, NI, EDGES, embedding_dim=8, **kwargs)


def test_forward_matches_dense_stack():
    for normalize in (True, False):
        model = make(hidden_channels=[6, 5, 4],
                     normalize_layers=normalize).double()
        assert model.out_channels == 8 + 6 + 5 + 4
        ref = dense_final(model.embedding.weight, layer_params(model),
                          normalize)
        for mode in (model.train, model.eval):
            mode()
            assert torch.allclose(model(), ref)
            # row-selective path: repeats, any shape
            index = torch.tensor([[0, 9, 9], [4, 0, 1]])
            assert torch.allclose(model(index), ref[index])
            index = torch.arange(NU + NI).flip(0)  # all rows: full path
            assert torch.allclose(model(index), ref[index])
    zero = make(num_layers=0).double()
    assert torch.allclose(zero(), zero.embedding.weight)
    assert torch.allclose(zero(torch.tensor([3, 1])),
                          zero.embedding.weight[[3, 1]])


@pytest.mark.parametrize('rows', [True, False])
def test_loss_matches_reference_with_gradients(rows, monkeypatch):
    # few distinct nodes: the last layer is computed on the batch's rows
    # only (a RowSlice); many: in full
    if rows:
        batch = PairBatch(torch.tensor([0, 0]), torch.tensor([1, 1]),
                          torch.tensor([[5, 2], [1, 2]]))
    else:
        batch = PairBatch(torch.tensor([0, 3, 3]), torch.tensor([1, 4, 4]),
                          torch.tensor([[5, 2], [1, 2], [1, 2]]))
    sliced = []
    original = NormAdj.rows
    monkeypatch.setattr(NormAdj, 'rows', lambda self, index: sliced.append(
        index) or original(self, index))
    model = make(reg_weight=0.01, num_layers=2).double()
    loss = model.loss(batch)
    assert bool(sliced) == rows
    ref_w = model.embedding.weight.detach().clone().requires_grad_()
    ref_layers = [[p.detach().clone().requires_grad_() for p in layer]
                  for layer in layer_params(model)]
    E = dense_final(ref_w, ref_layers)
    u, p, n = E[batch.user], E[batch.pos + NU], E[batch.neg + NU]
    pos = (u * p).sum(-1, keepdim=True)
    neg = (u.unsqueeze(1) * n).sum(-1)
    e0 = ref_w[torch.cat([batch.user, batch.pos + NU,
                          batch.neg.view(-1) + NU])]
    B = batch.user.numel()
    ref = -F.logsigmoid(pos - neg).mean() + 0.01 * 0.5 * e0.pow(2).sum() / B
    assert torch.allclose(loss, ref)
    loss.backward()
    ref.backward()
    assert torch.allclose(model.embedding.weight.grad, ref_w.grad)
    for conv, (W1, b1, W2, b2) in zip(model.convs, ref_layers):
        assert torch.allclose(conv.lin_gc.weight.grad, W1.grad.t())
        assert torch.allclose(conv.lin_bi.weight.grad, W2.grad.t())
        assert torch.allclose(conv.lin_gc.bias.grad, b1.grad)
        assert torch.allclose(conv.lin_bi.bias.grad, b2.grad)
        assert W2.grad.abs().sum() > 0


def test_message_dropout_train_vs_eval():
    model = make(message_dropout=0.5)
    ref = make()  # same parameters, no dropout
    model.train()
    a, b = model(), model()
    assert not torch.allclose(a, b)  # a fresh mask per call
    # layer 0 is never dropped; dropped entries of later layers are zero
    assert torch.allclose(a[:, :8], ref()[:, :8])
    assert (a[:, 8:] == 0).float().mean() > 0.2
    model.eval()
    assert torch.allclose(model(), model())
    assert torch.allclose(model(), ref())


def test_node_dropout_drops_symmetric_edges():
    model = make(node_dropout=0.4).double()
    L = model.adj.to_dense()
    seen = torch.zeros_like(L, dtype=torch.bool)
    for _ in range(20):
        D = model.dropped_adj().to_dense()
        assert torch.allclose(D, D.t())  # both directions together
        kept = D != 0
        assert torch.allclose(D[kept], L[kept] / 0.6)
        assert ((L != 0) | ~kept).all()
        seen |= kept
    assert (seen == (L != 0)).all()  # every edge is kept some time
    # about p of the edges are dropped on a larger graph
    torch.manual_seed(0)
    edges = torch.stack([torch.randint(0, 50, (2000, )),
                         torch.randint(0, 80, (2000, ))])
    big = NGCF(50, 80, edges, embedding_dim=4, node_dropout=0.4)
    value = big.dropped_adj().value
    assert abs((value == 0).float().mean().item() - 0.4) < 0.05
    # training mode draws per call; eval mode uses the full adjacency
    model.train()
    assert not torch.allclose(model(), model())
    model.eval()
    assert torch.allclose(model(), make().double()())
    assert model.dropped_adj() is not model.adj
    plain = make()
    assert plain.dropped_adj() is plain.adj


def test_training_lowers_loss():
    model = make()
    batch = PairBatch(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 2, 3, 5]),
                      torch.tensor([4, 5, 1, 2]))
    first, last = fit_batch(model, batch, steps=30)
    assert last < 0.5 * first


def test_trainer_beats_popularity_on_clustered_split():
    split = clustered_split()
    seed_everything(0)
    model = NGCF(split.num_users, split.num_items, split.train,
                 embedding_dim=32, hidden_channels=32, num_layers=2,
                 node_dropout=0.1)
    loader = PairLoader(split.train,
                        UniformSampler(split.num_items,
                                       exclude=split.csr('train')),
                        batch_size=256, seed=0)
    result = Trainer(model, loader, RankingEvaluator(split), lr=0.05,
                     epochs=12, eval_every=4, monitor='recall@20',
                     progress=False).fit()
    losses = [r['loss'] for r in result['epochs']]
    assert losses[-1] < 0.5 * losses[0]
    pop = popularity_metrics(split)['recall@20']
    assert result['test']['recall@20'] > pop + 0.1


def test_score_recommend_and_eval_cache():
    model = make().eval()
    E = model().detach()
    users = torch.tensor([3, 0])
    assert torch.allclose(model.score(users), E[users] @ E[NU:].t())
    seen = CSR.from_pairs(EDGES[0], EDGES[1], NU, NI)
    _, items = model.recommend(torch.arange(NU), 2, exclude=seen)
    for u in range(NU):
        assert not set(items[u].tolist()) & set(seen.row(u).tolist())
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    model.clear_cache()
    first = model.score(users)
    model.score(users)
    model.recommend(users, 2)
    assert len(calls) == 1
    # a step on a layer weight alone must invalidate the cache
    with torch.no_grad():
        model.convs[-1].lin_gc.weight.mul_(2.0)
    second = model.score(users)
    assert len(calls) == 2
    assert not torch.allclose(first, second)
    model.reset_parameters()
    assert not torch.allclose(model.score(users), second)


def test_state_dict_adjacency_and_init():
    model = make(num_layers=2)
    keys = list(model.state_dict())
    assert keys[0] == 'embedding.weight'
    assert 'convs.1.lin_bi.bias' in keys
    assert not any(k.startswith('adj') for k in keys)
    clone = NGCF(NU, NI, EDGES, embedding_dim=8, num_layers=2,
                 message_dropout=0.0)
    clone.load_state_dict(model.state_dict())
    assert torch.allclose(clone(), model())
    model = model.double()
    assert model.adj.value.dtype == torch.float64
    assert model().dtype == torch.float64
    # Xavier-uniform tables, each with its own fan (reference code)
    big = NGCF(100, 20, torch.tensor([[0], [0]]), embedding_dim=10)
    w = big.embedding.weight
    assert w[:100].abs().max() <= (6 / 110) ** 0.5
    assert w[100:].abs().max() > (6 / 110) ** 0.5
    assert w[100:].abs().max() <= (6 / 30) ** 0.5


def test_repr_and_errors():
    model = make(num_layers=2)
    assert repr(model) == ('NGCF(4 users, 6 items, embedding_dim=8, '
                           'num_layers=2)')
    assert model.hidden_channels == (64, 64)
    assert model.message_dropout == (0.0, 0.0)
    with pytest.raises(ValueError, match='NGCF: num_layers must be'):
        NGCF(NU, NI, EDGES, num_layers=-1)
    with pytest.raises(ValueError, match='hidden_channels needs one value'):
        NGCF(NU, NI, EDGES, num_layers=2, hidden_channels=[4, 4, 4])
    with pytest.raises(ValueError, match='hidden_channels must be positive'):
        NGCF(NU, NI, EDGES, num_layers=2, hidden_channels=[4, 0])
    with pytest.raises(ValueError, match='message_dropout must lie in'):
        NGCF(NU, NI, EDGES, message_dropout=1.0)
    with pytest.raises(ValueError, match='node_dropout must lie in'):
        NGCF(NU, NI, EDGES, node_dropout=-0.1)
    with pytest.raises(ValueError, match='item ids must lie in'):
        NGCF(NU, 3, EDGES)
    with pytest.raises(ValueError, match='NGCF: num_users and num_items'):
        NGCF(0, NI, EDGES)
