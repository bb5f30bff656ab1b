import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import HeteroData

from pyg_recsys.data.loader import LinkNeighborPairLoader, PairBatch
from pyg_recsys.nn.models import (
    BipartiteGNNRecommender,
    GATRecommender,
    SAGERecommender,
)
from pyg_recsys.ops.csr import CSR
from pyg_recsys.schema import ITEM_USER, USER_ITEM
from pyg_recsys.testing import needs

NU, NI = 5, 7
# item 6 has no user (isolated); user 4 has one item
EDGES = torch.tensor([[0, 0, 1, 1, 2, 2, 3, 3, 3, 4],
                      [0, 1, 1, 2, 3, 0, 4, 5, 0, 2]])
MODELS = [SAGERecommender, GATRecommender]


def features():
    gen = torch.Generator().manual_seed(1)
    return (torch.randn(NU, 3, generator=gen),
            torch.randn(NI, 2, generator=gen))


def graph():
    data = HeteroData()
    data['user'].num_nodes, data['item'].num_nodes = NU, NI
    data[USER_ITEM].edge_index = EDGES
    data[ITEM_USER].edge_index = EDGES.flip(0)
    return data


def make(cls, **kwargs):
    torch.manual_seed(0)
    return cls(NU, NI, EDGES, embedding_dim=8, **kwargs)


def reference_loss(full, batch, weight, reg):
    u = full[batch.user]
    p, n = full[batch.pos + NU], full[batch.neg + NU]
    diff = (u * p).sum(-1) - (u * n).sum(-1)
    rows = torch.cat([batch.user, batch.pos + NU, batch.neg + NU])
    l2 = 0.5 * weight[rows].pow(2).sum() / batch.user.numel()
    return -F.logsigmoid(diff).mean() + reg * l2


@pytest.mark.parametrize('cls', MODELS)
def test_full_graph_loss_and_gradients(cls):
    user_x, item_x = features()
    model = make(cls, reg_weight=0.01, user_x=user_x, item_x=item_x).double()
    batch = PairBatch(torch.tensor([0, 3, 4]), torch.tensor([1, 4, 2]),
                      torch.tensor([6, 1, 3]))
    loss = model.loss(batch)
    ref = reference_loss(model(), batch, model.embedding.weight, 0.01)
    assert torch.allclose(loss, ref)
    loss.backward()
    # the last item-side bias adds u.b to positive and negative alike, so
    # BPR cannot see it; every other parameter gets a gradient
    blind = ('convs.1.convs.<user___interacts___item>.bias',
             'convs.1.convs.<user___interacts___item>.lin_l.bias')
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert (p.grad.abs().sum() > 0) == (name not in blind), name


@pytest.mark.parametrize('cls', MODELS)
def test_features_enter_layer0(cls):
    user_x, item_x = features()
    model = make(cls, user_x=user_x, item_x=item_x).double()
    emb = model.embedding.weight
    ref_u = emb[:NU] + model.user_lin(user_x.double())
    assert torch.allclose(model.layer0('user'), ref_u)
    ref_i = emb[NU:] + model.item_lin(item_x.double())
    assert torch.allclose(model.layer0('item'), ref_i)
    idx = torch.tensor([3, 0, 3])
    assert torch.allclose(model.layer0('item', idx), ref_i[idx])
    # without features, layer 0 is the table itself
    plain = make(cls).double()
    assert torch.equal(plain.layer0('user'), plain.embedding.weight[:NU])
    assert plain.user_lin is None and plain.user_x is None
    # features and edges are data, not state
    assert not any(k.endswith(('_x', 'edge_index_ui', 'edge_index_iu'))
                   for k in model.state_dict())


@needs('torch_sparse')
@pytest.mark.parametrize('cls', MODELS)
@pytest.mark.parametrize('with_x', [False, True])
def test_minibatch_with_all_neighbours_equals_full_graph(cls, with_x):
    user_x, item_x = features() if with_x else (None, None)
    model = make(cls, num_layers=2, reg_weight=0.01, user_x=user_x,
                 item_x=item_x, dropout=0.3).double().eval()
    loader = LinkNeighborPairLoader(graph(), EDGES, [-1, -1], batch_size=4,
                                    num_neg=2, seed=3)
    loader.set_epoch(1)
    full = model().detach()
    seen = 0
    for batch in loader:
        user, item = batch['user'], batch['item']
        x_dict = {'user': model.layer0('user', user.n_id),
                  'item': model.layer0('item', item.n_id)}
        out = model.encode(x_dict, batch.edge_index_dict)
        src, pos = user.src_index, item.dst_pos_index
        neg = item.dst_neg_index
        assert torch.allclose(out['user'][src], full[user.n_id[src]])
        for local in (pos, neg):
            assert torch.allclose(out['item'][local],
                                  full[item.n_id[local] + NU])
        # and the loss equals the full-graph loss of the same triples
        pairs = PairBatch(user.n_id[src], item.n_id[pos], item.n_id[neg])
        ref = model.loss(pairs)
        assert torch.allclose(model.loss(batch), ref)
        seen += src.numel()
    assert seen == EDGES.size(1)


