import pytest
import torch

from pyg_recsys.ops.adj import NormAdj
from pyg_recsys.testing import needs

needs_torch_sparse = needs('torch_sparse')

NU, NI = 5, 7
# user 4 has no item; item 4 has no user; (0, 0) is repeated
EDGES = torch.tensor([[0, 0, 1, 2, 2, 2, 3, 0, 1],
                      [0, 1, 1, 2, 3, 6, 5, 0, 6]])


def dense_reference(edges=EDGES, num_users=NU, num_items=NI):
    R = torch.zeros(num_users, num_items, dtype=torch.float64)
    R[edges[0], edges[1]] = 1.0
    N = num_users + num_items
    A = torch.zeros(N, N, dtype=torch.float64)
    A[:num_users, num_users:] = R
    A[num_users:, :num_users] = R.t()
    deg = A.sum(1)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    return inv[:, None] * A * inv[None, :]


def test_matches_dense_formula():
    adj = NormAdj.from_edge_index(EDGES, NU, NI, dtype=torch.float64)
    A = dense_reference()
    assert adj.num_nodes == NU + NI
    assert adj.nnz == 2 * 8  # the repeated pair counts once
    assert torch.allclose(adj.to_dense(), A)
    assert torch.equal(adj.to_dense(), adj.to_dense().t())
    assert adj.degree().tolist() == (A > 0).sum(1).tolist()
    # CSR invariants: columns sorted within each row
    for r in range(adj.num_nodes):
        cols = adj.col[adj.rowptr[r]:adj.rowptr[r + 1]]
        assert torch.equal(cols, cols.sort().values)
    assert adj.degree()[4] == 0 and adj.degree()[NU + 4] == 0


@pytest.mark.parametrize('backend', [
    'csr',
    pytest.param('torch_sparse', marks=needs_torch_sparse),
    'scatter',
])
def test_spmm_backends_agree_with_dense(backend):
    torch.manual_seed(0)
    adj = NormAdj.from_edge_index(EDGES, NU, NI)
    x = torch.randn(NU + NI, 3, dtype=torch.float64)
    out = adj.spmm(x, backend)
    assert out.dtype == torch.float64
    assert torch.allclose(out, dense_reference() @ x)


def test_spmm_default_backend_and_gradient():
    torch.manual_seed(0)
    adj = NormAdj.from_edge_index(EDGES, NU, NI, dtype=torch.float64)
    A = dense_reference()
    x = torch.randn(NU + NI, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(NU + NI, 3, dtype=torch.float64)
    (adj.spmm(x) * g).sum().backward()
    assert torch.allclose(x.grad, A.t() @ g)
    assert torch.autograd.gradcheck(lambda t: adj.spmm(t, 'csr'), (x, ))


def test_no_extras_fallback(no_extras):
    adj = NormAdj.from_edge_index(EDGES, NU, NI)
    x = torch.randn(NU + NI, 2)
    assert torch.allclose(adj.spmm(x), adj.spmm(x, 'scatter'), atol=1e-6)
    with pytest.raises(ImportError, match='needs the torch-sparse'):
        adj.spmm(x, 'torch_sparse')


def test_rows_slice():
    torch.manual_seed(0)
    adj = NormAdj.from_edge_index(EDGES, NU, NI, dtype=torch.float64)
    A = dense_reference()
    index = torch.tensor([6, 0, 4, 11])  # item 1, user 0, empty row, item 6
    sub = adj.rows(index)
    assert sub.num_rows == 4 and sub.nnz == int(adj.degree()[index].sum())
    x = torch.randn(NU + NI, 3, dtype=torch.float64)
    assert torch.allclose(sub.matmul(x), A[index] @ x)
    g = torch.randn(4, 3, dtype=torch.float64)
    assert torch.allclose(sub.t_matmul(g), A[index].t() @ g)
    assert torch.allclose(sub.matmul(x, 'scatter'), A[index] @ x)
    assert torch.allclose(sub.t_matmul(g, 'scatter'), A[index].t() @ g)
    empty = adj.rows(torch.tensor([], dtype=torch.long))
    assert empty.matmul(x).shape == (0, 3)


def test_to_and_repr():
    adj = NormAdj.from_edge_index(EDGES, NU, NI)
    assert adj.value.dtype == torch.float32
    adj64 = adj.to(dtype=torch.float64)
    assert adj64.value.dtype == torch.float64
    assert torch.allclose(adj64.to_dense(), dense_reference())
    assert repr(adj) == 'NormAdj(num_users=5, num_items=7, nnz=16)'


@needs_torch_sparse
def test_to_sparse_tensor():
    adj = NormAdj.from_edge_index(EDGES, NU, NI)
    st = adj.to_sparse_tensor()
    assert torch.allclose(st.to_dense(), adj.to_dense())


def test_errors():
    with pytest.raises(ValueError, match=r'shape \[2, E\]'):
        NormAdj.from_edge_index(EDGES.t(), NU, NI)
    with pytest.raises(ValueError, match='must be positive'):
        NormAdj.from_edge_index(EDGES, 0, NI)
    with pytest.raises(ValueError, match=r'item ids must lie in \[0, 7\)'):
        NormAdj.from_edge_index(EDGES + torch.tensor([[0], [NU]]), NU, NI)
    with pytest.raises(ValueError, match=r'user ids must lie in \[0, 3\)'):
        NormAdj.from_edge_index(EDGES, 3, NI)
    adj = NormAdj.from_edge_index(EDGES, NU, NI)
    with pytest.raises(ValueError, match='rowptr has 3 entries'):
        NormAdj(adj.rowptr[:3], adj.col, adj.value, NU, NI)
    with pytest.raises(ValueError, match='one value per stored entry'):
        NormAdj(adj.rowptr, adj.col, adj.value[:-1], NU, NI)
    with pytest.raises(ValueError, match=r'x must have shape'):
        adj.spmm(torch.randn(NU, 2))
    with pytest.raises(ValueError, match="unknown backend 'dense'"):
        adj.spmm(torch.randn(NU + NI, 2), 'dense')
