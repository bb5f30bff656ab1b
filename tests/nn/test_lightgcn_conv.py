import pytest
import torch
from torch_geometric.nn import HeteroConv, LGConv

from pyg_recsys import typing as pt
from pyg_recsys.nn.conv import LightGCNConv
from pyg_recsys.ops.adj import NormAdj
from pyg_recsys.testing import needs

needs_torch_sparse = needs('torch_sparse')

NU, NI = 5, 7
EDGES = torch.tensor([[0, 0, 1, 2, 2, 2, 3, 4],
                      [0, 1, 1, 2, 3, 6, 5, 6]])
FULL = torch.cat([torch.stack([EDGES[0], EDGES[1] + NU]),
                  torch.stack([EDGES[1] + NU, EDGES[0]])], dim=1)


def dense_bipartite(edges, weight, n_src, n_dst):
    """x'_i = sum_j w_ji / sqrt(deg_out(j) deg_in(i)) x_j, as a matrix."""
    M = torch.zeros(n_dst, n_src, dtype=torch.float64)
    M.index_put_((edges[1], edges[0]), weight.double(), accumulate=True)
    d_in, d_out = M.sum(1), M.sum(0)
    inv_in = torch.where(d_in > 0, d_in.pow(-0.5), torch.zeros_like(d_in))
    inv_out = torch.where(d_out > 0, d_out.pow(-0.5), torch.zeros_like(d_out))
    return inv_in[:, None] * M * inv_out[None, :]


def test_matches_lgconv_edge_index_and_sparse_tensor():
    torch.manual_seed(0)
    x = torch.randn(NU + NI, 8)
    conv, ref = LightGCNConv(), LGConv()
    expected = ref(x, FULL)
    assert torch.allclose(conv(x, FULL), expected, atol=1e-6)
    w = torch.rand(FULL.size(1))
    assert torch.allclose(conv(x, FULL, w), ref(x, FULL, w), atol=1e-6)
    plain, plain_ref = LightGCNConv(normalize=False), LGConv(normalize=False)
    assert torch.allclose(plain(x, FULL), plain_ref(x, FULL), atol=1e-6)
    if pt.WITH_TORCH_SPARSE:
        from torch_sparse import SparseTensor
        adj_t = SparseTensor.from_edge_index(
            FULL, sparse_sizes=(NU + NI, NU + NI)).t()
        assert torch.allclose(conv(x, adj_t), ref(x, adj_t), atol=1e-6)
        assert torch.allclose(conv(x, adj_t), expected, atol=1e-6)
    csr = torch.sparse_coo_tensor(FULL.flip(0), torch.ones(FULL.size(1)),
                                  (NU + NI, NU + NI)).to_sparse_csr()
    assert torch.allclose(conv(x, csr), expected, atol=1e-6)


def test_norm_adj_input_is_the_same_operator():
    torch.manual_seed(0)
    x = torch.randn(NU + NI, 4, requires_grad=True)
    adj = NormAdj.from_edge_index(EDGES, NU, NI)
    out = LightGCNConv()(x, adj)
    assert torch.allclose(out, LGConv()(x, FULL), atol=1e-6)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='pass x as one'):
        LightGCNConv()((x[:NU], x[NU:]), adj)


def test_bipartite_matches_dense_formula():
    torch.manual_seed(0)
    xu = torch.randn(NU, 4, dtype=torch.float64)
    xi = torch.randn(NI, 4, dtype=torch.float64)
    w = torch.rand(EDGES.size(1), dtype=torch.float64) + 0.5
    conv = LightGCNConv()
    M = dense_bipartite(EDGES, w, NU, NI)
    assert torch.allclose(conv((xu, xi), EDGES, w), M @ xu)
    M1 = dense_bipartite(EDGES, torch.ones(EDGES.size(1)), NU, NI)
    out_i = conv((xu, xi), EDGES)
    assert torch.allclose(out_i, M1 @ xu)
    # item -> user direction
    assert torch.allclose(conv((xi, xu), EDGES.flip(0)), M1.t() @ xi)
    # sparse adjacency inputs [n_dst, n_src]
    if pt.WITH_TORCH_SPARSE:
        from torch_sparse import SparseTensor
        adj_t = SparseTensor(row=EDGES[1], col=EDGES[0],
                             sparse_sizes=(NI, NU))
        assert torch.allclose(conv((xu, xi), adj_t), out_i)
    csr = torch.sparse_coo_tensor(EDGES.flip(0), torch.ones(EDGES.size(1)),
                                  (NI, NU)).to_sparse_csr()
    assert torch.allclose(conv((xu, xi), csr), out_i)
    t2s = LightGCNConv(flow='target_to_source')
    with pytest.raises(ValueError, match="needs flow='source_to_target'"):
        t2s((xu, xi), EDGES)
    with pytest.raises(ValueError, match='pass x_dst or size'):
        conv((xu, None), EDGES)


