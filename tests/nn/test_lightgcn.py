import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn.models import LightGCN as PyGLightGCN

from pyg_recsys import typing as pt
from pyg_recsys.data.loader import PairBatch
from pyg_recsys.nn.models import LightGCN
from pyg_recsys.ops.csr import CSR
from pyg_recsys.testing import fit_batch, needs

needs_torch_sparse = needs('torch_sparse')

NU, NI = 4, 6
EDGES = torch.tensor([[0, 0, 1, 1, 2, 3, 3, 3],
                      [0, 1, 1, 2, 3, 4, 5, 0]])


def dense_adj():
    R = torch.zeros(NU, NI, dtype=torch.float64)
    R[EDGES[0], EDGES[1]] = 1.0
    A = torch.zeros(NU + NI, NU + NI, dtype=torch.float64)
    A[:NU, NU:], A[NU:, :NU] = R, R.t()
    inv = A.sum(1).pow(-0.5)
    return inv[:, None] * A * inv[None, :]


def dense_final(weight, alpha):
    A = dense_adj().to(weight.dtype)
    out, h = alpha[0] * weight, weight
    for a in alpha[1:]:
        h = A @ h
        out = out + a * h
    return out


def make(**kwargs):
    torch.manual_seed(0)
    return LightGCN(NU, NI, EDGES, embedding_dim=8, **kwargs)


def test_forward_matches_dense_formula_and_pyg():
    model = make(alpha=[0.1, 0.2, 0.3, 0.4]).double()
    w = model.embedding.weight
    ref = dense_final(w, [0.1, 0.2, 0.3, 0.4])
    assert torch.allclose(model(), ref)
    index = torch.tensor([[0, 9, 9], [4, 0, 1]])
    assert torch.allclose(model(index), ref[index])
    # same numbers as PyG's LightGCN (edge_index and SparseTensor paths)
    pyg = PyGLightGCN(NU + NI, 8, 3).double()
    full = torch.cat([torch.stack([EDGES[0], EDGES[1] + NU]),
                      torch.stack([EDGES[1] + NU, EDGES[0]])], dim=1)
    ours = make()
    pyg.embedding.weight.data.copy_(ours.embedding.weight.data.double())
    assert torch.allclose(ours().double(), pyg.get_embedding(full),
                          atol=1e-6)
    if pt.WITH_TORCH_SPARSE:
        from torch_sparse import SparseTensor
        adj_t = SparseTensor.from_edge_index(
            full, sparse_sizes=(NU + NI, NU + NI)).t()
        assert torch.allclose(ours().double(), pyg.get_embedding(adj_t),
                              atol=1e-6)


def test_loss_matches_reference_and_gradients():
    model = make(reg_weight=0.01).double()
    batch = PairBatch(torch.tensor([0, 3, 3]), torch.tensor([1, 4, 4]),
                      torch.tensor([[5, 2], [1, 2], [1, 2]]))
    loss = model.loss(batch)
    ref_w = model.embedding.weight.detach().clone().requires_grad_()
    E = dense_final(ref_w, [0.25] * 4)
    u, p, n = E[batch.user], E[batch.pos + NU], E[batch.neg + NU]
    pos = (u * p).sum(-1, keepdim=True)
    neg = (u.unsqueeze(1) * n).sum(-1)
    e0 = ref_w[torch.cat([batch.user, batch.pos + NU,
                          batch.neg.view(-1) + NU])]
    ref = -F.logsigmoid(pos - neg).mean() + 0.01 * 0.5 * e0.pow(2).sum() / 3
    assert torch.allclose(loss, ref)
    loss.backward()
    ref.backward()
    assert torch.allclose(model.embedding.weight.grad, ref_w.grad)


def test_training_lowers_loss():
    model = make()
    batch = PairBatch(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 2, 3, 5]),
                      torch.tensor([4, 5, 1, 2]))
    first, last = fit_batch(model, batch, steps=30)
    assert last < 0.5 * first


def test_score_and_recommend_exclude_seen():
    model = make().eval()
    E = model().detach()
    users = torch.tensor([3, 0])
    scores = model.score(users)
    assert scores.shape == (2, NI)
    assert torch.allclose(scores, E[users] @ E[NU:].t())
    assert model.score(users, torch.tensor([1, 5])).shape == (2, 2)
    seen = CSR.from_pairs(EDGES[0], EDGES[1], NU, NI)
    values, items = model.recommend(torch.arange(NU), 2, exclude=seen)
    for u in range(NU):
        assert not set(items[u].tolist()) & set(seen.row(u).tolist())
        allowed = [i for i in range(NI) if i not in seen.row(u).tolist()]
        full = E[u] @ E[NU:].t()
        ref = sorted(allowed, key=lambda i: -full[i].item())[:2]
        assert items[u].tolist() == ref


