import math

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import HeteroData
from torch_geometric.nn import HeteroConv

from pyg_recsys.data.loader import ClickLoader
from pyg_recsys.nn.conv import GraphRecConv
from pyg_recsys.nn.models import BiasedMF, GraphRec, RatingPredictor
from pyg_recsys.ops.fanout import padded_fanout
from pyg_recsys.train import RatingEvaluator, Trainer, adam

D = 4


def test_padded_fanout_draws_each_neighbour_once():
    # row 0: 5 edges (k = 3: 3 distinct of them), row 1: 2 (both, padded),
    # row 2: none (all padding)
    rowptr = torch.tensor([0, 5, 7, 7])
    counts = torch.zeros(5)
    gen = torch.Generator().manual_seed(0)
    for _ in range(400):
        edge = padded_fanout(rowptr, 3, gen)
        assert edge.shape == (3, 3)
        assert len(set(edge[0].tolist())) == 3
        assert set(edge[0].tolist()) <= set(range(5))
        assert sorted(edge[1].tolist()) == [-1, 5, 6]
        assert edge[2].tolist() == [-1, -1, -1]
        for e in edge[0].tolist():
            counts[e] += 1
    # each of the 5 is taken with probability 3/5
    assert torch.allclose(counts / 400, torch.full((5,), 0.6), atol=0.08)
    with pytest.raises(ValueError, match='k must be >= 1'):
        padded_fanout(rowptr, 0)


def _by_hand(conv, x_nbr, query, opinion=None):
    """The paper's equations for one centre, written out."""
    if conv.opinion:
        h = torch.relu(conv.g1(torch.cat([x_nbr, opinion], -1)))
        x = torch.relu(conv.g2(h))
    else:
        x = x_nbr
    logit = torch.stack([
        conv.att2(torch.relu(conv.att1(torch.cat([x[a], query])))).squeeze()
        for a in range(x.size(0))])
    alpha = torch.softmax(logit, 0)
    return torch.relu(conv.lin((alpha.view(-1, 1) * x).sum(0)))


@pytest.mark.parametrize('opinion', [True, False])
def test_both_paths_follow_the_equations(opinion):
    torch.manual_seed(0)
    conv = GraphRecConv(D, opinion=opinion)
    # a hand-made graph of 6 nodes: sources 0-3, centres 4 (3 neighbours),
    # 5 (one) and 6 (none)
    x = torch.randn(4, D, requires_grad=True)
    query = torch.randn(3, D, requires_grad=True)
    edge_index = torch.tensor([[0, 1, 3, 2], [0, 0, 0, 1]])
    levels = torch.randn(3, D)
    level = torch.tensor([2, 0, 1, 1])
    op = levels[level] if opinion else None
    out = conv((x, None), edge_index, query, op)
    # dense: slots padded to K = 3
    nbr = torch.tensor([[0, 1, 3], [2, 0, 0], [0, 0, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]]).bool()
    lv = torch.tensor([[2, 0, 1], [1, 0, 0], [0, 0, 0]])
    dense = conv.forward_dense(x[nbr], query, mask,
                               (levels, lv) if opinion else None)
    want = torch.stack([
        _by_hand(conv, x[[0, 1, 3]], query[0],
                 levels[[2, 0, 1]] if opinion else None),
        _by_hand(conv, x[[2]], query[1], levels[[1]] if opinion else None),
        torch.relu(conv.lin.bias)])  # no neighbour
    assert torch.allclose(out, want, atol=1e-6)
    assert torch.allclose(dense, want, atol=1e-6)
    if opinion:  # the opinion as embeddings gives the same
        same = conv.forward_dense(x[nbr], query, mask, levels[lv])
        assert torch.allclose(same, want, atol=1e-6)
    # gradients: the two paths agree
    g_edge = torch.autograd.grad(out.pow(2).sum(), [x, query])
    g_dense = torch.autograd.grad(
        conv.forward_dense(x[nbr], query, mask, (levels, lv) if opinion
                           else None).pow(2).sum(), [x, query])
    for a, b in zip(g_edge, g_dense):
        assert torch.allclose(a, b, atol=1e-6)
        assert torch.isfinite(a).all()
    # a centre without neighbours has no gradient to its query from the
    # attention (its output is ReLU(b))
    assert torch.count_nonzero(g_dense[1][2]) == 0


