import pytest
import torch

from pyg_recsys.ops.adj import NormAdj
from pyg_recsys.ops.perturb import perturbed_propagate
from pyg_recsys.ops.propagate import propagate


def random_graph(num_users=9, num_items=11, num_edges=30, seed=0):
    gen = torch.Generator().manual_seed(seed)
    edges = torch.stack([torch.randint(0, num_users, (num_edges, ),
                                       generator=gen),
                         torch.randint(0, num_items, (num_edges, ),
                                       generator=gen)])
    adj = NormAdj.from_edge_index(edges, num_users, num_items,
                                  dtype=torch.float64)
    return adj, adj.to_dense()


def simgcl_alpha(num_layers):
    return (0.0, ) + (1.0 / num_layers, ) * num_layers


def dense_views(A, x, alpha, eps, noise):
    """The reference code's loop (SELFRec SimGCL_Encoder.forward) on a
    dense matrix, with the raw U(0, 1) draws ``noise[k][v]`` given."""
    views = []
    for v, e in enumerate(eps):
        h, out = x, alpha[0] * x
        for k, a in enumerate(alpha[1:]):
            h = A @ h
            u = noise[k][v]
            h = h + torch.sign(h) * (u / u.norm(dim=-1, keepdim=True)) * e
            out = out + a * h
        views.append(out)
    return torch.stack(views)


def make_noise(num_layers, num_views, adj, dim, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(num_views, adj.num_nodes, dim, generator=gen,
                       dtype=torch.float64) for _ in range(num_layers)]


@pytest.mark.parametrize('num_layers', [1, 2, 3])
@pytest.mark.parametrize('backend', [None, 'scatter'])
def test_eps_zero_equals_propagate(num_layers, backend):
    adj, _ = random_graph()
    x = torch.randn(adj.num_nodes, 4, dtype=torch.float64)
    alpha = simgcl_alpha(num_layers)
    index = torch.tensor([[0, 3, 3, 12], [12, 19, 0, 3]])
    out = perturbed_propagate(adj, x, num_layers, 0.0, alpha, index,
                              backend=backend)
    assert out.shape == (2, 4, 4)
    assert torch.allclose(out, propagate(adj, x, num_layers, alpha, index))
    full = perturbed_propagate(adj, x, num_layers, 0.0, alpha)
    assert torch.allclose(full, propagate(adj, x, num_layers, alpha))


@pytest.mark.parametrize('num_layers', [1, 2, 3])
@pytest.mark.parametrize('with_index', [True, False])
@pytest.mark.parametrize('backend', [None, 'scatter'])
def test_views_and_gradients_match_dense_reference(num_layers, with_index,
                                                   backend):
    adj, A = random_graph(seed=1)
    torch.manual_seed(num_layers)
    alpha = torch.rand(num_layers + 1).tolist()
    eps = (0.0, 0.1, 0.3)
    noise = make_noise(num_layers, 3, adj, 4)
    x0 = torch.randn(adj.num_nodes, 4, dtype=torch.float64)
    x = x0.clone().requires_grad_()
    ref_x = x0.clone().requires_grad_()
    index = torch.tensor([[0, 3, 3, 12], [12, 19, 0, 3]])
    out = perturbed_propagate(adj, x, num_layers, eps, alpha,
                              index if with_index else None, noise=noise,
                              backend=backend)
    ref = dense_views(A, ref_x, alpha, eps, noise)
    if with_index:
        ref = ref[:, index]
    assert out.shape == ref.shape
    assert torch.allclose(out, ref)
    # the noise moved the noisy views away from the clean one
    assert (out[1] - out[0]).abs().max() > 1e-3
    g = torch.randn_like(ref)
    (out * g).sum().backward()
    (ref * g).sum().backward()
    assert torch.allclose(x.grad, ref_x.grad)


def test_noise_rows_have_norm_eps_and_follow_the_sign():
    adj, A = random_graph(seed=2)
    x = torch.randn(adj.num_nodes, 6, dtype=torch.float64)
    torch.manual_seed(0)
    # one layer, alpha = (0, 1): the output is A x + Delta
    out = perturbed_propagate(adj, x, 1, (0.0, 0.25), (0.0, 1.0))
    clean = A @ x
    delta = out[1] - clean
    assert torch.allclose(out[0], clean)
    live = (clean != 0).all(-1)  # rows of nodes with neighbours
    assert live.sum() > 10
    assert torch.allclose(delta[live].norm(dim=-1),
                          torch.full((int(live.sum()), ), 0.25,
                                     dtype=torch.float64))
    assert torch.equal(torch.sign(delta[live]), torch.sign(clean[live]))
    # isolated nodes have zero rows and get no noise (sign(0) = 0)
    assert torch.equal(delta[~live], torch.zeros_like(delta[~live]))
    # the uniform draws are not all equal, so rows differ in direction
    unit = delta[live].abs() / 0.25
    assert unit.std(0).max() > 0.05


def test_generator_and_views_are_independent():
    adj, _ = random_graph()
    x = torch.randn(adj.num_nodes, 4, dtype=torch.float64)
    alpha = simgcl_alpha(2)
    index = torch.tensor([0, 5, 15])

    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        return perturbed_propagate(adj, x, 2, (0.1, 0.1), alpha, index,
                                   generator=gen)

    a, b = run(0), run(0)
    assert torch.equal(a, b)
    assert not torch.allclose(a[0], a[1])  # two views, two draws
    assert not torch.allclose(a, run(1))
    # the global generator by default
    torch.manual_seed(3)
    c = perturbed_propagate(adj, x, 2, 0.1, alpha, index)
    torch.manual_seed(3)
    assert torch.equal(c, perturbed_propagate(adj, x, 2, 0.1, alpha, index))


