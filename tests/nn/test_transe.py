import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn.kge import TransE as PyGTransE

from pyg_recsys.data.loader import TripleBatch, TripleLoader
from pyg_recsys.nn.models import TransE, TripleScorer
from pyg_recsys.train import KGEvaluator, Trainer, adam

E, R, D = 7, 3, 8


def _model(**kw):
    torch.manual_seed(0)
    return TransE(E, R, D, **kw)


@pytest.mark.parametrize('p', [1, 2])
def test_equals_pyg_transe_on_the_same_weights(p):
    ours = _model(p_norm=p, normalize=True)
    theirs = PyGTransE(E, R, D, p_norm=p)
    theirs.node_emb.weight.data.copy_(ours.entity.weight.data)
    theirs.rel_emb.weight.data.copy_(ours.relation.weight.data)
    h, r, t = torch.tensor([0, 3, 6, 2]), torch.tensor([0, 2, 1, 1]), \
        torch.tensor([5, 3, 1, 4])
    assert torch.allclose(ours.score_triples(h, r, t), theirs(h, r, t),
                          atol=1e-6)


@pytest.mark.parametrize('kw', [dict(p_norm=1), dict(p_norm=2),
                                dict(p_norm=1, normalize=True),
                                dict(p_norm=2, reciprocal=True)])
def test_all_entity_scores_equal_the_triple_formula(kw):
    m = _model(**kw)
    assert isinstance(m, TripleScorer)
    ent, rel = m.entity.weight.detach(), m.relation.weight.detach()
    if m.normalize:
        ent = F.normalize(ent, p=m.p_norm, dim=-1)
    h, r = torch.tensor([1, 4]), torch.tensor([2, 0])
    with torch.no_grad():
        tails = m.score_tails(h, r)
        heads = m.score_heads(r, h)  # (?, r, h): h plays the tail
    for b in range(2):
        for e in range(E):
            # the paper's s(h, r, t) = -||e_h + r - e_t||_p, written out
            want_t = -(ent[h[b]] + rel[r[b]] - ent[e]).norm(p=m.p_norm)
            assert float(tails[b, e]) == pytest.approx(float(want_t), abs=1e-5)
            if m.reciprocal:  # heads as tails of (h, r^-1, ?)
                want_h = -(ent[h[b]] + rel[r[b] + R] - ent[e]).norm(
                    p=m.p_norm)
            else:
                want_h = -(ent[e] + rel[r[b]] - ent[h[b]]).norm(p=m.p_norm)
            assert float(heads[b, e]) == pytest.approx(float(want_h), abs=1e-5)


@pytest.mark.parametrize('kw', [dict(p_norm=1), dict(p_norm=2),
                                dict(p_norm=2, normalize=True),
                                dict(p_norm=2, reciprocal=True)])
def test_ranking_forms_keep_the_order_of_the_scores(kw):
    m = _model(**kw).eval()
    h, r = torch.tensor([1, 4, 0]), torch.tensor([2, 0, 1])
    with torch.no_grad():
        pairs = [(m.ranking_tails(h, r), m.score_tails(h, r)),
                 (m.ranking_heads(r, h), m.score_heads(r, h))]
    for fast, exact in pairs:
        assert fast.shape == exact.shape == (3, E)
        assert torch.equal(fast.argsort(1), exact.argsort(1))
        if m.p_norm == 2:  # ||q||^2 - ||q - e||^2: the square, shifted
            shift = (fast + exact.pow(2))
            assert torch.allclose(shift, shift[:, :1].expand_as(shift),
                                  atol=1e-4)


def test_ranking_table_follows_the_weights():
    m = _model(p_norm=2).eval()
    h, r = torch.tensor([1, 2]), torch.tensor([0, 1])
    with torch.no_grad():
        before = m.ranking_tails(h, r)
        assert m.ranking_tails(h, r) is not before  # a new [B, E] each call
        m.entity.weight.mul_(2.0)  # in place: the cached table is stale
        after = m.ranking_tails(h, r)
    with torch.no_grad():
        fresh = _model(p_norm=2).eval()
        fresh.load_state_dict(m.state_dict())
        assert torch.allclose(after, fresh.ranking_tails(h, r))
    assert not torch.allclose(before, after)
    # an optimiser step that does not bump the version (fused Adam):
    # train() / eval() drop the table
    m.train()
    m.entity.weight.data.mul_(0.5)
    m.eval()
    with torch.no_grad():
        assert torch.allclose(m.ranking_tails(h, r), before, atol=1e-5)


