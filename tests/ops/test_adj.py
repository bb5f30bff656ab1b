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
        NormAdj(adj.rowptr[:3], adj.col, adj.value, adj.node_counts)
    with pytest.raises(ValueError, match='one value per stored entry'):
        NormAdj(adj.rowptr, adj.col, adj.value[:-1], adj.node_counts)
    with pytest.raises(ValueError, match=r'x must have shape'):
        adj.spmm(torch.randn(NU, 2))
    with pytest.raises(ValueError, match="unknown backend 'dense'"):
        adj.spmm(torch.randn(NU + NI, 2), 'dense')


def typed_graph():
    """Users 0-2, items 0-3, entities 0-2: interactions, two knowledge
    graph relations (one item-entity, one entity-entity) and a trust
    relation; the pair (item 1, entity 0) sits in two relations."""
    counts = {'user': 3, 'item': 4, 'entity': 3}
    edges = {
        ('user', 'interacts', 'item'): torch.tensor([[0, 0, 1, 2],
                                                     [0, 1, 1, 3]]),
        ('item', 'genre', 'entity'): torch.tensor([[0, 1, 3], [0, 0, 1]]),
        ('entity', 'rev_actor', 'item'): torch.tensor([[0], [1]]),
        ('entity', 'part_of', 'entity'): torch.tensor([[1], [2]]),
        ('user', 'trusts', 'user'): torch.tensor([[0, 1], [1, 1]]),
    }
    return counts, edges


def typed_dense(counts, edges):
    off, start = {}, 0
    for t, n in counts.items():
        off[t], start = start, start + n
    B = torch.zeros(start, start, dtype=torch.float64)
    for (s, _, d), ei in edges.items():
        B[ei[0] + off[s], ei[1] + off[d]] = 1.0
        B[ei[1] + off[d], ei[0] + off[s]] = 1.0
    deg = B.sum(1)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    return inv[:, None] * B * inv[None, :]


def test_typed_graph_matches_dense_formula():
    counts, edges = typed_graph()
    adj = NormAdj.from_edges(counts, edges, dtype=torch.float64)
    assert adj.offsets == {'user': 0, 'item': 3, 'entity': 7}
    assert adj.node_slice('entity') == slice(7, 10)
    assert (adj.num_users, adj.num_items) == (3, 4)
    assert torch.allclose(adj.to_dense(), typed_dense(counts, edges))
    # the self-trust of user 1 is one diagonal entry
    assert adj.to_dense()[1, 1] > 0
    assert repr(adj) == ('NormAdj(num_users=3, num_items=4, '
                         'num_entities=3, nnz=19)')
    # a relation given with its reverse type adds nothing
    both = dict(edges)
    both['item', 'rev_interacts', 'user'] = edges[
        'user', 'interacts', 'item'].flip(0)
    assert torch.equal(NormAdj.from_edges(counts, both).to_dense(),
                       NormAdj.from_edges(counts, edges).to_dense())


def test_typed_graph_from_hetero_and_propagation():
    from torch_geometric.data import HeteroData

    from pyg_recsys.ops.propagate import propagate
    counts, edges = typed_graph()
    data = HeteroData()
    for t, n in counts.items():
        data[t].num_nodes = n
    for etype, ei in edges.items():
        data[etype].edge_index = ei
    adj = NormAdj.from_hetero(data, dtype=torch.float64)
    A = typed_dense(counts, edges)
    assert torch.allclose(adj.to_dense(), A)
    x = torch.randn(10, 4, dtype=torch.float64, requires_grad=True)
    out = propagate(adj, x, 2)
    ref = (x + A @ x + A @ (A @ x)) / 3
    assert torch.allclose(out, ref)
    index = torch.tensor([0, 8, 5, 8])
    rows = propagate(adj, x, 2, index=index)
    assert torch.allclose(rows, ref[index])
    g1, = torch.autograd.grad(rows.sum(), x)
    g2, = torch.autograd.grad(ref[index].sum(), x)
    assert torch.allclose(g1, g2)


def test_typed_errors():
    counts, edges = typed_graph()
    with pytest.raises(ValueError, match=r"NormAdj.from_edges: edge type "
                       r"\('user', 'likes', 'tag'\) names node type 'tag'"):
        NormAdj.from_edges(counts, {('user', 'likes', 'tag'):
                                    torch.zeros(2, 1).long()})
    with pytest.raises(ValueError, match='every node type needs a positive'):
        NormAdj.from_edges({'user': 0, 'item': 2}, {})
    with pytest.raises(ValueError, match=r"\('entity', 'part_of', 'entity'\)"
                       r" entity ids must lie in \[0, 3\)"):
        NormAdj.from_edges(counts, {('entity', 'part_of', 'entity'):
                                    torch.tensor([[0], [3]])})
