import math

import pytest
import torch

from pyg_recsys.loss import (
    bce_loss,
    bpr_loss,
    info_nce,
    l2_reg,
    sampled_softmax_loss,
    softmax_ce_loss,
)


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_bpr_matches_formula():
    pos = torch.tensor([2.0, -1.0])
    neg = torch.tensor([0.5, 1.0])
    ref = -(math.log(_sig(1.5)) + math.log(_sig(-2.0))) / 2
    assert bpr_loss(pos, neg).item() == pytest.approx(ref, rel=1e-6)


def test_bpr_multiple_negatives_pairs_each_with_its_positive():
    pos = torch.tensor([1.0, 0.0])
    neg = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    ref = -sum(math.log(_sig(d)) for d in (1.0, -1.0, -1.0, 1.0)) / 4
    assert bpr_loss(pos, neg).item() == pytest.approx(ref, rel=1e-6)


def test_bpr_is_stable_for_large_margins():
    out = bpr_loss(torch.tensor([-200.0]), torch.tensor([200.0]))
    assert torch.isfinite(out) and out.item() == pytest.approx(400.0)


def test_bce_matches_formula():
    pos = torch.tensor([1.0, -0.5])
    neg = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    ref = 0.0
    for p, ns in zip(pos.tolist(), neg.tolist()):
        ref += -math.log(_sig(p)) - sum(math.log(1 - _sig(n)) for n in ns)
    assert bce_loss(pos, neg).item() == pytest.approx(ref / 2, rel=1e-6)


def test_softmax_ce_ignores_padding():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    target = torch.tensor([0, -100])
    ref = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert softmax_ce_loss(logits, target).item() == pytest.approx(ref)


def test_sampled_softmax_equals_full_softmax_when_all_items_sampled():
    torch.manual_seed(0)
    logits = torch.randn(4, 6)
    target = torch.tensor([0, 3, 5, 1])
    pos = logits[torch.arange(4), target]
    others = torch.stack([
        torch.cat([logits[r, :t], logits[r, t + 1:]])
        for r, t in enumerate(target.tolist())
    ])
    full = softmax_ce_loss(logits, target)
    assert sampled_softmax_loss(pos, others).item() == pytest.approx(
        full.item(), rel=1e-6)


def test_sampled_softmax_shared_negatives_and_logq():
    pos = torch.tensor([1.0, 2.0])
    neg = torch.tensor([0.5, -0.5])  # shared by both rows
    lq = torch.log(torch.tensor([0.25, 0.5]))
    out = sampled_softmax_loss(pos, neg, log_q_neg=lq, temperature=0.5)
    ref = 0.0
    for p in (1.0, 2.0):
        s = [p / 0.5, 0.5 / 0.5 - math.log(0.25), -0.5 / 0.5 - math.log(0.5)]
        ref += -(s[0] - math.log(sum(math.exp(x) for x in s)))
    assert out.item() == pytest.approx(ref / 2, rel=1e-6)


def test_l2_reg_halved_and_per_batch():
    a = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    b = torch.tensor([[3.0, 0.0], [0.0, 0.0]])
    assert l2_reg(a, b).item() == pytest.approx(0.5 * (6 + 9) / 2)
    assert l2_reg(a, batch_size=5).item() == pytest.approx(0.5 * 6 / 5)


def test_l2_reg_needs_a_tensor():
    with pytest.raises(ValueError, match='at least one embedding'):
        l2_reg()


def test_losses_backpropagate():
    pos = torch.randn(3, requires_grad=True)
    neg = torch.randn(3, 2, requires_grad=True)
    (bpr_loss(pos, neg) + bce_loss(pos, neg)).backward()
    assert pos.grad.abs().sum() > 0 and neg.grad.abs().sum() > 0


def test_info_nce_matches_loop_reference():
    torch.manual_seed(0)
    z1 = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    out = info_nce(z1, z2, temperature=0.3)

    def unit(rows):
        return [[v / math.sqrt(sum(w * w for w in r)) for v in r]
                for r in rows]

    a, b = unit(z1.tolist()), unit(z2.tolist())
    ref = 0.0
    for i in range(5):
        sims = [sum(p * q for p, q in zip(a[i], b[j])) / 0.3
                for j in range(5)]
        ref -= sims[i] - math.log(sum(math.exp(s) for s in sims))
    assert out.item() == pytest.approx(ref / 5, rel=1e-9)
    # one direction: swapping the views changes the value
    assert info_nce(z2, z1, 0.3).item() != pytest.approx(out.item())
    # scale-free: rows are normalised inside
    assert info_nce(3 * z1, 0.5 * z2, 0.3).item() == pytest.approx(
        out.item(), rel=1e-9)
    out.backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda p, q: info_nce(p, q, 0.3),
                                    (z1, z2))


def test_info_nce_errors():
    with pytest.raises(ValueError, match='info_nce: z1 and z2 must both'):
        info_nce(torch.randn(3, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match='temperature must be > 0'):
        info_nce(torch.randn(3, 2), torch.randn(3, 2), temperature=0.0)


def test_bpr_max_against_a_loop():
    from pyg_recsys.loss import bpr_max_loss
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(6, generator=g)
    neg = torch.randn(6, 5, generator=g)
    mask = torch.rand(6, 5, generator=g) > 0.3
    mask[2] = False  # a row without negatives is left out
    reg = 0.5
    rows = []
    for b in range(6):
        cols = [j for j in range(5) if mask[b, j]]
        if not cols:
            continue
        r = neg[b, cols]
        s = torch.softmax(r, 0)
        rows.append(-torch.log((s * torch.sigmoid(pos[b] - r)).sum())
                    + reg * (s * r ** 2).sum())
    expected = torch.stack(rows).mean()
    assert torch.allclose(bpr_max_loss(pos, neg, mask, reg=reg), expected)
    full = torch.stack([
        -torch.log((torch.softmax(neg[b], 0)
                    * torch.sigmoid(pos[b] - neg[b])).sum())
        for b in range(6)]).mean()
    assert torch.allclose(bpr_max_loss(pos, neg, reg=0.0), full)
    none = bpr_max_loss(pos, neg, torch.zeros_like(mask))
    assert float(none) == 0.0
    with pytest.raises(ValueError, match=r'expected pos \[B\] and neg'):
        bpr_max_loss(pos, neg[0])
