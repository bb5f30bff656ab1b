import pytest
import torch

from pyg_recsys.data.loader import PairLoader
from pyg_recsys.nn.models import MF
from pyg_recsys.ops.csr import CSR
from pyg_recsys.sampling import (
    CurriculumSampler,
    InBatchSampler,
    Negatives,
    PopularitySampler,
    PPRHardSampler,
    SharedSampler,
    UniformSampler,
    ppr_candidates,
)
from pyg_recsys.testing import clustered_split, popularity_metrics
from pyg_recsys.train import RankingEvaluator, Trainer, seed_everything


def _known():
    # user 0 knows 8 of 10 items; user 1 knows one; user 2 none
    rows = torch.tensor([0] * 8 + [1])
    cols = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 9])
    return CSR.from_pairs(rows, cols, 3, 10)


def test_uniform_never_returns_a_known_positive():
    known = _known()
    s = UniformSampler(10, exclude=known)
    gen = torch.Generator().manual_seed(0)
    users = torch.tensor([0, 1, 2]).repeat(500)
    neg = s.sample(users, num=3, generator=gen)
    assert neg.shape == (1500, 3)
    for u, row in zip(users.tolist(), neg.tolist()):
        assert not set(row) & set(known.row(u).tolist())
    # user 0 can only get items 8 and 9, both of them
    assert set(neg[users == 0].view(-1).tolist()) == {8, 9}
    # user 2 (no positives) covers all items: sampling is not restricted
    assert set(neg[users == 2].view(-1).tolist()) == set(range(10))


