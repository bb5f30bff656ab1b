import pytest
import torch

from pyg_recsys.ops import topk as topk_module
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.topk import auto_batch_size, chunked_topk, masked_topk


def random_case(seed, num_users=12, num_items=9, density=0.4):
    gen = torch.Generator().manual_seed(seed)
    # distinct scores: a random permutation per row, so no ties
    scores = torch.stack([
        torch.randperm(num_items, generator=gen).float()
        for _ in range(num_users)
    ])
    mask = torch.rand(num_users, num_items, generator=gen) < density
    mask[0] = True  # a user with everything excluded
    mask[1, :-2] = True  # a user with only two items left
    rows, cols = mask.nonzero().t()
    exclude = CSR.from_pairs(rows, cols, num_users, num_items)
    return scores, exclude


def reference_topk(scores, k, users, exclude):
    """Plain per-row loop: drop excluded items, sort, pad with -1."""
    values, indices = [], []
    for b, u in enumerate(users.tolist()):
        banned = set(exclude.row(u).tolist()) if exclude is not None else ()
        kept = [(float(scores[b, i]), i) for i in range(scores.size(1))
                if i not in banned]
        kept.sort(key=lambda t: -t[0])
        kept = kept[:k] + [(float('-inf'), -1)] * (k - len(kept[:k]))
        values.append([v for v, _ in kept])
        indices.append([i for _, i in kept])
    return torch.tensor(values), torch.tensor(indices)


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('k', [1, 4, 9])
def test_masked_topk_matches_reference(seed, k):
    scores, exclude = random_case(seed)
    users = torch.randperm(scores.size(0), generator=torch.Generator()
                           .manual_seed(seed))
    rows = scores[users]
    ref_val, ref_idx = reference_topk(rows, k, users, exclude)
    val, idx = masked_topk(rows.clone(), k, users, exclude)
    assert torch.equal(idx, ref_idx)
    assert torch.equal(val, ref_val)


def test_masked_topk_masks_in_place_and_pads():
    scores = torch.tensor([[5., 4., 3., 2.], [1., 2., 3., 4.]])
    exclude = CSR.from_pairs(torch.tensor([0, 0, 0, 1]),
                             torch.tensor([0, 1, 3, 3]), 2, 4)
    val, idx = masked_topk(scores, 3, torch.tensor([0, 1]), exclude)
    inf = float('-inf')
    assert torch.equal(scores, torch.tensor([[inf, inf, 3., inf],
                                             [1., 2., 3., inf]]))
    assert idx.tolist() == [[2, -1, -1], [2, 1, 0]]
    assert val.tolist() == [[3., inf, inf], [3., 2., 1.]]


def test_masked_topk_pads_rows_of_minus_inf_scores():
    scores = torch.tensor([[float('-inf'), 1., float('-inf')]])
    val, idx = masked_topk(scores, 2, torch.tensor([0]), None)
    assert idx.tolist() == [[1, -1]]
    assert val.tolist() == [[1., float('-inf')]]


def test_masked_topk_non_contiguous_scores():
    scores, exclude = random_case(5)
    users = torch.arange(12)
    ref = reference_topk(scores, 4, users, exclude)
    view = scores.t().contiguous().t()  # same values, column-major
    assert not view.is_contiguous()
    val, idx = masked_topk(view, 4, users, exclude)
    assert torch.equal(idx, ref[1]) and torch.equal(val, ref[0])


def test_masked_topk_without_exclude_is_topk():
    scores, _ = random_case(3)
    val, idx = masked_topk(scores.clone(), 4, torch.arange(12), None)
    ref = torch.topk(scores, 4, dim=1)
    assert torch.equal(val, ref.values) and torch.equal(idx, ref.indices)


def test_masked_topk_ties_are_deterministic():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 3, (20, 50), generator=gen).float()
    exclude = CSR.from_pairs(torch.tensor([0, 5]), torch.tensor([1, 2]),
                             20, 50)
    users = torch.arange(20)
    first = masked_topk(scores.clone(), 10, users, exclude)
    second = masked_topk(scores.clone(), 10, users, exclude)
    assert torch.equal(first[0], second[0])
    assert torch.equal(first[1], second[1])
    # the values are the 10 largest, whatever the tie order
    masked = scores.clone()
    masked[0, 1] = masked[5, 2] = float('-inf')
    ref = masked.sort(dim=1, descending=True).values[:, :10]
    assert torch.equal(first[0], ref)
    assert torch.equal(masked.gather(1, first[1]), ref)


