import math

import pytest
import torch
import torch.nn.functional as F

from pyg_recsys.data.loader import PairBatch, PairLoader, TripleBatch
from pyg_recsys.nn.conv import KGATConv
from pyg_recsys.nn.conv.kgat_conv import kgat_attention
from pyg_recsys.nn.models import KGAT, MultiObjective, PairwiseRanker
from pyg_recsys.sampling import UniformSampler
from pyg_recsys.schema import build_graph
from pyg_recsys.train import RankingEvaluator, Trainer, adam


def test_attention_follows_the_equations():
    gen = torch.Generator().manual_seed(0)
    N, d, k, R = 5, 4, 3, 2
    x = torch.randn(N, d, generator=gen)
    rel = torch.randn(R, k, generator=gen)
    W = torch.randn(R, d, k, generator=gen)
    # (tail, head) edges: head 0 has three, head 1 one, head 2 two
    edge_index = torch.tensor([[1, 2, 3, 0, 4, 0], [0, 0, 0, 1, 2, 2]])
    edge_type = torch.tensor([0, 1, 1, 0, 1, 0])
    got = kgat_attention(x, edge_index, edge_type, rel, W)
    pi = []
    for (t, h), r in zip(edge_index.t().tolist(), edge_type.tolist()):
        pi.append(float((x[t] @ W[r]) @ torch.tanh(x[h] @ W[r] + rel[r])))
    for head in (0, 1, 2):
        idx = [j for j, h in enumerate(edge_index[1].tolist()) if h == head]
        z = sum(math.exp(pi[j]) for j in idx)
        for j in idx:
            assert float(got[j]) == pytest.approx(math.exp(pi[j]) / z,
                                                  rel=1e-5)


@pytest.mark.parametrize('aggregator', ['bi-interaction', 'gcn',
                                        'graphsage'])
def test_layer_follows_the_equations_on_both_paths(aggregator):
    torch.manual_seed(0)
    conv = KGATConv(4, 3, aggregator, dropout=0.0)
    x = torch.randn(5, 4, requires_grad=True)
    edge_index = torch.tensor([[1, 2, 3, 0, 4], [0, 0, 0, 1, 2]])
    w = torch.tensor([0.2, 0.3, 0.5, 1.0, 1.0])
    A = torch.zeros(5, 5)
    A[edge_index[1], edge_index[0]] = w  # rows: heads
    side = A @ x
    lrelu = F.leaky_relu
    if aggregator == 'bi-interaction':
        want = lrelu(conv.lin1(x + side)) + lrelu(conv.lin2(x * side))
    elif aggregator == 'gcn':
        want = lrelu(conv.lin1(x + side))
    else:
        want = lrelu(conv.lin1(torch.cat([x, side], -1)))
    want = F.normalize(want, dim=-1)
    got = conv(x, edge_index, w)
    assert torch.allclose(got, want, atol=1e-6)
    csr = A.to_sparse_csr()
    assert torch.allclose(conv(x, csr), want, atol=1e-6)
    got.sum().backward()
    assert x.grad.abs().sum() > 0 and conv.lin1.weight.grad is not None
    with pytest.raises(ValueError, match='aggregator must be one of'):
        KGATConv(4, 3, 'max')


def _graph(num_users=12, num_items=10, seed=0, per_user=3):
    """Users like the items of one of two genres (entities 0 and 1)."""
    gen = torch.Generator().manual_seed(seed)
    items = torch.arange(num_items)
    pairs = []
    for u in range(num_users):
        liked = items[items % 2 == u % 2]
        pick = torch.randperm(liked.numel(), generator=gen)[:per_user]
        pairs += [(u, int(i)) for i in liked[pick]]
    pairs = torch.tensor(pairs).t()
    genre = torch.stack([items, items % 2])
    graph = build_graph({'user': num_users, 'item': num_items,
                         'entity': 2},
                        {('user', 'interacts', 'item'): pairs,
                         ('item', 'genre', 'entity'): genre})
    return graph, pairs


def _model(**kw):
    torch.manual_seed(0)
    graph, pairs = _graph()
    return KGAT(12, 10, graph, embedding_dim=8, relation_dim=4,
                layer_dims=(8, 4), **kw), pairs


