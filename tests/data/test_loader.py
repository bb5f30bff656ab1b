import pytest
import torch

from pyg_recsys.data.loader import PairLoader
from pyg_recsys.ops.csr import CSR
from pyg_recsys.sampling import UniformSampler

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
        assert all(torch.equal(p, q) for p, q in zip(x, y))


def test_drop_last_and_no_shuffle():
    loader = _loader(batch_size=3, drop_last=True, shuffle=False)
    batches = list(loader)
    assert len(batches) == 2 == len(loader)
    assert batches[0].user.tolist() == [0, 0, 1]


def test_loader_errors():
    with pytest.raises(ValueError, match=r'shape \[2, E\]'):
        PairLoader(torch.zeros(3, 2), UniformSampler(2))
    with pytest.raises(ValueError, match='batch_size must be positive'):
        PairLoader(PAIRS, UniformSampler(6), batch_size=0)
