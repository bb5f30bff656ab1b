import pytest
import torch

from pyg_recsys.data.loader import LinkNeighborPairLoader, PairLoader
from pyg_recsys.nn.models import SAGERecommender
from pyg_recsys.sampling import UniformSampler
from pyg_recsys.schema import ITEM_USER, USER_ITEM
from pyg_recsys.testing import clustered_split, needs, popularity_metrics
from pyg_recsys.train import RankingEvaluator, Trainer, seed_everything

NU, NI = 4, 6
# item 5 has no user: its mean over neighbours is zero
EDGES = torch.tensor([[0, 0, 1, 1, 2, 3, 3],
                      [0, 1, 1, 2, 3, 4, 0]])


def dense_sage(conv, x_src, x_dst, adj):
    """Mean of the neighbours through W_l (+ bias), own state through W_r;
    ``adj`` is the dense [dst, src] 0/1 matrix."""
    deg = adj.sum(1, keepdim=True).clamp(min=1)
    mean = (adj @ x_src) / deg
    return (mean @ conv.lin_l.weight.t() + conv.lin_l.bias
            + x_dst @ conv.lin_r.weight.t())


def test_two_layers_match_dense_mean_aggregation():
    torch.manual_seed(0)
    model = SAGERecommender(NU, NI, EDGES, embedding_dim=8,
                            num_layers=2).double()
    R = torch.zeros(NU, NI, dtype=torch.float64)
    R[EDGES[0], EDGES[1]] = 1.0
    h_u = model.embedding.weight[:NU]
    h_i = model.embedding.weight[NU:]
    for layer, hetero in enumerate(model.convs):
        new_i = dense_sage(hetero.convs[USER_ITEM], h_u, h_i, R.t())
        new_u = dense_sage(hetero.convs[ITEM_USER], h_i, h_u, R)
        if layer == 0:
            new_i, new_u = new_i.relu(), new_u.relu()
        h_u, h_i = new_u, new_i
    ref = torch.cat([h_u, h_i])
    assert torch.allclose(model(), ref)
    index = torch.tensor([[0, 9], [5, 5]])
    assert torch.allclose(model(index), ref[index])


@pytest.mark.parametrize('aggr', ['mean', 'max', 'sum'])
def test_sparse_and_edge_index_paths_agree(aggr):
    torch.manual_seed(0)
    model = SAGERecommender(NU, NI, EDGES, embedding_dim=8,
                            aggr=aggr).double()
    assert model.adj_t_ui.is_sparse_csr
    assert model.adj_t_ui.shape == (NI, NU)
    x_dict = {'user': model.layer0('user'), 'item': model.layer0('item')}
    edges = {USER_ITEM: EDGES, ITEM_USER: EDGES.flip(0)}
    ref = model.encode(x_dict, edges)
    ref = torch.cat([ref['user'], ref['item']])
    out = model()  # the CSR path
    assert torch.allclose(out, ref)
    w = model.embedding.weight
    g_out, = torch.autograd.grad(out.pow(2).sum(), w)
    g_ref, = torch.autograd.grad(ref.pow(2).sum(), w)
    assert torch.allclose(g_out, g_ref)
    # an aggregation SAGEConv cannot fuse keeps edge_index
    other = SAGERecommender(NU, NI, EDGES, aggr='std')
    assert other.adj_t_ui is None and other().shape == (NU + NI, 64)


def train(model, loader, split, epochs=20):
    trainer = Trainer(model, loader, RankingEvaluator(split), lr=0.05,
                      epochs=epochs, eval_every=epochs,
                      monitor='recall@20', progress=False)
    result = trainer.fit()
    losses = [e['loss'] for e in result['epochs']]
    return losses, result['test']['recall@20']


def test_full_graph_training_beats_popularity():
    split = clustered_split()
    seed_everything(0)
    model = SAGERecommender(split.num_users, split.num_items, split.train,
                            embedding_dim=32)
    sampler = UniformSampler(split.num_items, exclude=split.csr('train'))
    losses, recall = train(model, PairLoader(split.train, sampler,
                                             batch_size=256), split)
    assert losses[-1] < 0.5 * losses[0]
    assert recall > popularity_metrics(split)['recall@20'] + 0.1


@needs('torch_sparse')
def test_minibatch_training_beats_popularity():
    split = clustered_split()
    seed_everything(0)
    model = SAGERecommender(split.num_users, split.num_items, split.train,
                            embedding_dim=32)
    loader = LinkNeighborPairLoader(split.graph(), split.train, [10, 10],
                                    batch_size=256)
    losses, recall = train(model, loader, split)
    # the sampler's negatives may be positives: the loss is noisier
    assert sum(losses[-3:]) / 3 < 0.8 * losses[0]
    assert recall > popularity_metrics(split)['recall@20'] + 0.1


def test_options_and_repr():
    model = SAGERecommender(NU, NI, EDGES, embedding_dim=8, aggr='max',
                            normalize=True)
    conv = model.convs[0].convs[USER_ITEM]
    assert str(conv.aggr_module) == 'MaxAggregation()'
    assert torch.allclose(model().norm(dim=-1), torch.ones(NU + NI))
    assert repr(model) == ('SAGERecommender(4 users, 6 items, '
                           'embedding_dim=8, num_layers=2)')
    with pytest.raises(ValueError, match='SAGERecommender: num_layers'):
        SAGERecommender(NU, NI, EDGES, num_layers=0)