def test_masked_topk_errors():
    scores = torch.zeros(2, 3)
    users = torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r'masked_topk: k=4 must lie in'):
        masked_topk(scores, 4, users)
    with pytest.raises(ValueError, match=r'masked_topk: k=0 must lie in'):
        masked_topk(scores, 0, users)
    with pytest.raises(ValueError, match='scores must be 2-D'):
        masked_topk(torch.zeros(3), 1, users)
    with pytest.raises(ValueError, match='got 1 users for 2 score rows'):
        masked_topk(scores, 1, torch.tensor([0]))
    exclude = CSR.from_pairs(torch.tensor([0]), torch.tensor([0]), 2, 5)
    with pytest.raises(ValueError, match='exclude has num_cols=5'):
        masked_topk(scores, 1, users, exclude)


@pytest.mark.parametrize('batch_size', [1, 5, 12, 100])
def test_chunked_topk_matches_full(batch_size):
    scores, exclude = random_case(4)
    users = torch.tensor([3, 0, 7, 11, 1, 5, 5])
    seen = []

    def score_fn(u):
        seen.append(u.numel())
        return scores[u]  # advanced indexing: a fresh tensor

    val, idx = chunked_topk(score_fn, users, 4, exclude, batch_size)
    ref_val, ref_idx = reference_topk(scores[users], 4, users, exclude)
    assert torch.equal(idx, ref_idx) and torch.equal(val, ref_val)
    assert max(seen) <= batch_size and sum(seen) == users.numel()
    assert torch.equal(scores, random_case(4)[0])  # caller's matrix intact


@pytest.mark.parametrize('batch_size', [1, 3, None])
def test_chunked_topk_across_groups(monkeypatch, batch_size):
    # groups of 4 users, chunks of 3: chunks straddle group boundaries
    monkeypatch.setattr(topk_module, 'GROUP_USERS', 4)
    monkeypatch.setattr(topk_module, 'CHUNK_SCORES', 18)  # 2 users of 9
    scores, exclude = random_case(6)
    users = torch.tensor([4, 2, 0, 11, 9, 1, 1, 6, 3, 10, 8])
    seen = []

    def score_fn(u):
        seen.append(u.numel())
        return scores[u]

    val, idx = chunked_topk(score_fn, users, 5, exclude, batch_size)
    ref_val, ref_idx = reference_topk(scores[users], 5, users, exclude)
    assert torch.equal(idx, ref_idx) and torch.equal(val, ref_val)
    assert max(seen) == (batch_size or 2)


def test_auto_batch_size(monkeypatch):
    assert auto_batch_size(40981) == 102  # 2**22 // 40981
    assert auto_batch_size(1) == 2 ** 22
    assert auto_batch_size(10 ** 9) == 1
    # without exclude the item count is learnt from a first 64-user chunk
    monkeypatch.setattr(topk_module, 'CHUNK_SCORES', 18)
    scores, _ = random_case(7)
    users = torch.arange(100) % 12
    seen = []

    def score_fn(u):
        seen.append(u.numel())
        return scores[u]

    val, idx = chunked_topk(score_fn, users, 3)
    assert seen == [64] + [2] * 18
    ref = torch.topk(scores[users], 3, dim=1)
    assert torch.equal(idx, ref.indices)


def test_chunked_topk_empty_users():
    val, idx = chunked_topk(lambda u: torch.zeros(u.numel(), 5),
                            torch.empty(0, dtype=torch.long), 3)
    assert val.shape == (0, 3) and idx.shape == (0, 3)
    assert idx.dtype == torch.long


def test_chunked_topk_errors():
    users = torch.arange(3)
    with pytest.raises(ValueError, match='chunked_topk: batch_size must be'):
        chunked_topk(lambda u: torch.zeros(u.numel(), 4), users, 2,
                     batch_size=0)
    with pytest.raises(ValueError, match='chunked_topk: score_fn returned'):
        chunked_topk(lambda u: torch.zeros(4), users, 2)
    with pytest.raises(ValueError, match=r'chunked_topk: k=5 must lie in'):
        chunked_topk(lambda u: torch.zeros(u.numel(), 4), users, 5)
    exclude = CSR.from_pairs(torch.tensor([0]), torch.tensor([0]), 3, 5)
    with pytest.raises(ValueError, match=r'must return \[B, num_items=5\]'):
        chunked_topk(lambda u: torch.zeros(u.numel(), 4), users, 2, exclude)
