import pytest
import torch

from pyg_recsys.data.loader import ClickBatch, ClickLoader, PairBatch
from pyg_recsys.metrics import auc
from pyg_recsys.nn.conv import KGCNConv
from pyg_recsys.nn.models import KGCN, ClickThroughPredictor, PairwiseRanker
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.fanout import fixed_fanout
from pyg_recsys.train import Trainer, adam

# items 0..5, entities 6..8 (num_items 6, num_entities 3)
TRIPLES = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 6],
                        [0, 0, 1, 1, 2, 2, 1, 0],
                        [6, 6, 7, 7, 8, 8, 3, 7]])


def _model(**kw):
    torch.manual_seed(0)
    kw.setdefault('num_neighbors', 3)
    return KGCN(4, 6, 3, TRIPLES, 3, embedding_dim=8, **kw)


def test_fixed_fanout_draws_like_the_reference():
    # row 0: 5 neighbours (k = 3: without replacement), row 1: 2 (with
    # replacement), row 2: none (itself)
    rowptr = torch.tensor([0, 5, 7, 7])
    col = torch.tensor([10, 11, 12, 13, 14, 20, 21])
    counts = torch.zeros(5)
    gen = torch.Generator().manual_seed(0)
    for _ in range(400):
        nbr, edge = fixed_fanout(rowptr, col, 3, gen)
        assert len(set(nbr[0].tolist())) == 3  # distinct
        assert set(nbr[0].tolist()) <= set(range(10, 15))
        assert torch.equal(col[edge[0]], nbr[0])
        assert set(nbr[1].tolist()) <= {20, 21}
        assert nbr[2].tolist() == [2, 2, 2] and edge[2].tolist() == [-1] * 3
        for c in nbr[0].tolist():
            counts[c - 10] += 1
    # each of the 5 is taken with probability 3/5
    assert torch.allclose(counts / 400, torch.full((5,), 0.6), atol=0.08)
    with pytest.raises(ValueError, match='k must be >= 1'):
        fixed_fanout(rowptr, col, 0)


def test_prediction_follows_the_layer_equations():
    m = _model(num_layers=1)
    assert isinstance(m, ClickThroughPredictor)
    assert isinstance(m, PairwiseRanker)
    users, items = torch.tensor([0, 3, 1]), torch.tensor([0, 4, 5])
    got = m.predict(users, items)
    conv = m.convs[0]
    ent = torch.cat([m.embedding['item'], m.embedding['entity']])
    for b in range(3):
        u = m.embedding['user'][users[b]]
        i = int(items[b])
        nb, rel = m.adj_entity[i], m.adj_relation[i]
        # the edge-list path of the layer, one centre
        edge_index = torch.stack([torch.arange(1, 4), torch.zeros(3).long()])
        x = torch.cat([ent[i].view(1, -1), ent[nb]])
        v = conv((x, x[:1]), edge_index, m.relation.weight[rel],
                 u.view(1, -1))[0]
        assert float(got[b]) == pytest.approx(float(u @ v), abs=1e-5)
    # receptive fields only reach neighbours of the graph (undirected)
    nbrs = {0: {6, 3}, 6: {0, 1, 7}, 3: {7, 0}}
    for e, allowed in nbrs.items():
        assert set(m.adj_entity[e].tolist()) <= allowed


@pytest.mark.parametrize('layers', [1, 2])
def test_score_forms_agree(layers):
    m = _model(num_layers=layers)
    users = torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        full = m.score(users)  # [4, 6]
        pairs = m.predict(users.repeat_interleave(6),
                          torch.arange(6).repeat(4))
        assert torch.allclose(full.view(-1), pairs, atol=1e-5)
        some = m.score(users, torch.tensor([5, 1]))
        assert torch.allclose(some, full[:, [5, 1]], atol=1e-5)
        per_row = m.score(users, torch.tensor([[0, 1], [2, 3], [4, 5],
                                               [0, 5]]))
        assert torch.allclose(per_row[3], full[3, [0, 5]], atol=1e-5)
    seen = CSR.from_pairs(torch.tensor([0, 0]), torch.tensor([1, 2]), 4, 6)
    _, top = m.recommend(users, 3, exclude=seen)
    assert not {1, 2} & set(top[0].tolist())


