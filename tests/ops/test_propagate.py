import pytest
import torch

from pyg_recsys.ops.adj import NormAdj
from pyg_recsys.ops.propagate import layer_weights, propagate


def random_graph(num_users=9, num_items=11, num_edges=30, seed=0):
    gen = torch.Generator().manual_seed(seed)
    edges = torch.stack([torch.randint(0, num_users, (num_edges, ),
                                       generator=gen),
                         torch.randint(0, num_items, (num_edges, ),
                                       generator=gen)])
    adj = NormAdj.from_edge_index(edges, num_users, num_items,
                                  dtype=torch.float64)
    return adj, adj.to_dense()


def dense_propagate(A, x, alpha):
    out, h = alpha[0] * x, x
    for a in alpha[1:]:
        h = A @ h
        out = out + a * h
    return out


@pytest.mark.parametrize('num_layers', [0, 1, 2, 3, 4])
@pytest.mark.parametrize('backend', [None, 'scatter'])
def test_rows_match_autograd_through_dense(num_layers, backend):
    adj, A = random_graph()
    torch.manual_seed(num_layers)
    alpha = torch.rand(num_layers + 1).tolist()
    x0 = torch.randn(adj.num_nodes, 4, dtype=torch.float64)
    # duplicates (users and items recur in a batch), 2-D shape, item rows
    index = torch.tensor([[0, 3, 3, 12], [12, 19, 0, 3]])
    x = x0.clone().requires_grad_()
    ref_x = x0.clone().requires_grad_()
    out = propagate(adj, x, num_layers, alpha, index, backend=backend)
    ref = dense_propagate(A, ref_x, alpha)[index]
    assert out.shape == (2, 4, 4)
    assert torch.allclose(out, ref)
    g = torch.randn_like(ref)
    (out * g).sum().backward()
    (ref * g).sum().backward()
    assert torch.allclose(x.grad, ref_x.grad)


@pytest.mark.parametrize('num_layers', [0, 1, 3])
def test_all_rows_match_autograd_through_dense(num_layers):
    adj, A = random_graph(seed=1)
    x0 = torch.randn(adj.num_nodes, 3, dtype=torch.float64)
    x = x0.clone().requires_grad_()
    ref_x = x0.clone().requires_grad_()
    alpha = layer_weights(num_layers)
    out = propagate(adj, x, num_layers)
    ref = dense_propagate(A, ref_x, alpha)
    assert torch.allclose(out, ref)
    g = torch.randn_like(ref)
    (out * g).sum().backward()
    (ref * g).sum().backward()
    assert torch.allclose(x.grad, ref_x.grad)


def test_gradcheck():
    adj, _ = random_graph(4, 5, 9, seed=2)
    x = torch.randn(adj.num_nodes, 2, dtype=torch.float64,
                    requires_grad=True)
    index = torch.tensor([0, 5, 5, 8, 1])
    assert torch.autograd.gradcheck(
        lambda t: propagate(adj, t, 3, None, index), (x, ))
    assert torch.autograd.gradcheck(lambda t: propagate(adj, t, 2), (x, ))


def test_float32_and_rows_equal_full():
    adj, _ = random_graph()
    adj32 = adj.to(dtype=torch.float32)
    x = torch.randn(adj.num_nodes, 8)
    index = torch.tensor([1, 2, 15, 2])
    full = propagate(adj32, x, 3)
    rows = propagate(adj32, x, 3, index=index)
    assert rows.dtype == torch.float32
    assert torch.allclose(rows, full[index], atol=1e-6)


def test_spmm_count():
    """Full products: K-1 forward and K-1 backward, not K + K."""
    adj, _ = random_graph()
    calls = []
    spmm = adj._spmm

    def counting(x, backend):
        calls.append(x.size(0))
        return spmm(x, backend)

    adj._spmm = counting
    x = torch.randn(adj.num_nodes, 2, dtype=torch.float64,
                    requires_grad=True)
    propagate(adj, x, 3, index=torch.tensor([0, 1])).sum().backward()
    assert len(calls) == 4
    calls.clear()
    propagate(adj, x, 3).sum().backward()
    assert len(calls) == 6


def test_layer_weights():
    assert layer_weights(3) == (0.25, ) * 4
    assert layer_weights(1, 0.5) == (0.5, 0.5)
    assert layer_weights(2, torch.tensor([1., 2., 3.])) == (1., 2., 3.)
    with pytest.raises(ValueError, match='needs num_layers \\+ 1 = 3'):
        layer_weights(2, [0.5, 0.5])
    with pytest.raises(ValueError, match='num_layers must be >= 0'):
        layer_weights(-1)


def test_shape_error():
    adj, _ = random_graph()
    with pytest.raises(ValueError, match='x must have shape'):
        propagate(adj, torch.randn(3, 2), 2)


def test_return_layer0_gradients_merge():
    adj, A = random_graph(seed=3)
    x0 = torch.randn(adj.num_nodes, 3, dtype=torch.float64)
    index = torch.tensor([2, 2, 14, 0, 14])
    x = x0.clone().requires_grad_()
    ref_x = x0.clone().requires_grad_()
    out, layer0 = propagate(adj, x, 3, None, index, return_layer0=True)
    ref = dense_propagate(A, ref_x, layer_weights(3))[index]
    assert torch.allclose(out, ref)
    assert torch.equal(layer0, x0[index])
    g, g0 = torch.randn_like(ref), torch.randn_like(ref)
    ((out * g).sum() + (layer0 * g0).sum()).backward()
    ((ref * g).sum() + (ref_x[index] * g0).sum()).backward()
    assert torch.allclose(x.grad, ref_x.grad)
    # only the layer-0 rows used
    x.grad = None
    ref_x.grad = None
    _, layer0 = propagate(adj, x, 3, None, index, return_layer0=True)
    layer0.pow(2).sum().backward()
    ref_x[index].pow(2).sum().backward()
    assert torch.allclose(x.grad, ref_x.grad)
    with pytest.raises(ValueError, match='return_layer0=True needs index'):
        propagate(adj, x, 3, return_layer0=True)
