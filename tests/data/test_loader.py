import pytest
import torch

from pyg_recsys.data.loader import (
    LinkNeighborPairLoader,
    PairBatch,
    PairLoader,
)
from pyg_recsys.data.session import SessionGraphs, SessionLoader
from pyg_recsys.ops.csr import CSR
from pyg_recsys.sampling import (
    CurriculumSampler,
    InBatchSampler,
    SharedSampler,
    UniformSampler,
)

PAIRS = torch.tensor([[0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 2, 0, 3, 4]])


def _loader(**kw):
    known = CSR.from_pairs(PAIRS[0], PAIRS[1], 3, 6)
    return PairLoader(PAIRS, UniformSampler(6, exclude=known), **kw)


def test_covers_every_pair_once_per_epoch_with_valid_negatives():
    loader = _loader(batch_size=3)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(b) for b in batches] == [3, 3, 1]
    seen = sorted(zip(torch.cat([b.user for b in batches]).tolist(),
                      torch.cat([b.pos for b in batches]).tolist()))
    assert seen == sorted(zip(*PAIRS.tolist()))
    for b in batches:
        for u, n in zip(b.user.tolist(), b.neg.tolist()):
            assert (u, n) not in set(zip(*PAIRS.tolist()))


def test_epochs_differ_and_replay_exactly():
    loader = _loader(batch_size=4, num_neg=2, seed=3)
    loader.set_epoch(1)
    a = list(loader)
    loader.set_epoch(2)
    b = list(loader)
    loader.set_epoch(1)
    c = list(loader)
    assert a[0].neg.shape == (4, 2)
    assert not all(torch.equal(x.user, y.user) for x, y in zip(a, b))
    for x, y in zip(a, c):
        assert x.neg_mask is None and x.shared is False
        assert all(torch.equal(p, q) for p, q in zip(x[:3], y[:3]))


def test_drop_last_and_no_shuffle():
    loader = _loader(batch_size=3, drop_last=True, shuffle=False)
    batches = list(loader)
    assert len(batches) == 2 == len(loader)
    assert batches[0].user.tolist() == [0, 0, 1]


def test_loader_errors():
    with pytest.raises(ValueError, match=r'PairLoader: pairs must have '
                       r'shape \[2, n\] with n > 0'):
        PairLoader(torch.zeros(3, 2), UniformSampler(2))
    with pytest.raises(ValueError, match=r'with n > 0, got \[2, 0\]'):
        PairLoader(torch.zeros(2, 0), UniformSampler(2))
    with pytest.raises(ValueError, match='batch_size must be positive'):
        PairLoader(PAIRS, UniformSampler(6), batch_size=0)


def test_shared_and_in_batch_negatives_come_with_a_mask_and_replay():
    known = CSR.from_pairs(PAIRS[0], PAIRS[1], 3, 6)
    for sampler, num, n in ((SharedSampler(UniformSampler(6, known)), 5, 5),
                            (InBatchSampler(known), 1, 4)):
        loader = _loader(batch_size=4, num_neg=num, seed=2)
        loader.sampler = sampler
        loader.set_epoch(2)
        a, b = list(loader), list(loader)
        first = a[0]
        assert isinstance(first, PairBatch) and first.shared is True
        assert first.neg.shape == (n,) and first.neg_mask.shape == (4, n)
        for x, y in zip(a, b):
            assert torch.equal(x.neg, y.neg)
            assert torch.equal(x.neg_mask, y.neg_mask)
        for x in a:  # masked exactly where the item is a known positive
            hit = known.contains(x.user.view(-1, 1),
                                 x.neg.view(1, -1).expand_as(x.neg_mask))
            assert torch.equal(x.neg_mask, ~hit)


def test_loader_gives_its_epoch_to_the_sampler():
    known = CSR.from_pairs(PAIRS[0], PAIRS[1], 3, 6)
    s = CurriculumSampler(UniformSampler(6, known), UniformSampler(6, known),
                          max_hard=5)
    loader = PairLoader(PAIRS, s, batch_size=7)
    loader.set_epoch(4)
    assert next(iter(loader)).neg.shape == (7, 4) and s.epoch == 4


