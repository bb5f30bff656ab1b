import pytest
import torch
import torch.nn.functional as F

from pyg_recsys.data.loader import LinkNeighborPairLoader, PairLoader
from pyg_recsys.nn.models import GATRecommender
from pyg_recsys.sampling import UniformSampler
from pyg_recsys.schema import ITEM_USER, USER_ITEM
from pyg_recsys.testing import clustered_split, needs, popularity_metrics
from pyg_recsys.train import RankingEvaluator, Trainer, seed_everything

NU, NI = 4, 6
# item 5 has no user: it keeps only its residual and bias
EDGES = torch.tensor([[0, 0, 1, 1, 2, 3, 3],
                      [0, 1, 1, 2, 3, 4, 0]])


def dense_gat(conv, x_src, x_dst, adj, concat):
    """Per-head softmax over the neighbours of each destination row of the
    dense [dst, src] 0/1 matrix ``adj`` (Velickovic et al., Eq. 3-5),
    written out without message passing."""
    H, C = conv.heads, conv.out_channels
    xs = (x_src @ conv.lin_src.weight.t()).view(-1, H, C)
    xd = (x_dst @ conv.lin_dst.weight.t()).view(-1, H, C)
    a_s = (xs * conv.att_src).sum(-1)  # [S, H]
    a_d = (xd * conv.att_dst).sum(-1)  # [D, H]
    logits = F.leaky_relu(a_d[:, None, :] + a_s[None, :, :], 0.2)
    logits = logits.masked_fill(adj[:, :, None] == 0, float('-inf'))
    alpha = torch.softmax(logits, dim=1).nan_to_num(0.0)  # [D, S, H]
    out = torch.einsum('dsh,shc->dhc', alpha, xs)
    out = out.reshape(-1, H * C) if concat else out.mean(1)
    return out + x_dst @ conv.res.weight.t() + conv.bias


def test_two_layers_match_dense_attention():
    torch.manual_seed(0)
    model = GATRecommender(NU, NI, EDGES, embedding_dim=8, num_layers=2,
                           heads=2).double()
    R = torch.zeros(NU, NI, dtype=torch.float64)
    R[EDGES[0], EDGES[1]] = 1.0
    h_u = model.embedding.weight[:NU]
    h_i = model.embedding.weight[NU:]
    for layer, hetero in enumerate(model.convs):
        hidden = layer == 0
        new_i = dense_gat(hetero.convs[USER_ITEM], h_u, h_i, R.t(), hidden)
        new_u = dense_gat(hetero.convs[ITEM_USER], h_i, h_u, R, hidden)
        if hidden:
            new_i, new_u = new_i.relu(), new_u.relu()
        h_u, h_i = new_u, new_i
    assert torch.allclose(model(), torch.cat([h_u, h_i]))
    # hidden layers concatenate 2 heads of 4, the last averages 2 of 8
    assert model.convs[0].convs[USER_ITEM].out_channels == 4
    assert model.convs[1].convs[USER_ITEM].out_channels == 8


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
    model = GATRecommender(split.num_users, split.num_items, split.train,
                           embedding_dim=32)
    sampler = UniformSampler(split.num_items, exclude=split.csr('train'))
    losses, recall = train(model, PairLoader(split.train, sampler,
                                             batch_size=256), split)
    # (lr 0.05 for 20 epochs: the last loss lands between 0.35 and 0.6 of
    # the first, depending on the seed and on the optimizer's rounding)
    assert losses[-1] < 0.7 * losses[0]
    assert recall > popularity_metrics(split)['recall@20'] + 0.1


@needs('torch_sparse')
def test_minibatch_training_beats_popularity():
    split = clustered_split()
    seed_everything(0)
    model = GATRecommender(split.num_users, split.num_items, split.train,
                           embedding_dim=32)
    loader = LinkNeighborPairLoader(split.graph(), split.train, [10, 10],
                                    batch_size=256)
    losses, recall = train(model, loader, split)
    assert sum(losses[-3:]) / 3 < 0.8 * losses[0]
    assert recall > popularity_metrics(split)['recall@20'] + 0.1


def test_options_repr_and_errors():
    model = GATRecommender(NU, NI, EDGES, embedding_dim=8, heads=4,
                           residual=False, attention_dropout=0.1)
    conv = model.convs[0].convs[ITEM_USER]
    assert conv.res is None and conv.heads == 4 and conv.dropout == 0.1
    assert not conv.add_self_loops
    assert repr(model) == ('GATRecommender(4 users, 6 items, '
                           'embedding_dim=8, num_layers=2, heads=4)')
    # one layer: heads are averaged, so any embedding_dim works
    GATRecommender(NU, NI, EDGES, embedding_dim=6, heads=4, num_layers=1)
    with pytest.raises(ValueError, match='GATRecommender: heads must be'):
        GATRecommender(NU, NI, EDGES, heads=0)
    with pytest.raises(ValueError, match=r'embedding_dim \(6\) must be '
                                         r'divisible by heads \(4\)'):
        GATRecommender(NU, NI, EDGES, embedding_dim=6, heads=4)
