import torch

from pyg_recsys.ops.norm import bipartite_norm
from pyg_recsys.testing import needs

# 3 sources, 4 targets; target 3 has no edge
EDGES = torch.tensor([[0, 0, 1, 2, 2], [0, 1, 1, 0, 2]])
WEIGHT = torch.tensor([1.0, 2.0, 1.0, 1.0, 3.0])


def dense_reference(weight):
    a = torch.zeros(3, 4)
    a[EDGES[0], EDGES[1]] = weight
    d_src, d_dst = a.sum(1), a.sum(0)
    inv_s = torch.where(d_src > 0, d_src.pow(-0.5), 0.0)
    inv_d = torch.where(d_dst > 0, d_dst.pow(-0.5), 0.0)
    return inv_s.view(-1, 1) * a * inv_d.view(1, -1)


def test_index_input_matches_dense_formula():
    for weight in (None, WEIGHT):
        ei, w = bipartite_norm(EDGES, weight, (3, 4), torch.float)
        assert torch.equal(ei, EDGES)
        ref = dense_reference(torch.ones(5) if weight is None else weight)
        assert torch.allclose(w, ref[EDGES[0], EDGES[1]])


def test_torch_sparse_adj_t_matches_index_path():
    adj_t = torch.sparse_coo_tensor(EDGES.flip(0), WEIGHT, (4, 3))
    out, none = bipartite_norm(adj_t.coalesce(), None, (3, 4), torch.float)
    assert none is None
    assert torch.allclose(out.to_dense(), dense_reference(WEIGHT).t())


@needs('torch_sparse')
def test_sparse_tensor_adj_t_matches_index_path():
    from torch_sparse import SparseTensor
    adj_t = SparseTensor(row=EDGES[1], col=EDGES[0], value=WEIGHT,
                         sparse_sizes=(4, 3))
    out, _ = bipartite_norm(adj_t, None, (3, 4), torch.float)
    assert torch.allclose(out.to_dense(), dense_reference(WEIGHT).t())
    unweighted = SparseTensor(row=EDGES[1], col=EDGES[0],
                              sparse_sizes=(4, 3))
    out, _ = bipartite_norm(unweighted, None, (3, 4), torch.float)
    assert torch.allclose(out.to_dense(),
                          dense_reference(torch.ones(5)).t())