def test_losses_and_gradients():
    m = _model(reg_weight=0.0)
    batch = ClickBatch(torch.tensor([0, 1]), torch.tensor([2, 3]),
                       torch.tensor([1.0, 0.0]))
    logits = m.predict(batch.user, batch.item)
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, batch.label)
    loss = m.loss(batch)
    assert float(loss) == pytest.approx(float(want))
    loss.backward()
    assert m.embedding.weight.grad.abs().sum() > 0
    assert m.relation.weight.grad.abs().sum() > 0
    # pairs: the positive labelled 1, the negatives 0
    m2 = _model(reg_weight=0.0)
    pb = PairBatch(torch.tensor([0, 1]), torch.tensor([2, 3]),
                   torch.tensor([[4, 5], [0, 1]]))
    pos = m2.predict(pb.user, pb.pos)
    neg = m2.predict(torch.tensor([0, 0, 1, 1]), torch.tensor([4, 5, 0, 1]))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    want = bce(torch.cat([pos, neg]), torch.tensor([1., 1, 0, 0, 0, 0]))
    assert float(m2.loss(pb)) == pytest.approx(float(want), rel=1e-5)
    # the reference's L2: half the squared norm of every table and weight
    m3 = _model(reg_weight=0.1)
    l2 = (m3.embedding.weight.pow(2).sum() + m3.relation.weight.pow(2).sum()
          + m3.convs[0].lin.weight.pow(2).sum())
    assert float(m3.loss(batch) - want.new_tensor(0)) == pytest.approx(
        float(bce(m3.predict(batch.user, batch.item), batch.label)
              + 0.05 * l2), rel=1e-5)


def test_receptive_field_resampling_follows_seed_and_epoch():
    fixed = _model(num_neighbors=2)
    before = fixed.adj_entity.clone()
    fixed.set_epoch(3)
    assert torch.equal(fixed.adj_entity, before)  # sampled once
    a, b = _model(num_neighbors=2, resample=True), \
        _model(num_neighbors=2, resample=True)
    changed = False
    for epoch in range(1, 6):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert torch.equal(a.adj_entity, b.adj_entity)
        changed |= not torch.equal(a.adj_entity, before)
    assert changed


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match='non-empty'):
        KGCN(2, 3, 0, torch.zeros(3, 0, dtype=torch.long), 1)
    with pytest.raises(ValueError, match=r'relation 5, outside \[0, 3\)'):
        KGCN(2, 6, 3, torch.tensor([[0], [5], [6]]), 3)
    with pytest.raises(ValueError, match=r'must lie in \[0, 9\)'):
        KGCN(2, 6, 3, torch.tensor([[0], [0], [9]]), 3)
    with pytest.raises(ValueError, match='aggregator must be one of'):
        KGCN(2, 6, 3, TRIPLES, 3, aggregator='max')


def _genres(num_users=40, num_items=20, seed=0):
    """Items of two genres (entities 20 and 21); each user likes one
    genre: positives are items of it, negatives items of the other."""
    gen = torch.Generator().manual_seed(seed)
    items = torch.arange(num_items)
    triples = torch.stack([items, torch.zeros_like(items),
                           num_items + items % 2])
    rows = []
    for u in range(num_users):
        liked = items[items % 2 == u % 2]
        other = items[items % 2 != u % 2]
        pick = torch.randperm(liked.numel(), generator=gen)[:6]
        drop = torch.randperm(other.numel(), generator=gen)[:6]
        for i in liked[pick].tolist():
            rows.append((u, i, 1))
        for i in other[drop].tolist():
            rows.append((u, i, 0))
    rows = torch.tensor(rows).t()
    perm = torch.randperm(rows.size(1), generator=gen)
    rows = rows[:, perm]
    n = rows.size(1)
    return triples, rows[:, :int(0.7 * n)], rows[:, int(0.7 * n):]


def test_training_beats_popularity_on_a_tiny_graph():
    triples, train, test = _genres()
    torch.manual_seed(0)
    m = KGCN(40, 20, 2, triples, 1, embedding_dim=8, num_neighbors=2,
             reg_weight=0.0)
    loader = ClickLoader(train, batch_size=32)

    def evaluate(model, part):
        with torch.no_grad():
            lg = model.predict(test[0], test[1])
        y = test[2].bool()
        return {'auc': auc(lg[y], lg[~y])}

    Trainer(m, loader, evaluate, optimizer=adam(m.parameters(), lr=0.02),
            epochs=30, eval_every=30, monitor='auc', progress=False).fit()
    got = evaluate(m, 'test')['auc']
    # popularity: each item's share of positive training rows
    pos = torch.bincount(train[1][train[2] == 1], minlength=20).float()
    seen = torch.bincount(train[1], minlength=20).float().clamp(min=1)
    pop = (pos / seen)[test[1]]
    y = test[2].bool()
    base = auc(pop[y], pop[~y])
    assert got > 0.85 and got > base + 0.2, (got, base)
    assert isinstance(m.convs[0], KGCNConv)