def test_hetero_conv_equals_lightgcn_layer():
    torch.manual_seed(0)
    x = torch.randn(NU + NI, 4)
    conv = HeteroConv({
        ('user', 'interacts', 'item'): LightGCNConv(),
        ('item', 'rev_interacts', 'user'): LightGCNConv(),
    })
    out = conv({'user': x[:NU], 'item': x[NU:]}, {
        ('user', 'interacts', 'item'): EDGES,
        ('item', 'rev_interacts', 'user'): EDGES.flip(0),
    })
    expected = NormAdj.from_edge_index(EDGES, NU, NI).spmm(x)
    assert torch.allclose(out['user'], expected[:NU], atol=1e-6)
    assert torch.allclose(out['item'], expected[NU:], atol=1e-6)


def test_gradients_flow_and_repr():
    torch.manual_seed(0)
    xu = torch.randn(NU, 4, requires_grad=True)
    xi = torch.randn(NI, 4, requires_grad=True)
    conv = LightGCNConv()
    conv.reset_parameters()
    conv((xu, xi), EDGES).pow(2).sum().backward()
    assert xu.grad.abs().sum() > 0
    assert xi.grad is None  # no self term: targets only receive
    assert repr(conv) == 'LightGCNConv(normalize=True)'


def test_normadj_path_is_lightgcn_operator_on_any_typed_graph():
    """With a NormAdj the layer runs ops.propagate (one layer), the
    function LightGCN runs; on a user-item-entity graph too, and a
    RowSlice gives the rows of the same product."""
    from pyg_recsys.nn.models import LightGCN
    from pyg_recsys.ops.propagate import propagate
    counts = {'user': NU, 'item': NI, 'entity': 3}
    edges = {('user', 'interacts', 'item'): EDGES,
             ('item', 'genre', 'entity'): torch.tensor([[0, 1, 5],
                                                         [0, 2, 2]])}
    adj = NormAdj.from_edges(counts, edges, dtype=torch.float64)
    A = adj.to_dense()
    x = torch.randn(NU + NI + 3, 4, dtype=torch.float64, requires_grad=True)
    conv = LightGCNConv()
    out = conv(x, adj)
    assert torch.allclose(out, A @ x)
    assert torch.allclose(out, propagate(adj, x, 1, (0.0, 1.0)))
    g, = torch.autograd.grad(out.pow(2).sum(), x)
    assert torch.allclose(g, A.t() @ (2 * A @ x))
    index = torch.tensor([1, NU + 2, NU + NI + 2])
    rows = conv(x, adj.rows(index))
    assert torch.allclose(rows, (A @ x)[index])
    g, = torch.autograd.grad(rows.sum(), x)
    assert torch.allclose(g, A[index].sum(0, keepdim=True).t().expand(
        -1, 4))
    # LightGCN over the same typed graph: K stacked layers of this conv
    from pyg_recsys.schema import build_graph
    graph = build_graph(counts, edges)
    model = LightGCN(NU, NI, graph, embedding_dim=4, num_layers=2).double()
    e0 = model.embedding.weight
    h1 = conv(e0, model.adj)
    h2 = conv(h1, model.adj)
    assert torch.allclose(model(), (e0 + h1 + h2) / 3, atol=1e-12)
    with pytest.raises(ValueError, match='pass x as one'):
        conv((x, x), adj)