def _batch(neg=True):
    h, r, t = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), \
        torch.tensor([3, 4, 5])
    if not neg:
        return TripleBatch(h, r, t)
    return TripleBatch(h, r, t, torch.tensor([[6, 1], [2, 3], [0, 0]]),
                       torch.tensor([[1, 2], [6, 5], [4, 3]]))


def _score(m, h, r, t):
    ent, rel = m.entity.weight, m.relation.weight
    return -(ent[h] + rel[r] - ent[t]).norm(p=1, dim=-1)


def _side(kind, pos, neg):
    if kind == 'ce':
        logits = torch.cat([pos.view(-1, 1), neg], 1)
        return -logits.log_softmax(1)[:, 0].mean()
    return torch.relu(0.7 - pos.view(-1, 1) + neg).mean()


@pytest.mark.parametrize('kind', ['ce', 'margin'])
def test_losses_follow_their_formulas(kind):
    m = _model(loss=kind, margin=0.7)
    b = _batch()
    pos = _score(m, b.head, b.relation, b.tail)
    neg_t = _score(m, b.head.view(-1, 1), b.relation.view(-1, 1),
                   b.neg_tail)
    neg_h = _score(m, b.neg_head, b.relation.view(-1, 1),
                   b.tail.view(-1, 1))
    want = 0.5 * (_side(kind, pos, neg_t) + _side(kind, pos, neg_h))
    got = m.loss(b)
    assert float(got) == pytest.approx(float(want), rel=1e-5)
    got.backward()
    assert m.entity.weight.grad.abs().sum() > 0
    assert m.relation.weight.grad.abs().sum() > 0


def test_in_batch_negatives_leave_out_the_true_entity():
    m = _model(loss='margin', margin=5.0)
    h, r = torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1])
    t = torch.tensor([3, 3, 4])  # the first two share their tail
    ent, rel = m.entity.weight, m.relation.weight

    def s(a, rr, b):
        return -(ent[a] + rel[rr] - ent[b]).norm(p=1, dim=-1)

    terms = []
    for i in range(3):
        for j in range(3):
            if t[j] != t[i]:  # tail side
                terms.append(torch.relu(5 - s(h[i], r[i], t[i])
                                        + s(h[i], r[i], t[j])))
    tail_side = torch.stack(terms).mean()
    terms = []
    for i in range(3):
        for j in range(3):
            if h[j] != h[i]:  # head side
                terms.append(torch.relu(5 - s(h[i], r[i], t[i])
                                        + s(h[j], r[i], t[i])))
    head_side = torch.stack(terms).mean()
    got = m.loss(TripleBatch(h, r, t))
    assert float(got) == pytest.approx(float(0.5 * (tail_side + head_side)),
                                       rel=1e-5)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match='p_norm must be 1 or 2'):
        TransE(E, R, D, p_norm=3)
    with pytest.raises(ValueError, match='loss must be one of'):
        TransE(E, R, D, loss='bpr')
    with pytest.raises(ValueError, match='needs entities and relations'):
        TransE(0, R, D)
    m = _model()
    with pytest.raises(ValueError, match=r'relation ids must lie in \[0, '
                       r'3\), got 0 \.\. 3'):
        m.score_tails(torch.tensor([0, 1]), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match='relation ids must lie'):
        m.loss(TripleBatch(torch.tensor([0]), torch.tensor([-1]),
                           torch.tensor([1])))


def test_entity_dropout_in_training_only():
    with pytest.raises(ValueError, match=r'dropout must lie in \[0, 1\)'):
        TransE(E, R, D, dropout=1.0)
    m = _model(p_norm=2, dropout=0.5)
    batch = _batch()
    torch.manual_seed(1)
    a = m.loss(batch)
    torch.manual_seed(2)
    b = m.loss(batch)
    assert not torch.allclose(a, b)  # masks drawn per step
    ref = _model(p_norm=2)  # same weights, no dropout
    m.eval()
    ref.eval()
    h, r = torch.tensor([0, 1]), torch.tensor([1, 2])
    with torch.no_grad():
        assert torch.equal(m.score_tails(h, r), ref.score_tails(h, r))
        assert torch.equal(m.ranking_tails(h, r), ref.ranking_tails(h, r))
    assert 'dropout=0.5' in repr(m)