def test_item_scores_use_the_final_embeddings():
    model = make().eval()
    E = model().detach()
    query = torch.tensor([5, 0])
    got = model.item_scores(query)
    assert got.shape == (2, NI)
    # propagated item embeddings, not the layer-0 table
    assert torch.allclose(got, E[NU + query] @ E[NU:].t())
    w = model.embedding.weight.detach()[NU:]
    assert not torch.allclose(got, w[query] @ w.t())
    assert torch.allclose(model.item_scores(query), got)  # from the cache


def test_eval_cache_and_invalidation():
    model = make().eval()
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    users = torch.arange(NU)
    first = model.score(users)
    model.score(users)
    model.recommend(users, 2)
    assert len(calls) == 1  # propagated once for all calls
    # an optimizer step changes the parameters: the cache must go
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    batch = PairBatch(torch.tensor([0]), torch.tensor([0]), torch.tensor([3]))
    model.loss(batch).backward()
    opt.step()
    model.eval()
    calls.clear()
    second = model.score(users)
    assert len(calls) == 1
    assert not torch.allclose(first, second)
    assert torch.allclose(second, model().detach()[:NU] @
                          model().detach()[NU:].t())
    # load_state_dict and reset_parameters also invalidate
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_parameters()
    third = model.score(users)
    assert not torch.allclose(third, second)
    model.load_state_dict(state)
    assert torch.allclose(model.score(users), second)
    # training mode never caches
    model.train()
    calls.clear()
    model.score(users)
    model.score(users)
    assert len(calls) == 2


def test_adjacency_is_not_state_and_follows_dtype():
    model = make()
    assert list(model.state_dict()) == ['embedding.weight']
    assert model.adj.nnz == 2 * EDGES.size(1)
    model = model.double()
    assert model.adj.value.dtype == torch.float64
    assert model().dtype == torch.float64
    clone = LightGCN(NU, NI, EDGES, embedding_dim=8)
    clone.load_state_dict(make().state_dict())
    assert torch.allclose(clone(), make()())


def test_no_extras_path_agrees(no_extras):
    model = make()
    out = model(torch.tensor([0, 5, 9]))
    from pyg_recsys.ops.propagate import propagate
    for backend in ('scatter', 'csr'):
        ref = propagate(model.adj, model.embedding.weight, 3, index=None,
                        backend=backend)
        assert torch.allclose(out, ref[[0, 5, 9]], atol=1e-6)
    with pytest.raises(ImportError, match='needs the torch-sparse'):
        propagate(model.adj, model.embedding.weight, 3,
                  backend='torch_sparse')


@needs_torch_sparse
def test_sparse_backend_agrees():
    model = make()
    from pyg_recsys.ops.propagate import propagate
    ref = propagate(model.adj, model.embedding.weight, 3,
                    backend='torch_sparse')
    assert torch.allclose(model(), ref, atol=1e-6)


def test_repr_and_errors():
    model = make(num_layers=2)
    assert repr(model) == ('LightGCN(4 users, 6 items, embedding_dim=8, '
                           'num_layers=2)')
    assert model.alpha == (1 / 3, ) * 3
    with pytest.raises(ValueError, match='LightGCN: num_layers must be'):
        LightGCN(NU, NI, EDGES, num_layers=-1)
    with pytest.raises(ValueError, match='item ids must lie in'):
        LightGCN(NU, 3, EDGES)
    with pytest.raises(ValueError, match='LightGCN: num_users and num_items'):
        LightGCN(0, NI, EDGES)


def test_shared_negatives_match_per_pair_negatives():
    # LightGCN's own _loss_embeddings path: shared [N] negatives with a
    # mask give the loss and gradient of the same negatives per pair
    model = make(reg_weight=0.0)
    user, pos = torch.tensor([0, 1, 3]), torch.tensor([1, 2, 4])
    shared = torch.tensor([3, 0, 5, 1])
    mask = torch.tensor([[1, 0, 1, 0], [1, 1, 1, 0], [0, 1, 1, 1]],
                        dtype=torch.bool)
    losses, grads = [], []
    for batch in (PairBatch(user, pos, shared, mask, shared=True),
                  PairBatch(user, pos, shared.expand(3, -1), mask)):
        loss = model.loss(batch)
        losses.append(loss)
        grads.append(torch.autograd.grad(loss, model.embedding.weight)[0])
    assert torch.allclose(losses[0], losses[1])
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    # in-batch negatives reuse the positives' rows: same as a copy of them
    inb = PairBatch(user, pos, pos, pos.view(1, -1) != pos.view(-1, 1),
                    shared=True)
    ref = PairBatch(user, pos, pos.expand(3, -1), inb.neg_mask)
    assert torch.allclose(model.loss(inb), model.loss(ref))