def test_conv_composes_with_hetero_conv():
    torch.manual_seed(0)
    data = HeteroData()
    data['user'].x = torch.randn(3, D)
    data['item'].x = torch.randn(4, D)
    data['item', 'rated_by', 'user'].edge_index = torch.tensor(
        [[0, 1, 2, 3], [0, 0, 1, 2]])
    data['user', 'trusts', 'user'].edge_index = torch.tensor([[1, 2],
                                                             [0, 0]])
    op = torch.randn(4, D)
    convs = {('item', 'rated_by', 'user'): GraphRecConv(D),
             ('user', 'trusts', 'user'): GraphRecConv(D, opinion=False)}
    hetero = HeteroConv(convs, aggr='sum')
    out = hetero(data.x_dict, data.edge_index_dict,
                 query_dict={'user': data['user'].x},
                 opinion_dict={('item', 'rated_by', 'user'): op})
    want = convs[('item', 'rated_by', 'user')](
        data['item'].x, data['item', 'rated_by', 'user'].edge_index,
        data['user'].x, op) + convs[('user', 'trusts', 'user')](
        data['user'].x, data['user', 'trusts', 'user'].edge_index,
        data['user'].x)
    assert torch.allclose(out['user'], want, atol=1e-6)


def test_conv_bad_input():
    with pytest.raises(ValueError, match='channels must be >= 1'):
        GraphRecConv(0)
    with pytest.raises(ValueError, match=r'dropout must lie in \[0, 1\)'):
        GraphRecConv(D, dropout=1.0)
    conv = GraphRecConv(D)
    with pytest.raises(ValueError, match='pass the edges\' opinion'):
        conv.forward_dense(torch.randn(2, 3, D), torch.randn(2, D),
                           torch.ones(2, 3, dtype=torch.bool))


def _social_data(users=40, items=30, seed=0):
    """Ratings 3 + a user bias (-1, 0, 1) + an item bias (-1, 1), one per
    pair drawn at random: a global mean cannot predict them, the
    opinions a user gave and an item received can; trust links join
    users of the same bias."""
    gen = torch.Generator().manual_seed(seed)
    ug = torch.arange(users) % 3
    ib = (torch.arange(items) % 2) * 2 - 1
    u = torch.randint(0, users, (900,), generator=gen)
    i = torch.randint(0, items, (900,), generator=gen)
    key = torch.unique(u * items + i)
    u, i = key // items, key % items
    r = (3 + (ug[u] - 1) + ib[i]).float()
    a = torch.randint(0, users, (200,), generator=gen)
    b = torch.randint(0, users, (200,), generator=gen)
    keep = ug[a] == ug[b]
    perm = torch.randperm(u.numel(), generator=gen)
    n = u.numel()
    tr, va, te = perm[:int(0.7 * n)], perm[int(0.7 * n):int(0.85 * n)], \
        perm[int(0.85 * n):]
    return dict(users=users, items=items, trust=torch.stack([a[keep],
                                                             b[keep]]),
                parts={'train': (u[tr], i[tr], r[tr]),
                       'val': (u[va], i[va], r[va]),
                       'test': (u[te], i[te], r[te])})


def _fit(model, d, epochs=30, lr=0.01):
    u, i, r = d['parts']['train']
    loader = ClickLoader(torch.stack([u, i]), 64, labels=r)
    ev = RatingEvaluator({k: v for k, v in d['parts'].items()
                          if k != 'train'})
    trainer = Trainer(model, loader, ev,
                      optimizer=adam(model.parameters(), lr=lr),
                      epochs=epochs, eval_every=5, monitor='rmse',
                      mode='min', progress=False)
    return trainer.fit()['test']


def test_graphrec_learns_what_a_global_mean_cannot():
    d = _social_data()
    u, i, r = d['parts']['train']
    torch.manual_seed(0)
    m = GraphRec(d['users'], d['items'], torch.stack([u, i]), r, d['trust'],
                 embedding_dim=8, num_neighbors=(5, 3, 5), dropout=0.1)
    assert isinstance(m, RatingPredictor)
    test = _fit(m, d, epochs=60)
    tu, ti, tr = d['parts']['test']
    mean_rmse = math.sqrt(float(((tr - r.mean()) ** 2).mean()))
    assert test["rmse"] < 0.6 * mean_rmse, (test, mean_rmse)
    # without the social aggregation it still trains (GraphRec-SN)
    torch.manual_seed(0)
    sn = GraphRec(d['users'], d['items'], torch.stack([u, i]), r,
                  d['trust'], embedding_dim=8, num_neighbors=(5, 3, 5),
                  dropout=0.1, social=False)
    assert sn.social_agg is None
    assert _fit(sn, d, epochs=60)["rmse"] < 0.8 * mean_rmse


