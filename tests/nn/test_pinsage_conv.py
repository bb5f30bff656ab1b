import pytest
import torch
from torch_geometric.nn import HeteroConv
from torch_geometric.typing import SparseTensor

from pyg_recsys.nn.conv import PinSageConv

# 5 source nodes, 3 destination nodes; dst 2 has no neighbour.
EDGES = [(0, 0, 3.0), (1, 0, 1.0), (4, 0, 2.0), (2, 1, 5.0), (3, 1, 1.0)]


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x_src = torch.randn(5, 4, generator=g, dtype=torch.float64)
    x_dst = torch.randn(3, 6, generator=g, dtype=torch.float64)
    ei = torch.tensor([[s for s, _, _ in EDGES], [d for _, d, _ in EDGES]])
    w = torch.tensor([a for _, _, a in EDGES], dtype=torch.float64)
    return x_src, x_dst, ei, w


def _dense(conv, x_src, x_dst, ei, w):
    """Algorithm 1 of the paper, node by node, with the given visit
    counts as importances."""
    Q, q = conv.lin_q.weight, conv.lin_q.bias
    W, b = conv.lin_w.weight, conv.lin_w.bias
    out = []
    for u in range(x_dst.size(0)):
        num = torch.zeros(conv.hidden_channels, dtype=x_src.dtype)
        den = 0.0
        for (v, d), a in zip(ei.t().tolist(), w.tolist()):
            if d == u:
                num = num + a * torch.relu(Q @ x_src[v] + q)
                den += a
        n = num / max(den, 1.0)
        z = torch.relu(W @ torch.cat([x_dst[u], n]) + b)
        norm = z.norm()
        out.append(z / norm if norm > 0 else z)
    return torch.stack(out)


def test_matches_algorithm_1_with_given_visit_counts():
    x_src, x_dst, ei, w = _inputs()
    torch.manual_seed(0)
    conv = PinSageConv((4, 6), 5, 7).double()
    out = conv((x_src, x_dst), ei, w)
    ref = _dense(conv, x_src, x_dst, ei, w)
    assert out.shape == (3, 7)
    assert torch.allclose(out, ref, atol=1e-12)
    nz = out.norm(dim=-1) > 0
    assert torch.allclose(out[nz].norm(dim=-1), torch.ones(int(nz.sum()),
                                                          dtype=out.dtype))
    # importance matters: equal weights give a different result
    assert not torch.allclose(conv((x_src, x_dst), ei), out)
    # without normalisation: z itself
    conv.normalize = False
    ref_z = _dense(conv, x_src, x_dst, ei, w)
    z = conv((x_src, x_dst), ei, w)
    assert torch.allclose(z / z.norm(dim=-1, keepdim=True).clamp(min=1e-30),
                          ref_z, atol=1e-12)


def test_sparse_path_and_gradients_agree_with_the_edge_list():
    x_src, x_dst, ei, w = _inputs(1)
    torch.manual_seed(1)
    conv = PinSageConv((4, 6), 5, 7).double()
    xs1 = x_src.clone().requires_grad_()
    out1 = conv((xs1, x_dst), ei, w)
    (out1 * torch.arange(21.).view(3, 7)).sum().backward()
    g1 = xs1.grad.clone()
    gq1 = conv.lin_q.weight.grad.clone()
    conv.zero_grad()
    adj = SparseTensor(row=ei[1], col=ei[0], value=w, sparse_sizes=(3, 5))
    xs2 = x_src.clone().requires_grad_()
    out2 = conv((xs2, x_dst), adj)
    (out2 * torch.arange(21.).view(3, 7)).sum().backward()
    assert torch.allclose(out1, out2, atol=1e-12)
    assert torch.allclose(g1, xs2.grad, atol=1e-12)
    assert torch.allclose(gq1, conv.lin_q.weight.grad, atol=1e-12)
    assert g1.abs().sum() > 0


def test_homogeneous_input_reset_dropout_repr_and_errors():
    x = torch.randn(5, 4)
    ei = torch.tensor([[0, 1, 2], [1, 2, 3]])
    conv = PinSageConv(4, 8, 3, dropout=0.5)
    assert conv(x, ei).shape == (5, 3)
    conv.eval()
    a = conv(x, ei)
    assert torch.equal(a, conv(x, ei))  # no dropout in eval
    before = conv.lin_q.weight.clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.lin_q.weight)
    assert repr(conv) == 'PinSageConv((4, 4), 8, 3, normalize=True)'
    with pytest.raises(ValueError, match='channel sizes must be >= 1'):
        PinSageConv(4, 0, 3)
    with pytest.raises(ValueError, match='dropout must lie in'):
        PinSageConv(4, 4, 3, dropout=1.0)


@pytest.mark.filterwarnings('ignore:There exist node types')
def test_composes_with_hetero_conv():
    conv = HeteroConv({('item', 'near', 'item'): PinSageConv(4, 4, 4),
                       ('user', 'to', 'item'): PinSageConv((3, 4), 4, 4)},
                      aggr='sum')
    x = {'item': torch.randn(6, 4), 'user': torch.randn(2, 3)}
    ei = {('item', 'near', 'item'): torch.tensor([[0, 1], [2, 3]]),
          ('user', 'to', 'item'): torch.tensor([[0, 1], [4, 5]])}
    out = conv(x, ei)
    assert out['item'].shape == (6, 4)
