"""LinkNeighborPairLoader (pyg_recsys/data/loader.py)."""
import pytest
import torch
from torch_geometric.data import HeteroData

from pyg_recsys.data.loader import LinkNeighborPairLoader
from pyg_recsys.testing import clustered_split, needs

pytestmark = needs('torch_sparse')


def batches(loader, epoch):
    loader.set_epoch(epoch)
    out = []
    for b in loader:
        out.append((b['user'].n_id[b['user'].src_index],
                    b['item'].n_id[b['item'].dst_pos_index],
                    b['item'].n_id[b['item'].dst_neg_index],
                    b['user', 'interacts', 'item'].edge_index))
    return out


def same(a, b):
    return len(a) == len(b) and all(
        torch.equal(x, y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def test_batches_cover_the_pairs_once_per_epoch():
    split = clustered_split()
    loader = LinkNeighborPairLoader(split.graph(), split.train, [5, 5],
                                    batch_size=100, num_neg=3)
    got = batches(loader, 1)
    assert len(got) == len(loader) == -(-split.train.size(1) // 100)
    user = torch.cat([g[0] for g in got])
    pos = torch.cat([g[1] for g in got])
    key = torch.sort(user * split.num_items + pos).values
    ref = torch.sort(split.train[0] * split.num_items + split.train[1])
    assert torch.equal(key, ref.values)
    assert got[0][2].shape == (100, 3)
    assert int(torch.cat([g[2] for g in got]).max()) < split.num_items
    batch = next(iter(loader))
    assert isinstance(batch, HeteroData) and batch.batch_size == 100


def test_set_epoch_reseeds_and_leaves_global_rng_alone():
    split = clustered_split()

    def make():
        return LinkNeighborPairLoader(split.graph(), split.train, [3, 2],
                                      batch_size=64, seed=7)

    loader = make()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = batches(loader, 2)
    assert torch.equal(torch.rand(3), expected)  # global RNG untouched
    torch.manual_seed(999)  # whatever the model drew in between
    assert same(batches(make(), 2), first)  # a resumed run: same batches
    assert not same(batches(loader, 3), first)
    other = LinkNeighborPairLoader(split.graph(), split.train, [3, 2],
                                   batch_size=64, seed=8)
    assert not same(batches(other, 2), first)


def test_errors():
    split = clustered_split()
    graph = split.graph()
    with pytest.raises(ValueError, match=r'pairs must have shape \[2, E\]'):
        LinkNeighborPairLoader(graph, split.train.t(), [2])
    with pytest.raises(ValueError, match='batch_size and num_neg must be'):
        LinkNeighborPairLoader(graph, split.train, [2], num_neg=0)
    with pytest.raises(ValueError, match='graph has no edge type'):
        LinkNeighborPairLoader(graph, split.train, [2],
                               edge_type=('user', 'likes', 'item'))
