import pytest
import torch

from pyg_recsys.ops.csr import CSR
from pyg_recsys.sampling import PopularitySampler, UniformSampler


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