@needs('torch_sparse')
def test_minibatch_gradients_reach_sampled_rows_only():
    user_x, item_x = features()
    model = make(SAGERecommender, num_layers=1, user_x=user_x,
                 item_x=item_x)
    loader = LinkNeighborPairLoader(graph(), EDGES[:, :2], [1],
                                    batch_size=2)
    batch = next(iter(loader))
    model.loss(batch).backward()
    grad_rows = model.embedding.weight.grad.abs().sum(1).nonzero().view(-1)
    sampled = torch.cat([batch['user'].n_id, batch['item'].n_id + NU])
    assert set(grad_rows.tolist()) <= set(sampled.tolist())
    assert sampled.numel() < NU + NI
    assert model.user_lin.weight.grad.abs().sum() > 0
    assert model.convs[0].convs[USER_ITEM].lin_l.weight.grad is not None


@pytest.mark.parametrize('cls', MODELS)
def test_eval_cache_sees_layer_updates(cls):
    model = make(cls).eval()
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    users = torch.arange(NU)
    first = model.score(users)
    _, items = model.recommend(users, 2,
                               exclude=CSR.from_pairs(EDGES[0], EDGES[1],
                                                      NU, NI))
    assert len(calls) == 1
    full = model().detach()
    assert torch.allclose(first, full[:NU] @ full[NU:].t())
    # change only a layer weight (not the table): the cache must notice
    conv = model.convs[-1].convs[USER_ITEM]
    with torch.no_grad():
        next(conv.parameters()).add_(0.5)
    calls.clear()
    second = model.score(users)
    assert len(calls) == 1
    assert not torch.allclose(first, second)


@pytest.mark.parametrize('cls', MODELS)
def test_dropout_only_in_training(cls):
    model = make(cls, dropout=0.5, num_layers=2)
    torch.manual_seed(1)
    a, b = model(), model()
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.equal(model(), model())


@pytest.mark.parametrize('cls', MODELS)
def test_reset_parameters(cls):
    user_x, _ = features()
    model = make(cls, user_x=user_x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_parameters()
    after = model.state_dict()
    changed = [k for k in before
               if not torch.equal(before[k], after[k])
               and before[k].abs().sum() > 0]
    # every non-zero-initialised tensor is drawn again
    assert 'embedding.weight' in changed and 'user_lin.weight' in changed
    assert any('convs.1' in k for k in changed)


def test_errors():
    with pytest.raises(ValueError, match='SAGERecommender: num_layers must'):
        SAGERecommender(NU, NI, EDGES, num_layers=0)
    with pytest.raises(ValueError, match='GATRecommender: dropout must lie'):
        GATRecommender(NU, NI, EDGES, dropout=1.0)
    with pytest.raises(ValueError, match=r'edge_index must be a \[2, E\]'):
        SAGERecommender(NU, NI, EDGES.t())
    with pytest.raises(ValueError, match=r'edge_index item ids must lie in'):
        SAGERecommender(NU, 3, EDGES)
    with pytest.raises(ValueError, match=r'user_x must have shape \[5, F\]'):
        SAGERecommender(NU, NI, EDGES, user_x=torch.ones(4, 2))
    with pytest.raises(ValueError, match='num_users and num_items must'):
        SAGERecommender(0, NI, EDGES)
    model = make(SAGERecommender)
    bad = HeteroData()
    bad['user'].n_id = torch.arange(2)
    with pytest.raises(ValueError, match=r"lacks .*src_index.*Link"):
        model.loss(bad)

    class Bare(BipartiteGNNRecommender):
        def __init__(self):
            super().__init__(NU, NI, EDGES)
            self._init_layers()

    with pytest.raises(NotImplementedError, match='Bare.init_conv'):
        Bare()


@needs('torch_sparse')
def test_minibatch_training_resumes_exactly(tmp_path):
    from pyg_recsys.testing import clustered_split
    from pyg_recsys.train import RankingEvaluator, Trainer, seed_everything
    split = clustered_split(num_users=24, num_items=20, per_user=6)

    def fit(epochs, out, resume=False):
        seed_everything(0)
        model = GATRecommender(split.num_users, split.num_items,
                               split.train, embedding_dim=8, dropout=0.2)
        loader = LinkNeighborPairLoader(split.graph(), split.train, [3, 3],
                                        batch_size=32, seed=5)
        trainer = Trainer(model, loader, RankingEvaluator(split), lr=0.05,
                          epochs=epochs, monitor='recall@20', out_dir=out,
                          progress=False)
        trainer.fit(resume=resume)
        return model

    straight = fit(4, tmp_path / 'a')
    fit(2, tmp_path / 'b')
    resumed = fit(4, tmp_path / 'b', resume=True)
    for (name, a), b in zip(straight.state_dict().items(),
                            resumed.state_dict().values()):
        assert torch.equal(a, b), name