def test_a_sampler_with_only_sample_still_works():
    class Fixed:
        def sample(self, users, num, generator=None):
            return torch.full((users.numel(), ), 5)

    batch = next(iter(PairLoader(PAIRS, Fixed(), batch_size=2)))
    assert batch.neg.tolist() == [5, 5] and batch.neg_mask is None


def test_shards_are_slices_of_the_same_global_batches():
    pairs = torch.stack([torch.arange(12) % 4, torch.arange(12) % 7])
    seen = CSR.from_pairs(pairs[0], pairs[1], 4, 9)

    def make():
        return PairLoader(pairs, UniformSampler(9, exclude=seen),
                          batch_size=5, num_neg=2, seed=3)

    whole = list(make())
    parts = [list(make().shard(r, 2)) for r in range(2)]
    assert len(parts[0]) == len(parts[1]) == len(whole) == 3
    for b, full in enumerate(whole):
        a, c = parts[0][b], parts[1][b]
        for field in ('user', 'pos', 'neg'):
            joined = torch.cat([getattr(a, field), getattr(c, field)])
            assert torch.equal(joined, getattr(full, field))
        # shares of 5 pairs are 2 and 3 (of the last 2: 1 and 1); the
        # scales average to 1
        n = full.user.numel()
        assert a.loss_scale == pytest.approx(a.user.numel() * 2 / n)
        assert (a.loss_scale + c.loss_scale) / 2 == pytest.approx(1.0)
    assert whole[0].loss_scale == 1.0


def test_shard_errors():
    pairs = torch.stack([torch.arange(5), torch.arange(5)])
    loader = PairLoader(pairs, UniformSampler(9), batch_size=4)
    with pytest.raises(ValueError, match=r'rank must lie in \[0, 2\)'):
        loader.shard(2, 2)
    # the last batch holds one pair: nothing left for 3 of 4 processes
    with pytest.raises(ValueError, match='a batch of 1 examples leaves '
                       'nothing to some of the 4 processes'):
        loader.shard(0, 4)
    loader.drop_last = True  # one batch of 4: one pair each
    assert [b.user.numel() for b in loader.shard(3, 4)] == [1]
    sessions = SessionGraphs([[1, 2, 3]] * 3, num_items=5)  # 6 prefixes
    with pytest.raises(ValueError, match='SessionLoader.shard: a batch of '
                       '6 examples'):
        SessionLoader(sessions, batch_size=8).shard(1, 8)
    with pytest.raises(ValueError, match='cannot be sharded'):
        LinkNeighborPairLoader.shard(None, 0, 2)
    # shared and in-batch negatives cannot be split exactly; one process
    # is fine
    seen = CSR.from_pairs(pairs[0], pairs[1], 5, 9)
    for sampler in (SharedSampler(UniformSampler(9, exclude=seen)),
                    InBatchSampler(seen)):
        loader = PairLoader(pairs, sampler, batch_size=4)
        with pytest.raises(ValueError, match=f'{type(sampler).__name__} '
                           'shares its negatives across the batch'):
            loader.shard(0, 2)
        assert loader.shard(0, 1) is loader


def test_loader_on_a_device_keeps_its_stream():
    # .to() (here the CPU again) leaves the batches as they were
    pairs = torch.stack([torch.arange(20) % 5, torch.arange(20) % 8])
    seen = CSR.from_pairs(pairs[0], pairs[1], 5, 8)
    a = PairLoader(pairs, UniformSampler(8, exclude=seen), batch_size=6)
    b = PairLoader(pairs, UniformSampler(8, exclude=seen), batch_size=6,
                   device='cpu')
    for x, y in zip(a, b):
        assert torch.equal(x.neg, y.neg) and torch.equal(x.user, y.user)
        assert not seen.contains(x.user, x.neg).any()


