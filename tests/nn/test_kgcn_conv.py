import math

import pytest
import torch

from pyg_recsys.nn.conv import KGCNConv

D = 4


def _graph():
    """Centre 0 with neighbours 1..4 over relations 0, 1, 1, 2 (the
    5-node graph of the docstring's equations)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, D, generator=gen)
    rel_emb = torch.randn(3, D, generator=gen)
    user = torch.randn(D, generator=gen)
    rel = torch.tensor([0, 1, 1, 2])
    return x, rel_emb, rel, user


def _reference(conv, x, rel_emb, rel, user):
    """The layer's equations for centre 0, written out."""
    pi = [float((user * rel_emb[r]).sum()) / D for r in rel.tolist()]
    z = sum(math.exp(p) for p in pi)
    neigh = sum(math.exp(p) / z * x[1 + j] for j, p in enumerate(pi)) / 4
    W, b = conv.lin.weight, conv.lin.bias
    if conv.aggregator == 'sum':
        h = W @ (x[0] + neigh) + b
    elif conv.aggregator == 'concat':
        h = W @ torch.cat([x[0], neigh]) + b
    else:
        h = W @ neigh + b
    return conv.act(h)


@pytest.mark.parametrize('aggregator', ['sum', 'concat', 'neighbor'])
def test_both_paths_follow_the_equations(aggregator):
    torch.manual_seed(0)
    conv = KGCNConv(D, aggregator)
    x, rel_emb, rel, user = _graph()
    want = _reference(conv, x, rel_emb, rel, user)
    # edge-list path: neighbours 1..4 -> centre 0
    edge_index = torch.tensor([[1, 2, 3, 4], [0, 0, 0, 0]])
    out = conv((x, x[:1]), edge_index, rel_emb[rel], user.view(1, -1))
    assert torch.allclose(out[0], want, atol=1e-6)
    # fixed fan-out path
    scores = KGCNConv.relation_scores(user, rel_emb[rel])
    dense = conv.forward_dense(x[0], x[1:], scores)
    assert torch.allclose(dense, want, atol=1e-6)
    # users broadcast against shared centres ([U, ...] x [...])
    users = torch.stack([user, -user])
    s2 = KGCNConv.relation_scores(users.view(2, 1, D), rel_emb[rel])
    both = conv.forward_dense(x[0], x[1:], s2)
    assert torch.allclose(both[0], want, atol=1e-6)
    assert both.shape == (2, D)


def test_gradients_flow_and_paths_agree_on_a_batch():
    torch.manual_seed(1)
    conv = KGCNConv(D, 'sum', act=torch.tanh)
    x = torch.randn(9, D, requires_grad=True)
    rel = torch.randn(6, D, requires_grad=True)
    user = torch.randn(3, D)
    # three centres 0, 1, 2 with two neighbours each among 3..8
    nbr = torch.tensor([[3, 4], [5, 6], [7, 8]])
    rid = torch.tensor([[0, 1], [2, 3], [4, 5]])
    edge_index = torch.stack([nbr.reshape(-1),
                              torch.arange(3).repeat_interleave(2)])
    a = conv((x, x[:3]), edge_index, rel[rid.reshape(-1)], user)
    b = conv.forward_dense(x[:3], x[nbr], KGCNConv.relation_scores(
        user.view(3, 1, D), rel[rid]))
    assert torch.allclose(a, b, atol=1e-6)
    b.sum().backward()
    assert x.grad[3:].abs().sum() > 0 and rel.grad.abs().sum() > 0
    assert conv.lin.weight.grad is not None


def test_reset_and_errors():
    conv = KGCNConv(D, 'concat')
    assert conv.lin.in_features == 2 * D
    conv.lin.bias.data.fill_(3.0)
    conv.reset_parameters()
    assert float(conv.lin.bias.abs().sum()) == 0.0
    assert 'aggregator=' in repr(conv)
    with pytest.raises(ValueError, match='aggregator must be one of'):
        KGCNConv(D, 'max')


@pytest.mark.parametrize('aggregator', ['sum', 'concat', 'neighbor'])
def test_shared_centres_regrouped_by_relation_equal_the_dense_path(
        aggregator):
    torch.manual_seed(2)
    conv = KGCNConv(D, aggregator, act=torch.tanh)
    V, K, R, U = 5, 3, 4, 3
    x_self, x_nb = torch.randn(V, D), torch.randn(V, K, D)
    rel_index = torch.randint(0, R, (V, K))
    rel_emb, users = torch.randn(R, D), torch.randn(U, D)
    ur = users @ rel_emb.t() / D  # = relation_scores of every pair
    dense = conv.forward_dense(x_self, x_nb, ur[:, rel_index])
    assert dense.shape == (U, V, D)
    # centre 0 reached over one relation only (uniform attention)
    rel_index[0] = 2
    dense = conv.forward_dense(x_self, x_nb, ur[:, rel_index])
    tables = conv.shared_tables(x_self, x_nb, rel_index, R)
    assert 0 in tables.one.tolist()
    shared = conv.forward_shared(tables, ur)
    assert torch.allclose(shared, dense, atol=1e-5)
    got = conv.shared_scores(tables, ur, users)
    assert torch.allclose(got, (dense * users.unsqueeze(1)).sum(-1),
                          atol=1e-5)
    scores = KGCNConv.relation_scores(users.view(U, 1, 1, D),
                                      rel_emb[rel_index])
    assert torch.allclose(scores, ur[:, rel_index], atol=1e-6)