def test_model_surface_and_shapes():
    m, _ = _model()
    assert isinstance(m, MultiObjective) and isinstance(m, PairwiseRanker)
    assert m.objectives == ('cf', 'kg')
    # CKG relations: interactions and genre, each with its inverse
    assert m.num_relations == 4
    assert m(None).shape == (24, 8 + 8 + 4)  # e* = e0 || e1 || e2
    # the initial weights: 1 / |N_{h, r}| (rows of each relation sum to 1)
    t, h = m.ckg_index
    key = h * m.num_relations + m.ckg_type
    sums = torch.zeros(int(key.max()) + 1).index_add_(0, key, m.attention)
    assert torch.allclose(sums[torch.unique(key)], torch.ones(
        torch.unique(key).numel()))
    m.update_attention()  # then a softmax over each head's edges
    per_head = torch.zeros(24).index_add_(0, h, m.attention)
    assert torch.allclose(per_head[torch.unique(h)],
                          torch.ones(torch.unique(h).numel()))
    with pytest.raises(TypeError, match='typed training graph'):
        KGAT(12, 10, torch.zeros(2, 3, dtype=torch.long))


def test_objectives_follow_their_formulas():
    m, _ = _model(dropout=0.0, reg_weight=0.0, kg_reg_weight=0.0)
    m.train()
    b = PairBatch(torch.tensor([0, 1]), torch.tensor([2, 3]),
                  torch.tensor([4, 5]))
    e = m(None)
    u, p, n = e[b.user], e[12 + b.pos], e[12 + b.neg]
    want = -F.logsigmoid((u * p).sum(-1) - (u * n).sum(-1)).mean()
    assert float(m.loss(b, 'cf')) == pytest.approx(float(want), rel=1e-5)
    tb = TripleBatch(torch.tensor([0, 13]), torch.tensor([0, 2]),
                     torch.tensor([12, 22]), None,
                     torch.tensor([[5], [7]]))
    x, W, r = m.embedding.weight, m.W, m.relation.weight
    terms = []
    for j in range(2):
        h, rr, t, nt = (int(tb.head[j]), int(tb.relation[j]),
                        int(tb.tail[j]), int(tb.neg_tail[j, 0]))
        g = (x[h] @ W[rr] + r[rr] - x[t] @ W[rr]).pow(2).sum()
        g_neg = (x[h] @ W[rr] + r[rr] - x[nt] @ W[rr]).pow(2).sum()
        terms.append(-F.logsigmoid(g_neg - g))
    loss = m.loss(tb, 'kg')
    assert float(loss) == pytest.approx(float(sum(terms) / 2), rel=1e-5)
    loss.backward()
    assert m.W.grad.abs().sum() > 0 and m.relation.weight.grad is not None
    with pytest.raises(ValueError, match="unknown objective 'x'"):
        m.loss(tb, 'x')


def test_attention_is_refreshed_after_training_as_the_reference():
    m, _ = _model()
    before = m.attention.clone()
    m.set_epoch(1)  # the first epoch keeps the initial weights
    assert torch.equal(m.attention, before)
    m.loss(PairBatch(torch.tensor([0]), torch.tensor([2]),
                     torch.tensor([4])), 'cf')
    m.eval()
    m.score(torch.tensor([0]))  # an evaluation after training updates it
    assert not torch.equal(m.attention, before)
    off, _ = _model(attention=False)
    init = off.attention.clone()
    off.loss(PairBatch(torch.tensor([0]), torch.tensor([2]),
                       torch.tensor([4])), 'cf')
    off.set_epoch(2)
    assert torch.equal(off.attention, init)


def test_training_beats_popularity_on_a_tiny_graph():
    from pyg_recsys.data.interactions import Interactions
    from pyg_recsys.data.split import random_split
    from pyg_recsys.nn.models import Popularity
    graph, pairs = _graph(num_users=60, num_items=40, per_user=8)
    inter = Interactions(pairs[0], pairs[1])
    split = random_split(inter, ratios=(0.6, 0.2, 0.2), seed=0)
    split.num_nodes['entity'] = 2
    split.side[('item', 'genre', 'entity')] = graph[
        'item', 'genre', 'entity'].edge_index
    torch.manual_seed(0)
    m = KGAT(60, 40, split.graph(), embedding_dim=16, relation_dim=8,
             layer_dims=(16, 8))
    loaders = {'cf': PairLoader(split.train, UniformSampler(
        40, exclude=split.csr('train')), batch_size=64),
        'kg': m.triple_loader(64)}
    ev = RankingEvaluator(split, ks=(5,))
    Trainer(m, loaders, ev, optimizer=adam(m.parameters(), lr=0.01),
            epochs=30, eval_every=30, monitor='recall@5',
            progress=False).fit()
    got = ev(m, 'test')['recall@5']
    pop = ev(Popularity(60, 40, split.train), 'test')['recall@5']
    assert got > pop + 0.1, (got, pop)