def test_triple_loader_batches_and_negatives():
    from pyg_recsys.data.loader import TripleLoader
    triples = torch.stack([torch.arange(10), torch.arange(10) % 3,
                           (torch.arange(10) + 1) % 10])
    loader = TripleLoader(triples, 12, batch_size=4, num_neg=5, seed=1)
    batches = list(loader)
    assert [b.head.numel() for b in batches] == [4, 4, 2] == [
        len(b) for b in batches]
    seen = torch.cat([torch.stack([b.head, b.relation, b.tail])
                      for b in batches], 1)
    # every triple once, as given
    key = seen[0] * 100 + seen[1] * 10 + seen[2]
    want = triples[0] * 100 + triples[1] * 10 + triples[2]
    assert sorted(key.tolist()) == sorted(want.tolist())
    for b in batches:
        assert b.neg_head.shape == b.neg_tail.shape == (b.head.numel(), 5)
        assert 0 <= int(b.neg_head.min()) and int(b.neg_tail.max()) < 12
    # the epoch's stream: same epoch same batches, next epoch others
    again = list(loader)
    assert torch.equal(again[0].neg_tail, batches[0].neg_tail)
    loader.set_epoch(1)
    assert not torch.equal(next(iter(loader)).neg_tail, batches[0].neg_tail)
    # in-batch: no negatives drawn
    inb = next(iter(TripleLoader(triples, 12, batch_size=4, num_neg=0)))
    assert inb.neg_head is None and inb.neg_tail is None
    # shards are slices of the global batches
    whole = list(TripleLoader(triples, 12, batch_size=4, num_neg=2))
    parts = [list(TripleLoader(triples, 12, batch_size=4,
                               num_neg=2).shard(r, 2)) for r in range(2)]
    for b, full in enumerate(whole):
        for field in ('head', 'neg_tail'):
            joined = torch.cat([getattr(parts[0][b], field),
                                getattr(parts[1][b], field)])
            assert torch.equal(joined, getattr(full, field))


def test_triple_loader_errors():
    from pyg_recsys.data.loader import TripleLoader
    good = torch.tensor([[0, 1], [0, 0], [1, 2]])
    with pytest.raises(ValueError, match=r'shape \[3, n\] with n > 0'):
        TripleLoader(torch.zeros(2, 5, dtype=torch.long), 3)
    with pytest.raises(ValueError, match=r'shape \[3, n\] with n > 0'):
        TripleLoader(torch.zeros(3, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match='entity ids must lie in'):
        TripleLoader(good, 2)
    with pytest.raises(ValueError, match='batch_size must be positive'):
        TripleLoader(good, 3, batch_size=0)
    with pytest.raises(ValueError, match='in-batch and shared negatives'):
        TripleLoader(good, 3, batch_size=2, num_neg=0).shard(0, 2)
    with pytest.raises(ValueError, match='in-batch and shared negatives'):
        TripleLoader(good, 3, batch_size=2, shared=True).shard(0, 2)


def test_click_loader_batches_and_errors():
    from pyg_recsys.data.loader import ClickLoader, TripleLoader
    rows = torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [1, 0, 1, 0, 1]])
    loader = ClickLoader(rows, batch_size=2, drop_last=True, seed=3)
    batches = list(loader)
    assert len(loader) == len(batches) == 2  # the last row dropped
    seen = torch.cat([b.user for b in batches])
    assert len(set(seen.tolist())) == 4
    for b in batches:  # columns stay together; labels are floats
        assert torch.equal(b.item, b.user + 5)
        assert b.label.dtype == torch.float32
    assert [b.user.tolist() for b in loader] == [
        b.user.tolist() for b in batches]  # same epoch, same order
    with pytest.raises(ValueError, match=r'ClickLoader: rows \(user, item, '
                       r'label\) must have shape \[3, n\]'):
        ClickLoader(rows[:2])
    with pytest.raises(ValueError, match='batch_size must be positive'):
        ClickLoader(rows, batch_size=0)
    with pytest.raises(ValueError, match='num_neg must be >= 0'):
        TripleLoader(rows, 10, num_neg=-1)
