import random

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from pyg_recsys.data.session import (
    SessionData,
    SessionGraphs,
    SessionLoader,
    session_graph,
    step_batch,
    to_padded,
)
from pyg_recsys.testing import srgnn_session_A


def srgnn_dense(u_input):
    """The sorted nodes, the alias of every step and the two matrices the
    gated layer multiplies with, ``A[:, :n]`` (incoming) and ``A[:, n:]``
    (outgoing), of SR-GNN's ``Data.get_slice`` for one unpadded session."""
    node = np.unique(u_input)
    A = srgnn_session_A(list(u_input)).numpy()
    n = len(node)
    alias = [int(np.where(node == i)[0][0]) for i in u_input]
    return node, alias, A[:, :n], A[:, n:]


def dense_from_edges(data):
    """Our weights as the matrices ``M`` with ``message = M @ h``."""
    n = data.num_nodes
    src, dst = data.edge_index
    m_in = torch.zeros(n, n, dtype=torch.float64)
    m_out = torch.zeros(n, n, dtype=torch.float64)
    m_in[dst, src] = data.edge_weight_in.double()  # v gathers from u
    m_out[src, dst] = data.edge_weight_out.double()  # u gathers from v
    return m_in, m_out


def test_hand_computed_four_steps():
    data = session_graph(torch.tensor([5, 3, 5, 7]), 9)
    assert isinstance(data, SessionData)
    # Sorted unique items: 3 -> 0, 5 -> 1, 7 -> 2.
    assert data.x.tolist() == [3, 5, 7]
    assert data.alias.tolist() == [1, 0, 1, 2]
    assert data.seq.tolist() == [5, 3, 5, 7]
    # Transitions 5->3, 3->5, 5->7, sorted by (source, target).
    assert data.edge_index.tolist() == [[0, 1, 1], [1, 0, 2]]
    # In-degrees (1, 1, 1); out-degrees (1, 2, 0).
    assert data.edge_weight_in.tolist() == [1.0, 1.0, 1.0]
    assert data.edge_weight_out.tolist() == [1.0, 0.5, 0.5]
    assert data.last.tolist() == [2]
    assert data.length.tolist() == [4]
    assert data.y.tolist() == [9]
    assert torch.equal(data.x[data.alias], data.seq)


def test_hand_computed_dedup_and_self_loop():
    # 5->3 twice (one edge), 3->3 self-loop, node 3 has in-degree 2.
    data = session_graph([5, 3, 3, 5, 3, 7])
    assert 'y' not in data
    assert data.x.tolist() == [3, 5, 7]
    assert data.edge_index.tolist() == [[0, 0, 0, 1], [0, 1, 2, 0]]
    # In-degrees: 3 <- {3, 5} = 2, 5 <- {3} = 1, 7 <- {3} = 1.
    assert data.edge_weight_in.tolist() == [0.5, 1.0, 1.0, 0.5]
    # Out-degrees: 3 -> {3, 5, 7} = 3, 5 -> {3} = 1.
    assert data.edge_weight_out.tolist() == pytest.approx(
        [1 / 3, 1 / 3, 1 / 3, 1.0])


@pytest.mark.parametrize('seed', range(5))
def test_matches_srgnn_reference(seed):
    rng = random.Random(seed)
    for _ in range(20):
        u_input = [rng.randrange(1, 6) for _ in range(rng.randrange(1, 12))]
        node, alias, a_in, a_out = srgnn_dense(np.array(u_input))
        data = session_graph(u_input)
        assert data.x.tolist() == node.tolist()
        assert data.alias.tolist() == alias
        m_in, m_out = dense_from_edges(data)
        assert torch.allclose(m_in, torch.from_numpy(a_in))
        assert torch.allclose(m_out, torch.from_numpy(a_out))


def test_single_step_has_no_edges():
    data = session_graph([4], [2])
    assert data.edge_index.shape == (2, 0)
    assert data.edge_weight_in.shape == (0, )
    assert data.alias.tolist() == [0]


def test_batch_offsets_and_padding():
    sessions = [[5, 3, 5, 7], [1, 2], [9, 9, 8]]
    graphs = [session_graph(s, s[-1]) for s in sessions]
    batch = Batch.from_data_list(graphs)
    assert batch.num_graphs == 3
    assert batch.x.tolist() == [3, 5, 7, 1, 2, 8, 9]
    assert batch.alias.tolist() == [1, 0, 1, 2, 3, 4, 6, 6, 5]
    assert torch.equal(batch.x[batch.alias], batch.seq)
    assert batch.last.tolist() == [2, 4, 5]
    assert torch.equal(batch.x[batch.last], torch.tensor([7, 2, 8]))
    assert batch.edge_index[:, 3:].tolist() == [[3, 6, 6], [4, 5, 6]]
    assert batch.y.tolist() == [7, 2, 8]
    assert step_batch(batch).tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2]
    # Same items the node batch vector gives for every step.
    assert torch.equal(step_batch(batch), batch.batch[batch.alias])
    seq, mask = to_padded(batch)
    assert seq.tolist() == [[5, 3, 5, 7], [1, 2, 0, 0], [9, 9, 8, 0]]
    assert mask.tolist() == [[True] * 4, [True, True, False, False],
                             [True, True, True, False]]
    alias, _ = to_padded(batch, 'alias', fill_value=-1)
    assert alias.tolist() == [[1, 0, 1, 2], [3, 4, -1, -1],
                              [6, 6, 5, -1]]
    seq, mask = to_padded(batch, max_len=2)
    assert seq.tolist() == [[5, 3], [1, 2], [9, 9]]
    # A single graph works too.
    seq, mask = to_padded(graphs[1])
    assert seq.tolist() == [[1, 2]] and mask.all()


