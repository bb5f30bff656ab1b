import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import HeteroConv

from pyg_recsys import typing as pt
from pyg_recsys.nn.conv import NGCFConv
from pyg_recsys.ops.adj import NormAdj
from pyg_recsys.testing import needs

needs_torch_sparse = needs('torch_sparse')

NU, NI = 3, 4
EDGES = torch.tensor([[0, 0, 1, 1, 2, 2],
                      [0, 1, 1, 2, 0, 3]])
N = NU + NI
FULL = torch.cat([torch.stack([EDGES[0], EDGES[1] + NU]),
                  torch.stack([EDGES[1] + NU, EDGES[0]])], dim=1)


def dense_prop(edges, weight, n_src, n_dst):
    """[n_dst, n_src] matrix of p_ji = w_ji / sqrt(deg_out(j) deg_in(i))."""
    M = torch.zeros(n_dst, n_src, dtype=torch.float64)
    M.index_put_((edges[1], edges[0]), weight.double(), accumulate=True)
    d_in, d_out = M.sum(1), M.sum(0)
    inv_in = torch.where(d_in > 0, d_in.pow(-0.5), torch.zeros_like(d_in))
    inv_out = torch.where(d_out > 0, d_out.pow(-0.5), torch.zeros_like(d_out))
    return inv_in[:, None] * M * inv_out[None, :]


def dense_laplacian():
    return dense_prop(FULL, torch.ones(FULL.size(1)), N, N)


def dense_ngcf(L, x_src, x_dst, W1, b1, W2, b2):
    """Paper Eq. 7: LeakyReLU((L + I) E W1 + (L E * E) W2 + b1 + b2)."""
    side = L @ x_src
    out = (side + x_dst) @ W1 + b1 + (side * x_dst) @ W2 + b2
    return F.leaky_relu(out, 0.2)


def params(conv):
    return (conv.lin_gc.weight.t(), conv.lin_gc.bias,
            conv.lin_bi.weight.t(), conv.lin_bi.bias)


def make(in_channels=4, out_channels=3, **kwargs):
    torch.manual_seed(0)
    return NGCFConv(in_channels, out_channels, **kwargs).double()


def test_matches_dense_matrix_form_with_gradients():
    conv = make()
    torch.manual_seed(1)
    x = torch.randn(N, 4, dtype=torch.float64, requires_grad=True)
    out = conv(x, FULL)
    assert out.shape == (N, 3)
    # reference parameters: leaves copied from the layer
    ref_p = [p.detach().clone().requires_grad_() for p in params(conv)]
    ref_x = x.detach().clone().requires_grad_()
    L = dense_laplacian()
    # the symmetric Laplacian is 1 / sqrt(|N_u| |N_i|) on every edge
    deg = torch.bincount(FULL[0], minlength=N).double()
    assert torch.allclose(L[FULL[1], FULL[0]],
                          (deg[FULL[0]] * deg[FULL[1]]).pow(-0.5))
    ref = dense_ngcf(L, ref_x, ref_x, *ref_p)
    assert torch.allclose(out, ref)
    # negative pre-activations exist, so LeakyReLU's slope is tested too
    assert (ref < 0).any()
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    assert torch.allclose(x.grad, ref_x.grad)
    # W = weight.t(): compare with the transposed reference gradients
    assert torch.allclose(conv.lin_gc.weight.grad, ref_p[0].grad.t())
    assert torch.allclose(conv.lin_bi.weight.grad, ref_p[2].grad.t())
    assert torch.allclose(conv.lin_gc.bias.grad, ref_p[1].grad)
    assert torch.allclose(conv.lin_bi.bias.grad, ref_p[3].grad)


def test_edge_weight_and_normalize_false():
    conv = make()
    torch.manual_seed(1)
    x = torch.randn(N, 4, dtype=torch.float64)
    w = torch.rand(EDGES.size(1), dtype=torch.float64) + 0.5
    w = torch.cat([w, w])  # undirected: in- and out-degrees agree
    ref = dense_ngcf(dense_prop(FULL, w, N, N), x, x, *params(conv))
    assert torch.allclose(conv(x, FULL, w), ref)
    # precomputed norm: normalize=False takes edge_weight as p_ji
    L = dense_laplacian()
    plain = make(normalize=False)
    pre = L[FULL[1], FULL[0]]
    assert torch.allclose(plain(x, FULL, pre),
                          dense_ngcf(L, x, x, *params(plain)))
    # without weights: plain sums
    A = (L > 0).double()
    assert torch.allclose(plain(x, FULL), dense_ngcf(A, x, x, *params(plain)))


def test_sparse_paths_agree_with_edge_index():
    conv = make()
    torch.manual_seed(1)
    x = torch.randn(N, 4, dtype=torch.float64)
    expected = conv(x, FULL)
    ones = torch.ones(FULL.size(1), dtype=torch.float64)
    csr = torch.sparse_coo_tensor(FULL.flip(0), ones, (N, N)).to_sparse_csr()
    assert torch.allclose(conv(x, csr), expected)
    if pt.WITH_TORCH_SPARSE:
        from torch_sparse import SparseTensor
        adj_t = SparseTensor.from_edge_index(FULL, sparse_sizes=(N, N)).t()
        assert torch.allclose(conv(x, adj_t), expected)