def test_views_together_equal_views_alone():
    adj, _ = random_graph(seed=3)
    x = torch.randn(adj.num_nodes, 3, dtype=torch.float64)
    alpha = simgcl_alpha(3)
    noise = make_noise(3, 3, adj, 3, seed=1)
    index = torch.tensor([1, 1, 17, 4])
    together = perturbed_propagate(adj, x, 3, (0.0, 0.2, 0.1), alpha, index,
                                   noise=noise)
    for v, e in enumerate((0.0, 0.2, 0.1)):
        alone = perturbed_propagate(adj, x, 3, e, alpha, index,
                                    noise=[u[v:v + 1] for u in noise])
        assert torch.allclose(together[v], alone)


def test_sorted_distinct_index_takes_the_no_gather_path():
    adj, _ = random_graph(seed=4)
    x = torch.randn(adj.num_nodes, 3, dtype=torch.float64,
                    requires_grad=True)
    noise = make_noise(2, 2, adj, 3, seed=3)
    ref = perturbed_propagate(adj, x, 2, (0.0, 0.3), None, noise=noise)
    for index in (torch.tensor([1, 4, 9, 17]), torch.tensor([7]),
                  torch.tensor([9, 4, 4]), torch.tensor([], dtype=torch.long)):
        out, layer0 = perturbed_propagate(adj, x, 2, (0.0, 0.3), None, index,
                                          noise=noise, return_layer0=True)
        assert out.shape == (2, index.numel(), 3)
        assert torch.allclose(out, ref[:, index])
        assert torch.equal(layer0, x[index])


def test_return_layer0_and_gradcheck():
    adj, A = random_graph(4, 5, 9, seed=2)
    noise = make_noise(2, 2, adj, 2, seed=2)
    x = torch.randn(adj.num_nodes, 2, dtype=torch.float64,
                    requires_grad=True)
    index = torch.tensor([0, 5, 5, 8, 1])
    views, layer0 = perturbed_propagate(adj, x, 2, (0.0, 0.5), None, index,
                                        noise=noise, return_layer0=True)
    assert torch.equal(layer0, x[index])
    assert torch.allclose(views[0], propagate(adj, x, 2, None, index))

    def f(t):
        v, l0 = perturbed_propagate(adj, t, 2, (0.0, 0.5), None, index,
                                    noise=noise, return_layer0=True)
        return v, l0.pow(2)

    assert torch.autograd.gradcheck(f, (x, ))
    # only the layer-0 rows used
    x.grad = None
    _, layer0 = perturbed_propagate(adj, x, 2, 0.5, None, index, noise=[
        u[1:] for u in noise], return_layer0=True)
    layer0.sum().backward()
    ref = torch.zeros_like(x).index_add_(0, index, torch.ones(5, 2).double())
    assert torch.equal(x.grad, ref)


def test_spmm_count():
    """Three views with index: one full product forward (the first layer,
    shared) and one backward for K = 2, as for one clean view."""
    adj, _ = random_graph()
    calls = []
    spmm = adj._spmm

    def counting(x, backend):
        calls.append(x.size(1))
        return spmm(x, backend)

    adj._spmm = counting
    x = torch.randn(adj.num_nodes, 2, dtype=torch.float64,
                    requires_grad=True)
    index = torch.tensor([0, 1, 12])
    out = perturbed_propagate(adj, x, 2, (0.0, 0.1, 0.1), simgcl_alpha(2),
                              index)
    out.sum().backward()
    assert calls == [2, 2]
    calls.clear()
    # K = 3: the second layer multiplies the noisy views side by side
    # (and the clean one on its own, when there is one)
    perturbed_propagate(adj, x, 3, (0.1, 0.1), None, index).sum().backward()
    assert calls == [2, 4, 2, 2]
    calls.clear()
    perturbed_propagate(adj, x, 3, (0.0, 0.1, 0.1), None,
                        index).sum().backward()
    assert calls == [2, 2, 4, 2, 2]


def test_float32():
    adj, _ = random_graph()
    adj32 = adj.to(dtype=torch.float32)
    x = torch.randn(adj.num_nodes, 8)
    out = perturbed_propagate(adj32, x, 2, (0.0, 0.1), None,
                              torch.tensor([1, 2, 15, 2]))
    assert out.dtype == torch.float32 and out.shape == (2, 4, 8)
    assert torch.allclose(out[0], propagate(adj32, x, 2, None,
                                            torch.tensor([1, 2, 15, 2])),
                          atol=1e-6)


def test_errors():
    adj, _ = random_graph()
    x = torch.randn(adj.num_nodes, 2)
    with pytest.raises(ValueError, match='x must have shape'):
        perturbed_propagate(adj, torch.randn(3, 2), 2, 0.1)
    with pytest.raises(ValueError, match='eps must be one radius >= 0'):
        perturbed_propagate(adj, x, 2, -0.1)
    with pytest.raises(ValueError, match='eps must be one radius >= 0'):
        perturbed_propagate(adj, x, 2, ())
    with pytest.raises(ValueError, match='noise must be num_layers=2'):
        perturbed_propagate(adj, x, 2, 0.1,
                            noise=[torch.rand(1, adj.num_nodes, 2)])
    with pytest.raises(ValueError, match='return_layer0=True needs index'):
        perturbed_propagate(adj, x, 2, 0.1, return_layer0=True)
    with pytest.raises(ValueError, match='alpha needs num_layers'):
        perturbed_propagate(adj, x, 2, 0.1, alpha=(0.5, 0.5))