def test_prefix_mode():
    ds = SessionGraphs([[1, 2, 3], [4], [5, 6]], mode='prefix')
    assert len(ds) == 3
    assert ds.num_skipped == 1
    assert ds.num_items == 7
    got = [(ds[i].seq.tolist(), ds[i].y.tolist()) for i in range(len(ds))]
    assert got == [([1], [2]), ([1, 2], [3]), ([5], [6])]
    assert ds[-1].seq.tolist() == [5]
    assert 'SessionGraphs(3, mode=prefix' in repr(ds)


def test_sequence_mode_through_loader():
    seqs = [torch.tensor([1, 2, 3, 4]), torch.tensor([7]),
            torch.tensor([5, 6, 5])]
    ds = SessionGraphs(seqs, mode='sequence', num_items=10)
    assert len(ds) == 2 and ds.num_skipped == 1 and ds.num_items == 10
    assert ds[0].seq.tolist() == [1, 2, 3]
    assert ds[0].y.tolist() == [2, 3, 4]
    batch = next(iter(DataLoader(ds, batch_size=2)))
    seq, mask = to_padded(batch)
    y, _ = to_padded(batch, 'y')
    assert seq.tolist() == [[1, 2, 3], [5, 6, 0]]
    assert y.tolist() == [[2, 3, 4], [6, 5, 0]]
    assert mask.sum().item() == 5
    assert torch.equal(batch.x[batch.alias], batch.seq)


def test_given_targets():
    ds = SessionGraphs([[1, 2, 3], [4]], targets=[7, 8], max_len=2)
    assert len(ds) == 2 and ds.num_items == 9
    assert ds[0].seq.tolist() == [2, 3] and ds[0].y.tolist() == [7]
    assert ds[1].seq.tolist() == [4] and ds[1].y.tolist() == [8]


def test_max_len_truncation():
    seq = [1, 2, 3, 4, 5, 6]
    ds = SessionGraphs([seq], mode='prefix', max_len=2)
    assert [ds[i].seq.tolist() for i in range(len(ds))] == [
        [1], [1, 2], [2, 3], [3, 4], [4, 5]]
    assert [ds[i].y.item() for i in range(len(ds))] == [2, 3, 4, 5, 6]
    ds = SessionGraphs([seq], mode='sequence', max_len=3)
    assert ds[0].seq.tolist() == [3, 4, 5]
    assert ds[0].y.tolist() == [4, 5, 6]
    data = session_graph(seq[:-1], seq[1:], max_len=2)
    assert data.seq.tolist() == [4, 5] and data.y.tolist() == [5, 6]
    data = session_graph(seq, 0, max_len=1)
    assert data.seq.tolist() == [6] and data.y.tolist() == [0]


def test_session_graph_errors():
    with pytest.raises(ValueError, match='seq is empty'):
        session_graph(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match='seq is empty'):
        session_graph([])
    with pytest.raises(ValueError, match='negative item id -1 in seq'):
        session_graph([1, -1])
    with pytest.raises(ValueError, match='item id 5 in seq is >= num_items'):
        session_graph([1, 5], num_items=5)
    with pytest.raises(ValueError, match='item id 5 in target is >= '):
        session_graph([1, 2], 5, num_items=5)
    with pytest.raises(TypeError, match='integer item ids, got dtype '
                       'torch.float32'):
        session_graph(torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match='dtype torch.bool'):
        session_graph(torch.tensor([True]))
    with pytest.raises(TypeError, match='target must hold integer'):
        session_graph([1, 2], 1.5)
    with pytest.raises(TypeError, match='could not convert'):
        session_graph(['a', 'b'])
    with pytest.raises(ValueError, match='seq must be 1-D'):
        session_graph(torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='target has 2 items but seq has 3'):
        session_graph([1, 2, 3], [1, 2])
    for bad in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match='max_len must be an integer'):
            session_graph([1, 2], max_len=bad)