def test_norm_adj_and_row_slice_inputs():
    conv = make()
    torch.manual_seed(1)
    x = torch.randn(N, 4, dtype=torch.float64, requires_grad=True)
    adj = NormAdj.from_edge_index(EDGES, NU, NI, dtype=torch.float64)
    expected = conv(x, FULL)
    out = conv(x, adj)
    assert torch.allclose(out, expected)
    index = torch.tensor([5, 0, 2])
    rows = conv((x, x[index]), adj.rows(index))
    assert torch.allclose(rows, expected[index])
    # gradients of the row path equal those of the full path
    g = torch.randn(3, 3, dtype=torch.float64)
    gx_rows, gw_rows = torch.autograd.grad(
        (rows * g).sum(), (x, conv.lin_bi.weight))
    gx_full, gw_full = torch.autograd.grad(
        (expected[index] * g).sum(), (x, conv.lin_bi.weight))
    assert torch.allclose(gx_rows, gx_full)
    assert torch.allclose(gw_rows, gw_full)
    assert gx_rows.abs().sum() > 0


def test_bipartite_matches_dense_and_hetero_conv():
    conv = make()
    torch.manual_seed(1)
    xu = torch.randn(NU, 4, dtype=torch.float64)
    xi = torch.randn(NI, 4, dtype=torch.float64)
    ones = torch.ones(EDGES.size(1))
    M = dense_prop(EDGES, ones, NU, NI)  # [items, users]
    out_i = conv((xu, xi), EDGES)
    assert torch.allclose(out_i, dense_ngcf(M, xu, xi, *params(conv)))
    out_u = conv((xi, xu), EDGES.flip(0))
    assert torch.allclose(out_u, dense_ngcf(M.t(), xi, xu, *params(conv)))
    # sparse [n_dst, n_src] adjacency, torch and torch_sparse
    coo = torch.sparse_coo_tensor(EDGES.flip(0), ones, (NI, NU)).coalesce()
    assert torch.allclose(conv((xu, xi), coo), out_i)
    if pt.WITH_TORCH_SPARSE:
        from torch_sparse import SparseTensor
        adj_t = SparseTensor(row=EDGES[1], col=EDGES[0],
                             sparse_sizes=(NI, NU))
        assert torch.allclose(conv((xu, xi), adj_t), out_i)
    # one shared instance over both relations = the homogeneous layer
    hetero = HeteroConv({('user', 'interacts', 'item'): conv,
                         ('item', 'rev_interacts', 'user'): conv})
    out = hetero({'user': xu, 'item': xi},
                 {('user', 'interacts', 'item'): EDGES,
                  ('item', 'rev_interacts', 'user'): EDGES.flip(0)})
    homo = conv(torch.cat([xu, xi]), FULL)
    assert torch.allclose(out['user'], homo[:NU])
    assert torch.allclose(out['item'], homo[NU:])


def test_reset_parameters():
    torch.manual_seed(0)
    conv = NGCFConv(16, 8)
    before = [p.detach().clone() for p in conv.parameters()]
    with torch.no_grad():
        for p in conv.parameters():
            p.fill_(3.0)
    conv.reset_parameters()
    for b, p in zip(before, conv.parameters()):
        assert not torch.equal(p, torch.full_like(p, 3.0))
        assert not torch.equal(p, b)  # a fresh draw
    # Xavier-uniform bounds of the reference: weights sqrt(6 / (16 + 8)),
    # biases as [1, 8] matrices sqrt(6 / (1 + 8))
    assert conv.lin_gc.weight.abs().max() <= (6 / 24) ** 0.5
    assert conv.lin_gc.weight.abs().max() > 0.5 * (6 / 24) ** 0.5
    assert conv.lin_bi.bias.abs().max() <= (6 / 9) ** 0.5
    assert conv.lin_bi.bias.abs().max() > (6 / 24) ** 0.5
    assert NGCFConv(4, 3, bias=False).lin_gc.bias is None


def test_repr_and_errors():
    conv = NGCFConv(4, 3)
    assert repr(conv) == 'NGCFConv(4, 3)'
    x = torch.randn(N, 4)
    with pytest.raises(ValueError, match='NGCFConv: the self-connection'):
        conv((x[:NU], None), EDGES)
    with pytest.raises(ValueError, match='same number of features'):
        conv((x[:NU], x[NU:, :2]), EDGES)
    adj = NormAdj.from_edge_index(EDGES, NU, NI)
    with pytest.raises(ValueError, match='pass x as one'):
        conv((x[:NU], x[NU:]), adj)
    with pytest.raises(ValueError, match='x_dst has 2 rows but index has 3'):
        conv((x, x[:2]), adj.rows(torch.tensor([0, 1, 2])))
    flipped = NGCFConv(4, 3, flow='target_to_source')
    with pytest.raises(ValueError, match="needs flow='source_to_target'"):
        flipped((x[:NU], x[NU:]), EDGES)