def test_reset_parameters_draws_the_paper_init():
    m = _model(p_norm=2)
    m.entity.weight.data.fill_(100.0)
    m.reset_parameters()
    assert m.entity.weight.abs().max() <= 6 / D ** 0.5
    norms = m.relation.weight.norm(p=2, dim=-1)
    assert torch.allclose(norms, torch.ones(R))


class _Split:
    """A tiny KG completion split that translations can learn: a 6 x 6
    grid of entities, relation 0 one step right, relation 1 one step up
    (a 2-d TransE embeds it exactly); 80/10/10 of its 60 triples."""

    def __init__(self, n=6):
        g = torch.arange(n * n).view(n, n)
        zero = torch.zeros(n * (n - 1), dtype=torch.long)
        trip = torch.cat([
            torch.stack([g[:, :-1].reshape(-1), zero, g[:, 1:].reshape(-1)]),
            torch.stack([g[:-1].reshape(-1), zero + 1, g[1:].reshape(-1)])],
            1)
        perm = torch.randperm(trip.size(1),
                              generator=torch.Generator().manual_seed(0))
        trip = trip[:, perm]
        self.train, self.val, self.test = (trip[:, :48], trip[:, 48:54],
                                           trip[:, 54:])
        self.num_entities, self.num_relations = n * n, 2

    def part(self, name):
        return getattr(self, name)

    def filter_index(self):
        from pyg_recsys.ops.csr import CSR
        h, r, t = torch.cat([self.train, self.val, self.test], 1)
        R, N = self.num_relations, self.num_entities
        return (CSR.from_pairs(h * R + r, t, N * R, N),
                CSR.from_pairs(t * R + r, h, N * R, N))


@pytest.mark.parametrize('num_neg', [16, 0])
def test_training_beats_random_ranking(num_neg):
    split = _Split()
    torch.manual_seed(0)
    m = TransE(split.num_entities, 2, 4, p_norm=1)
    ev = KGEvaluator(split)
    before = ev(m, 'test')['mrr']
    loader = TripleLoader(split.train, split.num_entities, batch_size=16,
                          num_neg=num_neg)
    Trainer(m, loader, ev, optimizer=adam(m.parameters(), lr=0.05),
            epochs=60, eval_every=60, monitor='mrr', progress=False).fit()
    after = ev(m, 'test')['mrr']
    # random ranking of 36 entities: expected MRR about 0.12; the held-out
    # grid steps are found from the rest of the grid
    assert before < 0.2 and after > 0.3 and after > 3 * before, (
        before, after)


@pytest.mark.parametrize('kw', [dict(p_norm=1), dict(p_norm=2),
                                dict(p_norm=2, reciprocal=True)])
def test_evaluator_ranks_both_directions_filtered(kw):
    split = _Split()
    torch.manual_seed(0)
    m = TransE(split.num_entities, 2, 4, **kw)
    got = KGEvaluator(split, ks=(1, 10), batch_size=4)(m, 'test')
    known = {tuple(x) for x in torch.cat(
        [split.train, split.val, split.test], 1).t().tolist()}
    rr, hits10, rr_tail = [], [], []
    with torch.no_grad():
        for h, r, t in split.test.t().tolist():
            for side in ('tail', 'head'):
                cand = [(h, r, e) if side == 'tail' else (e, r, t)
                        for e in range(split.num_entities)]
                # every entity's exact score (tested against the formula
                # above; with reciprocal relations heads come from r^-1)
                s = (m.score_tails(torch.tensor([h]), torch.tensor([r]))
                     if side == 'tail' else
                     m.score_heads(torch.tensor([r]), torch.tensor([t])))[0]
                true = float(s[t if side == 'tail' else h])
                other = [float(s[e]) for e, c in enumerate(cand)
                         if c not in known]
                rank = 1 + sum(v > true + 1e-5 for v in other) + sum(
                    abs(v - true) <= 1e-5 for v in other) // 2
                rr.append(1 / rank)
                hits10.append(rank <= 10)
                if side == 'tail':
                    rr_tail.append(1 / rank)
    assert got['mrr'] == pytest.approx(sum(rr) / len(rr), abs=1e-6)
    assert got['hits@10'] == pytest.approx(sum(hits10) / len(hits10))
    assert got['mrr_tail'] == pytest.approx(sum(rr_tail) / len(rr_tail),
                                            abs=1e-6)
    # independent of the evaluation batch size
    assert KGEvaluator(split, ks=(1, 10), batch_size=1)(m, 'test') == \
        pytest.approx(got)