def test_graphrec_neighbourhoods_and_prediction():
    d = _social_data()
    u, i, r = d['parts']['train']
    m = GraphRec(d['users'], d['items'], torch.stack([u, i]), r, d['trust'],
                 embedding_dim=8, num_neighbors=(4, 2, 3), seed=3)
    # the opinions are the distinct training ratings
    assert m.levels.tolist() == sorted(set(r.tolist()))
    # every sampled slot is one of the row's own edges
    t = m.tables['eval']['ui']
    for user in range(d['users']):
        lo, hi = int(m.ui_rowptr[user]), int(m.ui_rowptr[user + 1])
        got = [e for e in t[user].tolist() if e >= 0]
        assert len(got) == min(hi - lo, 4) and len(set(got)) == len(got)
        assert all(lo <= e < hi for e in got)
    # the social graph is symmetric, without self-links
    pairs = set()
    for a in range(d['users']):
        for b in m.uu_col[m.uu_rowptr[a]:m.uu_rowptr[a + 1]].tolist():
            pairs.add((a, b))
    assert all((b, a) in pairs for a, b in pairs)
    assert all(a != b for a, b in pairs)
    # training tables move with the epoch, evaluation ones do not
    ev = m.tables['eval']['ui'].clone()
    tr0 = m.tables['train']['ui'].clone()
    m.set_epoch(1)
    assert not torch.equal(m.tables['train']['ui'], tr0)
    assert torch.equal(m.tables['eval']['ui'], ev)
    m.set_epoch(0)
    assert torch.equal(m.tables['train']['ui'], tr0)  # from (seed, epoch)
    # predict in chunks equals one call; eval mode is deterministic
    m.eval()
    users, items = d['parts']['test'][0], d['parts']['test'][1]
    a = m.predict(users, items)
    assert torch.allclose(a, m.predict(users, items, chunk=7))
    # the output bias starts at the mean training rating
    fresh = GraphRec(d['users'], d['items'], torch.stack([u, i]), r)
    assert float(fresh.out.bias) == pytest.approx(float(r.mean()))


def test_graphrec_bad_input():
    d = _social_data()
    u, i, r = d['parts']['train']
    ei = torch.stack([u, i])
    with pytest.raises(ValueError, match=r'one rating per edge'):
        GraphRec(40, 30, ei, r[:-1])
    with pytest.raises(ValueError, match=r'edge ids must lie in'):
        GraphRec(10, 30, ei, r)
    with pytest.raises(ValueError, match=r'num_neighbors must be three'):
        GraphRec(40, 30, ei, r, num_neighbors=(3, 3))
    with pytest.raises(ValueError, match=r'trust ids must lie'):
        GraphRec(40, 30, ei, r, torch.tensor([[0], [40]]))
    with pytest.raises(ValueError, match=r'non-empty \[2, E\]'):
        GraphRec(40, 30, torch.empty(2, 0, dtype=torch.long),
                 torch.empty(0))
    with pytest.raises(ValueError, match='ratings must be finite'):
        GraphRec(40, 30, ei, torch.full_like(r, float('nan')))


def test_biased_mf_formula_and_training():
    d = _social_data()
    u, i, r = d['parts']['train']
    m = BiasedMF(d['users'], d['items'], 8, mean_rating=float(r.mean()),
                 reg_weight=0.01)
    assert isinstance(m, RatingPredictor)
    with torch.no_grad():
        m.user_bias.weight[3] = 0.5
        m.item_bias.weight[2] = -0.25
    want = (float(r.mean()) + 0.5 - 0.25
            + float(m.user.weight[3] @ m.item.weight[2]))
    assert float(m.predict(torch.tensor([3]), torch.tensor([2]))) == \
        pytest.approx(want, abs=1e-6)
    m.reset_parameters()
    tu, ti, tr = d['parts']['test']
    mean_rmse = math.sqrt(float(((tr - r.mean()) ** 2).mean()))
    assert _fit(m, d, epochs=40, lr=0.05)['rmse'] < 0.8 * mean_rmse
    batch = next(iter(ClickLoader(torch.stack([u, i]), 16, labels=r)))
    pred = m(batch.user, batch.item)
    reg = 0.5 * sum(t.pow(2).sum() for t in (
        m.user(batch.user), m.item(batch.item), m.user_bias(batch.user),
        m.item_bias(batch.item))) / 16
    assert float(m.loss(batch)) == pytest.approx(
        float(F.mse_loss(pred, batch.label) + 0.01 * reg), rel=1e-5)
    with pytest.raises(ValueError, match='needs users and items'):
        BiasedMF(0, 3)
