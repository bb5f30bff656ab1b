import pytest
import torch
import torch.nn.functional as F

from pyg_recsys.data.loader import TripleBatch
from pyg_recsys.nn.models import MF, PairwiseRanker, TwHIN
from pyg_recsys.ops.csr import CSR
from pyg_recsys.schema import build_graph
from pyg_recsys.train import RankingEvaluator, Trainer, adam


def _graph(num_users=6, num_items=5):
    pairs = torch.tensor([[0, 0, 1, 2, 3, 4, 5], [0, 1, 1, 2, 3, 4, 0]])
    genre = torch.tensor([[0, 1, 2, 3, 4], [0, 0, 1, 1, 0]])
    return build_graph({'user': num_users, 'item': num_items, 'entity': 2},
                       {('user', 'interacts', 'item'): pairs,
                        ('item', 'genre', 'entity'): genre})


def test_tables_relations_and_the_score():
    torch.manual_seed(0)
    m = TwHIN(_graph(), 8)
    assert isinstance(m, PairwiseRanker)
    assert m.embedding.node_types == ['user', 'item', 'entity']
    assert m.num_relations == 2  # reverse types are not relations
    h, r, t = m.triples()
    assert h.numel() == 12
    e, rel = m.embedding.weight, m.relation.weight
    s = m.score_triples(h, r, t)
    for j in range(12):
        want = e[h[j]] @ (e[t[j]] + rel[r[j]])
        assert float(s[j]) == pytest.approx(float(want), abs=1e-6)
    # as a recommender: s(u, interacts, i)
    ui = m.relations.index(('user', 'interacts', 'item'))
    users = torch.tensor([0, 3])
    want = m.embedding['user'][users] @ (m.embedding['item']
                                         + rel[ui]).t()
    assert torch.allclose(m.score(users), want, atol=1e-6)
    seen = CSR.from_pairs(torch.tensor([0, 0]), torch.tensor([0, 1]), 6, 5)
    _, top = m.recommend(users, 3, exclude=seen)
    assert not {0, 1} & set(top[0].tolist())


def test_in_batch_loss_per_relation():
    torch.manual_seed(0)
    m = TwHIN(_graph(), 8)
    # two interactions and two genre links; the genre tails coincide
    h = torch.tensor([0, 1, 6, 7])
    r = torch.tensor([0, 0, 1, 1])
    t = torch.tensor([6, 7, 11, 11])
    loss = m.loss(TripleBatch(h, r, t))
    e, rel = m.embedding.weight, m.relation.weight

    def s(a, rr, b):
        return e[a] @ (e[b] + rel[rr])

    # row i: its tail against the same relation's other tails (a tail
    # equal to the true one left out)
    rows = [[s(0, 0, 6), s(0, 0, 7)], [s(1, 0, 7), s(1, 0, 6)],
            [s(6, 1, 11)], [s(7, 1, 11)]]
    want = sum(-F.log_softmax(torch.stack(x), 0)[0] for x in rows) / 4
    assert float(loss) == pytest.approx(float(want), rel=1e-5)
    loss.backward()
    assert m.relation.weight.grad.abs().sum() > 0  # relations are trained


def test_errors():
    with pytest.raises(TypeError, match='must be a HeteroData'):
        TwHIN(torch.zeros(2, 2))
    with pytest.raises(ValueError, match='has 6 user nodes but 7'):
        TwHIN(_graph(), 8, num_users=7)
    empty = build_graph({'user': 2, 'item': 2}, {
        ('user', 'interacts', 'item'): torch.zeros(2, 0, dtype=torch.long)})
    with pytest.raises(ValueError, match='no edges to train on'):
        TwHIN(empty)


def test_training_beats_popularity_and_initialises_mf():
    from pyg_recsys.data.interactions import Interactions
    from pyg_recsys.data.split import random_split
    from pyg_recsys.nn.models import Popularity
    gen = torch.Generator().manual_seed(0)
    items = torch.arange(40)
    pairs = []
    for u in range(60):
        liked = items[items % 2 == u % 2]
        pick = torch.randperm(20, generator=gen)[:8]
        pairs += [(u, int(i)) for i in liked[pick]]
    pairs = torch.tensor(pairs).t()
    split = random_split(Interactions(pairs[0], pairs[1]), (0.6, 0.2, 0.2))
    split.num_nodes['entity'] = 2
    split.side[('item', 'genre', 'entity')] = torch.stack([items,
                                                           items % 2])
    torch.manual_seed(0)
    m = TwHIN(split.graph(), 16)
    ev = RankingEvaluator(split, ks=(5,))
    Trainer(m, m.triple_loader(64), ev,
            optimizer=adam(m.parameters(), lr=0.02), epochs=30,
            eval_every=30, monitor='recall@5', progress=False).fit()
    got = ev(m, 'test')['recall@5']
    pop = ev(Popularity(60, 40, split.train), 'test')['recall@5']
    assert got > pop + 0.1, (got, pop)
    # pre-trained tables initialise another model's
    mf = MF(60, 40, embedding_dim=16)
    tables = m.node_embeddings()
    with torch.no_grad():
        mf.embedding['user'].copy_(tables['user'])
        mf.embedding['item'].copy_(tables['item'])
    assert torch.allclose(mf.embedding['item'], m.embedding['item'])