def test_typed_graph_one_table_per_node_type_and_training():
    """Over a user-item-entity graph (a knowledge graph beside the
    interactions) LightGCN propagates over every relation, keeps one table
    per node type and still scores users against items only."""
    from pyg_recsys.data.split import Split
    from pyg_recsys.ops.adj import NormAdj
    from pyg_recsys.testing import clustered_split
    split = clustered_split(num_users=40, num_items=24, seed=1)
    # entity e groups the items with i % 4 == e (a "genre")
    items = torch.arange(split.num_items)
    kg = torch.stack([items, items % 4])
    split = Split(**{**split.__dict__, 'num_nodes': {'entity': 4},
                     'side': {('item', 'genre', 'entity'): kg}})
    graph = split.graph()
    torch.manual_seed(0)
    model = LightGCN(split.num_users, split.num_items, graph,
                     embedding_dim=8, num_layers=2)
    assert model.embedding.node_types == ['user', 'item', 'entity']
    assert model.embedding['entity'].shape == (4, 8)
    assert model.num_nodes == split.num_users + split.num_items + 4
    ref = NormAdj.from_hetero(graph).to_dense()
    assert torch.allclose(model.adj.to_dense(), ref)
    e0 = model.embedding.weight
    assert torch.allclose(model(), (e0 + ref @ e0 + ref @ (ref @ e0)) / 3,
                          atol=1e-6)
    model.eval()
    users, items_emb = model.embeddings()
    assert users.shape == (40, 8) and items_emb.shape == (24, 8)
    assert model.score(torch.tensor([0, 1])).shape == (2, 24)
    model.train()
    batch = PairBatch(split.train[0][:64], split.train[1][:64],
                      torch.randint(0, 24, (64,)))
    first, last = fit_batch(model, batch)
    assert last < first
    assert model.embedding.weight.grad[-4:].abs().sum() > 0  # entities learn
    with pytest.raises(ValueError, match=r'LightGCN: the graph has 24 item '
                       r'nodes but the model 25'):
        LightGCN(split.num_users, 25, graph)


def test_constructor_takes_the_pair_objective():
    edges = torch.tensor([[0, 1, 1], [0, 1, 2]])
    model = LightGCN(2, 3, edges, pair_loss='softmax', temperature=0.5)
    assert (model.pair_loss, model.temperature) == ('softmax', 0.5)
    with pytest.raises(ValueError, match="unknown pair_loss 'hinge'"):
        LightGCN(2, 3, edges, pair_loss='hinge')


@pytest.mark.parametrize('update', ['fused_adam', 'sgd_momentum', 'data'])
def test_eval_cache_sees_updates_without_version_bump(update):
    # fused Adam and writes through .data leave the version counter alone;
    # the switch to evaluation mode (every evaluator calls eval()) must
    # still drop the cached embeddings
    torch.manual_seed(0)
    model = make()
    users = torch.arange(NU)
    batch = PairBatch(torch.tensor([0, 1]), torch.tensor([0, 1]),
                      torch.tensor([3, 2]))
    if update == 'fused_adam':
        opt = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    version = model.embedding.weight._version
    for _ in range(3):
        model.eval()
        before = model.score(users).clone()
        model.train()
        if update == 'data':
            model.embedding.weight.data.mul_(1.5)
        else:
            opt.zero_grad()
            model.loss(batch).backward()
            opt.step()
        model.eval()
        after = model.score(users)
        with torch.no_grad():
            final = propagate_ref(model)
        assert torch.allclose(after, final[:NU] @ final[NU:].t(), atol=1e-6)
        assert not torch.allclose(before, after)
    if update != 'sgd_momentum':  # the case the version key alone missed
        assert model.embedding.weight._version == version


def propagate_ref(model):
    """The final embeddings without any cache (training mode)."""
    was = model.training
    model.train()
    out = model()
    model.train(was)
    return out