def test_uniform_is_roughly_uniform_and_seeded():
    s = UniformSampler(4)
    a = s.sample(torch.zeros(40000, dtype=torch.long),
                 generator=torch.Generator().manual_seed(1))
    b = s.sample(torch.zeros(40000, dtype=torch.long),
                 generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    freq = torch.bincount(a, minlength=4).float() / 40000
    assert torch.allclose(freq, torch.full((4,), 0.25), atol=0.01)


def test_sampler_errors():
    with pytest.raises(ValueError, match='num_items must be positive'):
        UniformSampler(0)
    full = CSR.from_pairs(torch.tensor([0, 0]), torch.tensor([0, 1]), 1, 2)
    with pytest.raises(ValueError, match='user 0 has interacted with every'):
        UniformSampler(2, exclude=full)
    with pytest.raises(ValueError, match='exclude has 2 item columns'):
        UniformSampler(3, exclude=full)
    with pytest.raises(ValueError, match='no positive entry'):
        PopularitySampler(torch.zeros(3))


def test_rejection_gives_up_with_a_clear_error():
    # 1 free item out of a huge catalogue: never found within 1 round
    known = CSR.from_pairs(torch.zeros(999, dtype=torch.long),
                           torch.arange(999), 1, 1000)
    s = UniformSampler(1000, exclude=known, max_rounds=1)
    with pytest.raises(RuntimeError, match='could not draw negatives'):
        s.sample(torch.zeros(50, dtype=torch.long),
                 generator=torch.Generator().manual_seed(0))


def test_popularity_follows_count_power_alpha_and_excludes():
    count = torch.tensor([1.0, 4.0, 9.0, 0.0])
    s = PopularitySampler(count, alpha=0.5)
    expect = torch.tensor([1.0, 2.0, 3.0, 0.0]) / 6
    assert torch.allclose(s.prob.float(), expect)
    draw = s.sample(torch.zeros(60000, dtype=torch.long),
                    generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draw, minlength=4).float() / 60000
    assert torch.allclose(freq, expect, atol=0.01)
    assert torch.allclose(s.log_prob(torch.tensor([2])),
                          expect[2:3].log())
    known = CSR.from_pairs(torch.tensor([0]), torch.tensor([2]), 1, 4)
    s2 = PopularitySampler(count, alpha=0.5, exclude=known)
    draw = s2.sample(torch.zeros(3000, dtype=torch.long),
                     generator=torch.Generator().manual_seed(0))
    assert set(draw.tolist()) == {0, 1}


# Shared and in-batch negatives ###############################################


def test_shared_sampler_masks_known_positives_and_own_positive():
    known = _known()
    s = SharedSampler(UniformSampler(10, exclude=known))
    user = torch.tensor([0, 1, 2, 2])
    pos = torch.tensor([0, 9, 3, 5])  # user 2 has no known positives
    out = s.negatives(user, pos, 40, torch.Generator().manual_seed(0))
    assert isinstance(out, Negatives) and out.shared
    assert out.neg.shape == (40,) and out.neg_mask.shape == (4, 40)
    for b, u in enumerate(user.tolist()):
        for j, item in enumerate(out.neg.tolist()):
            bad = item in known.row(u).tolist() or item == pos[b].item()
            assert bool(out.neg_mask[b, j]) == (not bad)
    # drawn from the base distribution, ignoring exclusion (user 0 only
    # allows items 8 and 9, yet the shared set covers the catalogue)
    assert len(set(out.neg.tolist())) > 5
    again = s.negatives(user, pos, 40, torch.Generator().manual_seed(0))
    assert torch.equal(again.neg, out.neg)
    # popularity base: items with count 0 never drawn
    pop = SharedSampler(PopularitySampler(torch.tensor([0., 1., 1., 0.])))
    out = pop.negatives(torch.tensor([0]), torch.tensor([1]), 200,
                        torch.Generator().manual_seed(0))
    assert set(out.neg.tolist()) == {1, 2}
    assert torch.equal(out.neg_mask[0], out.neg != 1)


def test_in_batch_sampler_uses_other_positives():
    known = _known()
    s = InBatchSampler(exclude=known)
    user = torch.tensor([2, 1, 2, 0])
    pos = torch.tensor([4, 9, 4, 8])
    out = s.negatives(user, pos)
    assert out.shared and torch.equal(out.neg, pos)
    expect = torch.tensor([
        [0, 1, 0, 1],  # user 2: pos 4; item 4 again is its own positive
        [1, 0, 1, 1],  # user 1 knows 9 only
        [0, 1, 0, 1],
        [0, 1, 0, 0],  # user 0 knows 4, and 8 is its positive
    ], dtype=torch.bool)
    assert torch.equal(out.neg_mask, expect)
    # without exclude only the diagonal and repeats of the positive
    plain = InBatchSampler().negatives(user, pos).neg_mask
    assert torch.equal(plain, pos.view(1, -1) != pos.view(-1, 1))


def test_batch_sampler_errors():
    with pytest.raises(TypeError, match='base must be a NegativeSampler'):
        SharedSampler(10)
    s = SharedSampler(UniformSampler(10))
    with pytest.raises(ValueError, match='SharedSampler: num must be'):
        s.negatives(torch.tensor([0]), torch.tensor([0]), 0)
    with pytest.raises(ValueError, match='InBatchSampler: num must be 1'):
        InBatchSampler().negatives(torch.tensor([0]), torch.tensor([0]), 2)


# PPR hard negatives ##########################################################

# 5 users, 10 items (6, 7, 9 unconnected): exact PPR ranks of the
# non-positive items have gaps of > 20% around ranks 1 and 3 for every user.
HARD_PAIRS = torch.tensor([[0, 1], [0, 4], [1, 1], [1, 4], [1, 8], [2, 0],
                           [2, 1], [2, 2], [2, 3], [3, 2], [3, 3], [3, 5],
                           [4, 1], [4, 3], [4, 4], [4, 8]]).t()


def _hard_train():
    return CSR.from_pairs(HARD_PAIRS[0], HARD_PAIRS[1], 5, 10)


def _exact_window(train, alpha, lo, hi):
    """Items at ranks [lo, hi) of power-iteration PPR, positives removed."""
    U, num_items = train.num_rows, train.num_cols
    N = U + num_items
    A = torch.zeros(N, N, dtype=torch.float64)
    A[train.rows(), train.col + U] = 1
    A = A + A.t()
    P = A / A.sum(1, keepdim=True).clamp(min=1)
    E = torch.eye(N, dtype=torch.float64)[:U]
    pi = E.clone()
    for _ in range(300):
        pi = alpha * E + (1 - alpha) * pi @ P
    out = []
    for u in range(U):
        score = pi[u, U:].clone()
        score[train.row(u)] = -1
        order = score.argsort(descending=True)
        out.append(sorted(i for i in order[lo:hi].tolist() if score[i] > 0))
    return out


def test_ppr_candidates_are_the_exact_ppr_rank_window():
    train = _hard_train()
    pool = ppr_candidates(train, (1, 3), num_walks=20000, restart_prob=0.3,
                          generator=torch.Generator().manual_seed(0))
    exact = _exact_window(train, 0.3, 1, 3)
    assert [pool.row(u).tolist() for u in range(5)] == exact
    assert all(len(e) == 2 for e in exact)
    # chunking over users (a few walkers per chunk) changes nothing but RNG
    chunked = ppr_candidates(train, (1, 3), num_walks=20000,
                             restart_prob=0.3, max_walkers=20000,
                             generator=torch.Generator().manual_seed(1))
    assert [chunked.row(u).tolist() for u in range(5)] == exact
    # a window past the reachable items is cut short or empty
    far = ppr_candidates(train, (3, 50), num_walks=20000, restart_prob=0.3,
                         generator=torch.Generator().manual_seed(0))
    for u in range(5):
        reach = _exact_window(train, 0.3, 3, 50)[u]
        assert far.row(u).tolist() == reach


def test_ppr_hard_sampler_draws_from_the_pool_never_positives():
    train = _hard_train()
    s = PPRHardSampler(train, rank_range=(1, 3), num_walks=2000,
                       restart_prob=0.3, seed=0)
    users = torch.arange(5).repeat(200)
    neg = s.sample(users, 3, torch.Generator().manual_seed(0))
    assert neg.shape == (1000, 3)
    for u in range(5):
        drawn = set(neg[users == u].view(-1).tolist())
        assert drawn == set(s.pool.row(u).tolist())
        assert not drawn & set(train.row(u).tolist())
    again = s.sample(users, 3, torch.Generator().manual_seed(0))
    assert torch.equal(neg, again)
    assert s.sample(users[:4], 1, torch.Generator()).shape == (4,)
    # empty pools fall back to uniform, still never a known positive
    empty = PPRHardSampler(train, rank_range=(8, 10), num_walks=50)
    assert empty.pool.nnz == 0
    neg = empty.sample(users, 2, torch.Generator().manual_seed(0))
    for u, row in zip(users.tolist(), neg.tolist()):
        assert not set(row) & set(train.row(u).tolist())
    assert set(neg[users == 0].view(-1).tolist()) == set(range(10)) - {1, 4}
    assert 'candidates per user' in repr(s)


def test_ppr_errors():
    train = _hard_train()
    with pytest.raises(ValueError, match=r'rank_range must be \(lo, hi\)'):
        ppr_candidates(train, (3, 3))
    with pytest.raises(ValueError, match='num_walks must be positive'):
        ppr_candidates(train, num_walks=0)
    with pytest.raises(ValueError, match='exclude is 5 x 9 but train is'):
        ppr_candidates(train, exclude=CSR.from_pairs(
            torch.tensor([0]), torch.tensor([0]), 5, 9))


# Curriculum ##################################################################


def test_curriculum_adds_one_hard_negative_per_epoch():
    train = _hard_train()
    hard = PPRHardSampler(train, rank_range=(1, 3), num_walks=2000,
                          restart_prob=0.3)
    s = CurriculumSampler(UniformSampler(10, exclude=train), hard,
                          max_hard=3)
    assert [s.num_hard(e) for e in range(7)] == [0, 0, 1, 2, 3, 3, 3]
    user = torch.arange(5).repeat(20)
    for epoch in (1, 2, 5):
        s.set_epoch(epoch)
        neg = s.negatives(user, user, 1, torch.Generator().manual_seed(0))
        h = min(epoch - 1, 3)
        assert neg.neg.shape == (100, 1 + h) and neg.neg_mask is None
        for u, row in zip(user.tolist(), neg.neg.tolist()):
            assert not set(row) & set(train.row(u).tolist())
            assert set(row[1:]) <= set(hard.pool.row(u).tolist())
    with pytest.raises(ValueError, match='max_hard must be >= 0'):
        CurriculumSampler(hard, hard, max_hard=-1)


def test_curriculum_follows_the_loader_epoch_and_replays():
    train = _hard_train()
    hard = PPRHardSampler(train, rank_range=(1, 3), num_walks=500)
    s = CurriculumSampler(UniformSampler(10, exclude=train), hard,
                          max_hard=2)
    loader = PairLoader(HARD_PAIRS, s, batch_size=6, num_neg=2, seed=1)
    shapes = []
    for epoch in (1, 2, 3, 4):
        loader.set_epoch(epoch)
        shapes.append(next(iter(loader)).neg.shape[1])
    assert shapes == [2, 3, 4, 4]
    loader.set_epoch(3)
    a = [b.neg for b in loader]
    s.set_epoch(1)  # the loader, not a stale sampler epoch, decides
    loader.set_epoch(3)
    assert all(torch.equal(x, b.neg) for x, b in zip(a, loader))


# Training with each sampler ##################################################


def _fit(sampler, num_neg=1, pair_loss='bpr', epochs=20):
    split = clustered_split()
    seed_everything(0)
    model = MF(split.num_users, split.num_items, embedding_dim=32,
               pair_loss=pair_loss)
    loader = PairLoader(split.train, sampler(split), batch_size=256,
                        num_neg=num_neg, seed=0)
    result = Trainer(model, loader, RankingEvaluator(split), lr=0.05,
                     epochs=epochs, eval_every=epochs, monitor='recall@20',
                     progress=False).fit()
    losses = [r['loss'] for r in result['epochs']]
    return losses, result['test']['recall@20'], popularity_metrics(
        split)['recall@20']


def _uniform(split):
    return UniformSampler(split.num_items, exclude=split.csr('train'))


def _hard(split, seed=0):
    return PPRHardSampler(split.csr('train'), rank_range=(5, 30),
                          num_walks=64, seed=seed)


@pytest.mark.parametrize('name,make,num_neg,pair_loss', [
    ('shared', lambda s: SharedSampler(_uniform(s)), 16, 'bpr'),
    ('in_batch', lambda s: InBatchSampler(s.csr('train')), 1, 'softmax'),
    ('ppr_hard', _hard, 1, 'bpr'),
    ('curriculum', lambda s: CurriculumSampler(_uniform(s), _hard(s), 2), 1,
     'bpr'),
])
def test_training_with_each_sampler_beats_popularity(name, make, num_neg,
                                                     pair_loss):
    # recall@20 after 20 epochs: uniform 0.81, shared 0.81, in-batch
    # (softmax) 0.73, PPR hard 0.84, curriculum 0.81; popularity 0.33
    losses, recall, pop = _fit(make, num_neg, pair_loss)
    assert losses[-1] < 0.5 * losses[0]
    assert recall > pop + 0.1, (name, recall, pop)