def test_session_graphs_errors():
    with pytest.raises(ValueError, match="unknown mode 'graph'"):
        SessionGraphs([[1, 2]], mode='graph')
    with pytest.raises(ValueError, match='max_len must be an integer >= 1'):
        SessionGraphs([[1, 2]], max_len=0)
    with pytest.raises(ValueError, match='sequence 1 is empty'):
        SessionGraphs([[1, 2], []])
    with pytest.raises(ValueError, match='sequence 0 must be 1-D'):
        SessionGraphs([[[1, 2]]])
    with pytest.raises(TypeError, match='sequence 0 must hold integer'):
        SessionGraphs([[1.5, 2.0]])
    with pytest.raises(ValueError, match='negative item id -2'):
        SessionGraphs([[1, -2]])
    with pytest.raises(ValueError, match='item id 3 in sequences is >= '
                       'num_items=3'):
        SessionGraphs([[1, 3]], num_items=3)
    with pytest.raises(ValueError, match='item id 4 in targets'):
        SessionGraphs([[1, 2]], targets=[4], num_items=3)
    with pytest.raises(ValueError, match='2 targets for 1 sequences'):
        SessionGraphs([[1, 2]], targets=[1, 2])
    with pytest.raises(ValueError, match="mode 'sequence' needs targets"):
        SessionGraphs([[1, 2]], targets=[1], mode='sequence')
    ds = SessionGraphs([[1, 2]])
    with pytest.raises(IndexError, match='index 1 out of range for 1'):
        ds[1]


def test_to_padded_error():
    batch = Batch.from_data_list([session_graph([1, 2], 3),
                                  session_graph([4, 5, 6], 1)])
    with pytest.raises(ValueError, match='batch.y has 2 entries, not one '
                       r'per step \(5\)'):
        to_padded(batch, 'y')


def test_empty_dataset():
    ds = SessionGraphs([])
    assert len(ds) == 0 and ds.num_items == 0 and ds.num_skipped == 0


def _random_sequences(n=150, num_items=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, num_items, (int(torch.randint(
        1, 9, (1,), generator=gen)),), generator=gen).tolist()
        for _ in range(n)]


@pytest.mark.parametrize('kw', [
    dict(mode='prefix'), dict(mode='sequence'),
    dict(mode='prefix', max_len=3), dict(mode='sequence', max_len=2),
    dict(targets=list(range(150)))], ids=str)
def test_collate_equals_pyg_batch(kw):
    seqs = _random_sequences()
    ds = SessionGraphs(seqs, num_items=200, **kw)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(1))
    idx = idx[:57]
    fast = ds.collate(idx)
    ref = Batch.from_data_list([ds[int(i)] for i in idx])
    assert set(fast.keys()) == set(ref.keys())
    for key in ref.keys():
        assert torch.equal(fast[key], ref[key]), key
        assert fast[key].dtype == ref[key].dtype, key
    assert fast.num_graphs == ref.num_graphs == 57
    for i in (0, 17, 56):
        a, b = fast.get_example(i), ref.get_example(i)
        for key in b.keys():
            assert torch.equal(a[key], b[key]), (i, key)


def test_loader_epochs_cover_all_examples_and_are_seeded():
    ds = SessionGraphs(_random_sequences(), mode='prefix')
    loader = SessionLoader(ds, batch_size=32, shuffle=True, seed=3)
    assert len(loader) == -(-len(ds) // 32)

    def epoch_targets(epoch):
        loader.set_epoch(epoch)
        return torch.cat([b.y for b in loader])

    first, again, other = epoch_targets(0), epoch_targets(0), \
        epoch_targets(1)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    every = torch.cat([ds[i].y for i in range(len(ds))])
    assert torch.equal(first.sort().values, every.sort().values)
    plain = SessionLoader(ds, batch_size=32)
    assert torch.equal(torch.cat([b.y for b in plain]), every)
    dropped = SessionLoader(ds, batch_size=32, drop_last=True)
    assert len(dropped) == len(ds) // 32
    assert all(b.num_graphs == 32 for b in dropped)


def test_loader_and_collate_errors():
    ds = SessionGraphs([[1, 2, 3]])
    with pytest.raises(TypeError, match='dataset must be a SessionGraphs'):
        SessionLoader([ds[0]])
    with pytest.raises(ValueError, match='batch_size must be a positive'):
        SessionLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match='index is empty'):
        ds.collate([])
    with pytest.raises(IndexError, match='out of range for 2 examples'):
        ds.collate([2])


def test_loader_buckets_by_length():
    seqs = _random_sequences(400)
    ds = SessionGraphs(seqs, mode='prefix', max_len=8)
    plain = SessionLoader(ds, batch_size=16, shuffle=True, seed=1)
    bucketed = SessionLoader(ds, batch_size=16, shuffle=True, seed=1,
                             bucket=8, drop_last=False)
    every = torch.cat([ds[i].y for i in range(len(ds))]).sort().values
    ys = torch.cat([b.y for b in bucketed])
    assert torch.equal(ys.sort().values, every)  # each example once
    assert len(list(bucketed)) == len(bucketed)

    def padded_steps(loader):
        return sum(b.num_graphs * int(b.length.max()) for b in loader)

    assert padded_steps(bucketed) < 0.8 * padded_steps(plain)
    bucketed.set_epoch(1)
    again = torch.cat([b.y for b in bucketed])
    assert not torch.equal(again, ys)
    with pytest.raises(ValueError, match='bucket must be a positive'):
        SessionLoader(ds, bucket=0)
